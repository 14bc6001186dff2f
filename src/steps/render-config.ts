import { renderTemplate } from '../core/expressions.js';
import type { ExpressionContext } from '../core/model.js';
import type { StepType } from './step-type.js';

/**
 * A step's `with` with its `${{ }}` templates resolved the way its step type asks: the type's raw config keys
 * stay as written (it renders them itself), and its template encoder writes each value (a shell-quoted word in
 * a `command`'s `run`, a percent-encoded component in an `http` URL). An unknown type renders as plain text.
 */
export async function renderStepConfig(type: StepType<any> | undefined, written: Record<string, unknown>, ctx: ExpressionContext): Promise<Record<string, unknown>> {
  const raw = type?.rawConfigKeys ?? [];
  const encode = type?.templateEncoder?.(written);
  const rendered: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(written)) {
    if (raw.includes(key)) rendered[key] = value;
    else {
      const out = await renderTemplate(value, ctx, encode, [key]);
      if (out !== undefined) rendered[key] = out;
    }
  }
  return rendered;
}

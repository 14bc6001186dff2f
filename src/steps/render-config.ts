import { renderWith } from '../core/step-policy.js';
import type { ExpressionContext } from '../core/model.js';
import type { StepType } from './step-type.js';

/**
 * A step's `with` with its `${{ }}` templates resolved the way its step type asks: the type's raw config keys
 * stay as written (it renders them itself), and its template encoder writes each value (a shell-quoted word in
 * a `command`'s `run`, a percent-encoded component in an `http` URL). An unknown type renders as plain text.
 * The rule itself is the step policy's {@link renderWith}; this reads it off the step type.
 */
export async function renderStepConfig(type: StepType<any> | undefined, written: Record<string, unknown>, ctx: ExpressionContext): Promise<Record<string, unknown>> {
  const encode = type?.templateEncoder?.(written);
  return renderWith(written, ctx, { rawKeys: type?.rawConfigKeys ?? [], ...(encode === undefined ? {} : { encode }) });
}

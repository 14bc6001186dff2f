import { describe, expect, it } from 'vitest';
import type { ValidationError } from '../../src/core/errors.js';
import { checkExpression } from '../../src/core/expressions.js';
import { buildGraph } from '../../src/core/graph.js';
import { parsePipelineText } from '../../src/core/load-pipeline.js';
import { normalizePipeline } from '../../src/core/validate.js';
import { fakeStepTypes } from './fake-steps.js';

const stepTypes = fakeStepTypes();

/** A chain of `n` steps, each reading its predecessor; with `cycle`, the first needs the last. */
function chainYaml(n: number, cycle = false): string {
  const lines = ['name: long-chain', 'steps:'];
  for (let i = 0; i < n; i++) {
    const need = i > 0 ? `s${i - 1}` : cycle ? `s${n - 1}` : null;
    const read = i > 0 ? `steps.s${i - 1}.stdout` : 'input.source';
    lines.push(`  s${i}:`, '    uses: command', ...(need ? [`    needs: [${need}]`] : []), `    with: { run: "echo \${{ ${read} }}" }`);
  }
  return `${lines.join('\n')}\n`;
}

function validate(text: string) {
  const { spec, locate } = parsePipelineText(text, 'chain.yaml');
  return normalizePipeline(spec, { stepTypes, file: 'chain.yaml', locate });
}

describe('pipelines of thousands of steps', () => {
  it('validates a 10,000-step chain and orders it', () => {
    const pipeline = validate(chainYaml(10_000));
    expect(pipeline.steps).toHaveLength(10_000);
    const { order } = buildGraph(pipeline);
    expect(order[0]).toBe('s0');
    expect(order[9_999]).toBe('s9999');
  });

  it('reports a 10,000-step cycle as a validation issue, shortened, at the needs that close it', () => {
    let error: ValidationError | undefined;
    try {
      validate(chainYaml(10_000, true));
    } catch (err) {
      error = err as ValidationError;
    }
    expect(error?.code).toBe('VALIDATION_FAILED');
    expect(error?.issues).toHaveLength(1);
    const issue = error!.issues[0]!;
    expect(issue.path).toBe('steps.s0.needs[0]');
    expect(issue.line).toBe(5);
    expect(issue.message).toMatch(/^dependency cycle: s0 -> s1 -> .* -> \.\.\. -> .*s9999 -> s0 \(10000 steps\)$/);
    expect(issue.message.length).toBeLessThan(300);
  });

  it('checks plain paths without the parser, and still sends literals and other forms through it', () => {
    expect(checkExpression('steps.fetch.body')).toBeNull();
    expect(checkExpression('input.and')).toBeNull();
    expect(checkExpression('input.true')).toMatch(/literal value true/);
    expect(checkExpression('input.')).not.toBeNull();
  });
});

/**
 * The examples written in TypeScript, type-checked as users would compile them (they import `sluice`): a type
 * error in any of them fails this file, as does a change of the task service's inferred types.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { taskService } from '../../examples/task-service/pipelines.js';
import type { startTaskService } from '../../examples/task-service/server.js';
import { command, createEngine, llm, openStore, pipeline, type PipelineInput, type PipelineOutput } from 'sluice';
import { z } from 'zod';

describe('examples', () => {
  it('types the task service pipeline from its zod schema and steps', () => {
    expectTypeOf<PipelineInput<typeof taskService>>().toEqualTypeOf<{ title: string; description?: string | undefined; stack?: string[] | undefined; customer?: string | undefined }>();
    expectTypeOf<PipelineOutput<typeof taskService>>().toEqualTypeOf<{ confirmed: { title: string; by?: string } }>();
    expectTypeOf<typeof startTaskService>().returns.resolves.toHaveProperty('address');
  });

  it('compiles the first library example of the README', async () => {
    const review = pipeline('review', { input: z.object({ repo: z.string(), pr: z.number() }) })
      .step('diff', command({ run: 'gh pr diff ${{ input.pr }} --repo ${{ input.repo }}' }))
      .step('verdict', llm({ model: 'gpt-4o-mini', prompt: 'Review:\n${{ steps.diff.stdout }}', schema: z.object({ ok: z.boolean(), notes: z.string() }) }), { needs: ['diff'] })
      .step('score', { needs: ['verdict'], retry: { attempts: 3 } }, ({ steps }) => (steps.verdict.ok ? 1 : 0) + steps.verdict.notes.length / 1000);
    const engine = createEngine({ store: await openStore('sqlite:.sluice/sluice.db') });
    const { score } = await engine.run(review, { repo: 'acme/api', pr: 42 }, { timeout: 120_000 });
    expectTypeOf(score).toEqualTypeOf<number>();
  });
});

/**
 * Job 2 as a typed pipeline in code: a task is decomposed into subtasks, each subtask is enriched with project
 * context, and an implementation prompt is generated per subtask; the run then waits for an external
 * confirmation (the event `task.confirmed` with the task's title). Each customer's runs are throttled on their own.
 * `steps.<name>` and `input` are typed; a misspelled `needs` does not compile.
 *
 *   npx sluice serve --load examples/task-service/pipelines.ts     # API + dashboard, runs the pipeline
 *   npx sluice run examples/task-service/pipelines.ts#task-service --input '{"title":"user registration"}'
 *   npx tsx examples/task-service/server.ts                         # the same, plus the page in public/
 */
import { pipeline, waitForEvent } from 'sluice';
import { z } from 'zod';
import { decompose, enrich, generatePrompts } from './tasks.js';

export const Task = z.object({
  title: z.string().min(3),
  description: z.string().optional(),
  stack: z.array(z.string()).optional(),
  /** Who asked: each customer's tasks are throttled on their own. */
  customer: z.string().optional(),
});

export const taskService = pipeline('task-service', {
  description: 'Decomposition -> enrichment -> prompt generation',
  input: Task,
  max_parallel: 2,
  defaults: { retry: { attempts: 3, backoff: 'exponential', delay: '200ms', max_delay: '2s', jitter: true }, timeout: '30s' },
  triggers: [{ event: 'task.created' }],
  // A burst from one customer is spread out (30 runs a minute each), never dropped; other customers are not held up.
  throttle: { limit: 30, period: '1m', key: '${{ input.customer }}' },
})
  .step('decompose', ({ input, log }) => {
    const subtasks = decompose(input.title);
    log('info', `decomposed "${input.title}" into ${subtasks.length} subtasks`);
    return { subtasks };
  })
  .step('enrich', { needs: ['decompose'], concurrency_key: 'enrichment', concurrency_limit: 4 }, ({ input, steps }) => ({
    subtasks: enrich(steps.decompose.subtasks, input.stack),
  }))
  .step('prompts', { needs: ['enrich'], output: z.object({ prompts: z.array(z.string()).min(1) }) }, ({ input, steps }) => ({
    prompts: generatePrompts(input.title, steps.enrich.subtasks),
  }))
  // The task is done once someone outside confirms it (`POST /api/events/task.confirmed` with its title, or
  // `sluice emit task.confirmed --data '{"title":"..."}'`); the run waits a week for that, holding no worker.
  .step('confirmed', waitForEvent<{ title: string; by?: string }>({ event: 'task.confirmed', match: 'event.title = input.title', timeout: '7d' }), { needs: ['prompts'] });

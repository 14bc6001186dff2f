import { describe, expectTypeOf, it } from 'vitest';
import * as v from 'valibot';
import { z } from 'zod';
import {
  approval,
  childPipeline,
  code,
  command,
  defineStepType,
  gate,
  http,
  llm,
  map,
  pipeline,
  StepDirective,
  type ChildRunOutput,
  type Engine,
  type FunctionContext,
  type GateOutput,
  type MapResult,
  type PipelineInput,
  type PipelineOutput,
  type StepFunction,
} from 'sluice';

declare const engine: Engine;

describe('pipeline() inference', () => {
  it('types the input from a zod 4 schema and a valibot schema, and from a plain type', () => {
    pipeline('z', { input: z.object({ team: z.string(), size: z.number().default(3) }) }).step('a', ({ input }) => {
      expectTypeOf(input).toEqualTypeOf<{ team: string; size: number }>();
    });
    pipeline('v', { input: v.object({ id: v.string() }) }).step('a', ({ input }) => {
      expectTypeOf(input).toEqualTypeOf<{ id: string }>();
    });
    pipeline<{ n: number }>('t').step('a', ({ input }) => {
      expectTypeOf(input).toEqualTypeOf<{ n: number }>();
    });
  });

  it('types steps.<name> as that step output, for the needs only', () => {
    pipeline('p')
      .step('fetch', async () => ({ users: ['a', 'b'] }))
      .step('count', () => 2)
      .step('score', { needs: ['fetch', 'count'] }, ({ steps }) => {
        expectTypeOf(steps).toEqualTypeOf<{ fetch: { users: string[] }; count: number }>();
        return steps.fetch.users.length + steps.count;
      })
      .step('only', { needs: ['count'] }, ({ steps }) => {
        // @ts-expect-error fetch is not among this step's needs
        void steps.fetch;
        return steps.count;
      });
  });

  it('refuses a needs typo, a step that needs a later step and a duplicate name at compile time', () => {
    const p = pipeline('p').step('fetch', () => 1);
    // @ts-expect-error 'fetc' is no step of the pipeline
    p.step('score', { needs: ['fetc'] }, () => 2);
    // @ts-expect-error a step can only need steps defined before it
    p.step('early', { needs: ['late'] }, () => 2).step('late', () => 3);
    // @ts-expect-error 'fetch' is already defined
    p.step('fetch', () => 2);
    // @ts-expect-error retry.attempts is a number
    p.step('bad', { retry: { attempts: 'three' } }, () => 1);
    // @ts-expect-error on_failure is abort or continue
    p.step('bad', { on_failure: 'ignore' }, () => 1);
  });

  it('types the run input and output of engine.run', async () => {
    const p = pipeline('p', { input: z.object({ team: z.string() }) })
      .step('fetch', async ({ input }) => ({ users: [input.team] }))
      .step('score', { needs: ['fetch'] }, ({ steps }) => steps.fetch.users.length)
      .step('note', { needs: ['fetch'] }, () => 'done');
    expectTypeOf<PipelineInput<typeof p>>().toEqualTypeOf<{ team: string }>();
    expectTypeOf(await engine.run(p, { team: 'core' })).toEqualTypeOf<{ score: number; note: string }>();
    // @ts-expect-error team must be a string
    await engine.run(p, { team: 1 });
    const mapped = p.output(({ steps, input }) => ({ team: input.team, score: steps.score }));
    expectTypeOf(await engine.run(mapped, { team: 'x' })).toEqualTypeOf<{ team: string; score: number }>();
    expectTypeOf<PipelineOutput<typeof mapped>>().toEqualTypeOf<{ team: string; score: number }>();
  });

  it('adds null to the output of a step that may be skipped or may fail without failing the run', () => {
    pipeline<{ go: boolean }>('p')
      .step('maybe', { if: 'input.go' }, () => 1)
      .step('tolerant', { on_failure: 'continue' }, () => 'x')
      .step('off', command({ run: 'true' }), { disabled: true })
      .step('strict', { on_failure: 'abort', disabled: false }, () => true)
      .step('all', { needs: ['maybe', 'tolerant', 'off', 'strict'] }, ({ steps }) => {
        expectTypeOf(steps.maybe).toEqualTypeOf<number | null>();
        expectTypeOf(steps.tolerant).toEqualTypeOf<string | null>();
        expectTypeOf(steps.off).toEqualTypeOf<{ exit_code: number; stdout: string } | null>();
        expectTypeOf(steps.strict).toEqualTypeOf<boolean>();
      });
  });

  it('types a step output by its output schema, and the function must return what the schema accepts', () => {
    pipeline('p')
      .step('n', { output: z.object({ total: z.number() }) }, () => ({ total: 1 }))
      .step('use', { needs: ['n'] }, ({ steps }) => {
        expectTypeOf(steps.n).toEqualTypeOf<{ total: number }>();
      });
    // @ts-expect-error total must be a number
    pipeline('p').step('n', { output: z.object({ total: z.number() }) }, () => ({ total: 'x' }));
  });
});

describe('built-in step helpers', () => {
  it('types command, code, http, llm, gate, approval outputs', () => {
    const Verdict = z.object({ label: z.enum(['good', 'bad']), score: z.number() });
    pipeline('p')
      .step('cmd', command({ run: 'echo hi' }))
      .step('json', command<{ rows: number }>({ run: 'node x.js', output: 'json' }))
      .step('none', command({ run: 'true', output: 'none' }))
      .step('js', code<number>('return 1'))
      .step('get', http<{ id: string }>({ url: 'https://example.com/x' }))
      .step('ask', llm({ model: 'm', prompt: 'p', schema: Verdict }))
      .step('text', llm({ model: 'm', prompt: 'p' }))
      .step('check', gate({ rules: [{ name: 'r', expr: 'true' }] }), { needs: ['ask'] })
      .step('ok', approval({ message: 'ship?' }), { needs: ['check'] })
      .step('all', { needs: ['cmd', 'json', 'none', 'js', 'get', 'ask', 'text', 'check', 'ok'] }, ({ steps }) => {
        expectTypeOf(steps.cmd).toEqualTypeOf<{ exit_code: number; stdout: string }>();
        expectTypeOf(steps.json).toEqualTypeOf<{ rows: number }>();
        expectTypeOf(steps.none).toEqualTypeOf<{ exit_code: number }>();
        expectTypeOf(steps.js).toEqualTypeOf<number>();
        expectTypeOf(steps.get.body).toEqualTypeOf<{ id: string }>();
        expectTypeOf(steps.get.status).toEqualTypeOf<number>();
        expectTypeOf(steps.ask).toEqualTypeOf<{ label: 'good' | 'bad'; score: number }>();
        expectTypeOf(steps.text).toEqualTypeOf<{ text: string }>();
        expectTypeOf(steps.check).toEqualTypeOf<GateOutput>();
        expectTypeOf(steps.ok.human.decision).toEqualTypeOf<'approved' | 'rejected'>();
      });
    // @ts-expect-error command needs run
    command({ cwd: '.' });
    // @ts-expect-error an llm step needs a model
    llm({ prompt: 'p' });
  });

  it('types map results by the function run per item, and a child pipeline by its final steps', () => {
    const child = pipeline<{ word: string }>('child').step('len', ({ input }) => input.word.length);
    pipeline<{ words: string[] }>('parent')
      .step('lengths', map<string, number>({ items: '${{ input.words }}', step: (word) => word.length }))
      .step('upper', map({ items: ['a', 'b'], step: (word: string) => word.toUpperCase() }))
      .step('sub', child)
      .step('sub2', childPipeline(child, { input: { word: 'x' } }))
      .step('all', { needs: ['lengths', 'upper', 'sub', 'sub2'] }, ({ steps }) => {
        expectTypeOf(steps.lengths).toEqualTypeOf<MapResult<number>>();
        expectTypeOf(steps.upper.items).toEqualTypeOf<Array<string | null>>();
        expectTypeOf(steps.sub).toEqualTypeOf<ChildRunOutput<{ len: number }>>();
        expectTypeOf(steps.sub2.outputs.len).toEqualTypeOf<number>();
      });
    // @ts-expect-error the child's input is { word: string }
    childPipeline(child, { input: { words: 'x' } });
  });

  it('types custom step types end to end and exports the function step types', () => {
    const slack = defineStepType({
      type: 'slack',
      async execute(_ctx, config: { channel: string; text: string }) {
        return config.channel === '' ? StepDirective.block({ reason: 'no channel' }) : { ts: '1' };
      },
    });
    pipeline('p')
      .step('notify', slack.use({ channel: '#ops', text: 'hi' }))
      .step('after', { needs: ['notify'] }, ({ steps }) => {
        expectTypeOf(steps.notify).toEqualTypeOf<{ ts: string }>();
      });
    // @ts-expect-error channel is required
    slack.use({ text: 'hi' });
    expectTypeOf<StepFunction>().parameter(0).toEqualTypeOf<FunctionContext>();
  });
});

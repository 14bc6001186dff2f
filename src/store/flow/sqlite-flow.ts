import type { CreateRunRequest, CreatedRun } from '../store.js';
import type { SqliteCtx } from '../sqlite/sqlite-context.js';
import * as F from './flow-ops.js';
import type { RunFlow } from './flow-port.js';
import { startWithFlow } from './flow-start.js';

// Flow control on SQLite: the rules of flow-ops.ts run synchronously, the start's inside the write transaction of
// createRuns, which BEGIN IMMEDIATE serialises across every process sharing the file.

/** Creates the run of `req` under its pipeline's flow rules (`create` makes a run as usual). */
export function createRunWithFlow(c: SqliteCtx, req: CreateRunRequest, now: number, create: (req: CreateRunRequest) => CreatedRun): CreatedRun {
  if (!req.flow) return create(req);
  return c.transitions.run(startWithFlow({ json: (v) => c.transitions.json(v), create, changed: (id) => c.forget?.(id) }, req, now));
}

export const anyHeldRuns = (c: SqliteCtx): boolean => c.transitions.run(F.anyHeldRuns());

export const releaseHeldRuns = (c: SqliteCtx, now: number): string[] => c.transitions.run(F.releaseHeldRuns(now));

export const pendingDebounceOf = (c: SqliteCtx, pipeline: string, key: string): { runId: string; input: unknown } | undefined => c.transitions.run(F.pendingDebounce(pipeline, key));

export const runFlowOf = (c: SqliteCtx, id: string): RunFlow | undefined => c.transitions.run(F.runFlow(id));

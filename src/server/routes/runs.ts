import type { FastifyInstance } from 'fastify';
import { SluiceError } from '../../core/errors.js';
import type { RunStatus } from '../../core/model.js';
import type { StartRunOptions } from '../../engine/engine.js';
import { listRunPage } from '../../store/run-cursor.js';
import type { RunAction } from '../../store/store.js';
import type { ServerContext } from '../create-server.js';
import { isSluiceError } from '../http-errors.js';
import { MAX_TIME_MS, approvalBody, eventNameParams, eventsQuery, eventTriggerQuery, limitQuery, listRunsQuery, pipelineParams, rollbackBody, runParams, startRunBody, stepParams } from '../schemas.js';
import { decisionView } from '../contract-views.js';
import { apiResponses, decisionList, eventList, eventTriggered, logList, ok, runCreated, runDetail, runList, runPage, runSchema } from '../response-schemas.js';
import { eventView, logView, runView, stepView } from '../views.js';
import { flowView, storedFlowView } from '../flow-view.js';

interface StartRunBody {
  input?: unknown;
  idempotency_key?: string;
  priority?: number;
  run_at?: number | string;
  steps?: string[];
  force?: boolean;
}

const ACTIONS: readonly RunAction[] = ['pause', 'resume', 'cancel', 'retry'];

const ACTION_SUMMARIES: Record<RunAction, string> = {
  pause: 'Pause a run: running steps finish, nothing new starts',
  resume: 'Resume a paused run',
  cancel: 'Cancel a run',
  retry: 'Retry a failed or cancelled run from its failed steps',
};

/** Runs: start, list, read (with steps and attempts), events, logs, control, rollback; dead letters; events. */
export function registerRunRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine } = ctx;
  const tags = ['runs'];

  app.post<{ Params: { name: string }; Body: StartRunBody | undefined }>(
    '/api/pipelines/:name/runs',
    { schema: { tags, operationId: 'startRun', summary: 'Start a run (idempotent with idempotency_key)', params: pipelineParams, body: startRunBody, response: apiResponses({ 200: ok(runCreated, 'The run an idempotency key already started'), 201: ok(runCreated, 'The run, started') }, 400, 404, 409, 413, 415, 429) } },
    async (request, reply) => {
      const { run, created, flow } = await ctx.batcher.start(request.params.name, { ...startOptions(request.body ?? {}), ...traceparentHeader(request.headers) }).catch((err: unknown) => {
        // An unknown name in `steps` is a bad request, not a missing resource.
        throw isSluiceError(err) && err.code === 'STEP_NOT_FOUND' ? new SluiceError('REQUEST_INVALID', err.message) : err;
      });
      return reply.status(created ? 201 : 200).send({ ...runView(run), created, ...flowView(flow) });
    },
  );

  app.get<{ Querystring: { pipeline?: string; status?: RunStatus; limit: number; cursor?: string } }>(
    '/api/runs',
    { schema: { tags, operationId: 'listRuns', summary: 'Runs, newest first, a page at a time: pass next_cursor as cursor for the next page', querystring: listRunsQuery, response: apiResponses({ 200: ok(runPage, 'A page of runs') }, 400) } },
    async (request) => {
      const { pipeline, status, limit, cursor } = request.query;
      const page = await listRunPage(engine.store, { limit, cursor, ...(pipeline ? { pipeline } : {}), ...(status ? { status } : {}) });
      return { runs: page.runs.map(runView), next_cursor: page.nextCursor };
    },
  );

  app.get<{ Params: { id: string } }>('/api/runs/:id', { schema: { tags, operationId: 'getRun', summary: 'A run with its steps and attempts', params: runParams, response: apiResponses({ 200: ok(runDetail, 'The run') }, 400, 404) } }, async (request) => {
    const run = await engine.requireRun(request.params.id);
    const [steps, attempts, flow] = await Promise.all([engine.store.listSteps(run.id), engine.store.listAttempts(run.id), storedFlowView(engine.store, run.id)]);
    return { ...runView(run), steps: steps.map((s) => stepView(s, attempts)), ...flow };
  });

  app.get<{ Params: { id: string }; Querystring: { after: number; limit: number } }>(
    '/api/runs/:id/events',
    { schema: { tags, operationId: 'listRunEvents', summary: 'The event history of a run', params: runParams, querystring: eventsQuery, response: apiResponses({ 200: ok(eventList, 'Events in id order') }, 400, 404) } },
    async (request) => {
      const run = await engine.requireRun(request.params.id);
      const events = await engine.store.listEvents({ runId: run.id, afterId: request.query.after, limit: request.query.limit });
      return { events: events.map(eventView) };
    },
  );

  app.get<{ Params: { id: string; step: string } }>(
    '/api/runs/:id/steps/:step/logs',
    { schema: { tags, operationId: 'listStepLogs', summary: 'Log lines of a step', params: stepParams, response: apiResponses({ 200: ok(logList, 'The log lines, oldest first') }, 400, 404) } },
    async (request) => {
      const run = await engine.requireRun(request.params.id);
      const steps = await engine.store.listSteps(run.id);
      if (!steps.some((s) => s.name === request.params.step)) throw new SluiceError('STEP_NOT_FOUND', `run ${run.id} has no step ${request.params.step}`);
      return { logs: (await engine.store.listLogs(run.id, request.params.step)).map(logView) };
    },
  );

  for (const action of ACTIONS) {
    app.post<{ Params: { id: string } }>(`/api/runs/:id/${action}`, { schema: { tags, operationId: `${action}Run`, summary: ACTION_SUMMARIES[action], params: runParams, response: apiResponses({ 200: ok(runSchema, 'The run after the change') }, 400, 404, 409) } }, async (request) => {
      const result = await engine[action](request.params.id);
      return runView(result.run);
    });
  }

  app.post<{ Params: { id: string }; Body: { to: string } }>(
    '/api/runs/:id/rollback',
    { schema: { tags, operationId: 'rollbackRun', summary: 'Discard a step and its descendants and run them again', params: runParams, body: rollbackBody, response: apiResponses({ 200: ok(runSchema, 'The run after the change') }, 400, 404, 409, 413, 415) } },
    async (request) => runView((await engine.rollback(request.params.id, request.body.to)).run),
  );

  app.post<{ Params: { id: string; step: string }; Body: { decision: 'approve' | 'reject'; comment?: string; response?: unknown } }>(
    '/api/runs/:id/steps/:step/approval',
    { schema: { tags, operationId: 'decideStep', summary: 'Approve or reject a step waiting for a human (approval step, or a gate that blocked)', params: stepParams, body: approvalBody, response: apiResponses({ 200: ok(runSchema, 'The run after the decision') }, 400, 404, 409, 413, 415) } },
    async (request) => {
      const { decision, comment, response } = request.body;
      // Without auth there is no one to name: the audit says the decision came over the API.
      const by = request.apiToken ? (request.apiToken.name ?? `token ${request.apiToken.id}`) : 'api';
      const result = await engine.decide(request.params.id, request.params.step, { decision, ...(comment ? { comment } : {}), ...(response === undefined ? {} : { response }), by });
      return runView(result.run);
    },
  );

  app.get<{ Params: { id: string } }>('/api/runs/:id/decisions', { schema: { tags, operationId: 'listRunDecisions', summary: 'Gate and human decisions of a run (audit)', params: runParams, response: apiResponses({ 200: ok(decisionList, 'The decisions, oldest first') }, 400, 404) } }, async (request) => {
    const run = await engine.requireRun(request.params.id);
    return { decisions: (await engine.store.listDecisions(run.id)).map(decisionView) };
  });

  app.get<{ Querystring: { limit: number } }>(
    '/api/dead-letters',
    { schema: { tags, operationId: 'listDeadLetters', summary: 'Runs failed for good, newest first (re-drive with POST /api/runs/{id}/retry)', querystring: limitQuery, response: apiResponses({ 200: ok(runList, 'The dead letters') }, 400) } },
    async (request) => ({ runs: (await engine.store.listDeadLetters(request.query.limit)).map(runView) }),
  );

  app.post<{ Params: { name: string }; Querystring: { idempotency_key?: string }; Body: unknown }>(
    '/api/events/:name',
    { schema: { tags: ['events'], operationId: 'postEvent', summary: 'Start every enabled pipeline whose triggers name this event; the body is the input', params: eventNameParams, querystring: eventTriggerQuery, response: apiResponses({ 200: ok(eventTriggered, 'No new run: none triggered, or idempotency keys answered existing runs'), 201: ok(eventTriggered, 'At least one run started') }, 400, 409, 413, 415, 429) } },
    async (request, reply) => {
      const key = request.query.idempotency_key;
      const emitted = await engine.emit(request.params.name, request.body ?? null, { ...(key ? { idempotencyKey: key } : {}), ...traceparentHeader(request.headers) });
      const runs = emitted.runs.map(({ run, created, flow }) => ({ ...runView(run), created, ...flowView(flow) }));
      return reply.status(runs.some((r) => r.created) ? 201 : 200).send({ event: request.params.name, runs });
    },
  );
}

function startOptions(body: StartRunBody): StartRunOptions {
  const options: StartRunOptions = { input: body.input ?? null };
  if (body.idempotency_key !== undefined) options.idempotencyKey = body.idempotency_key;
  if (body.priority !== undefined) options.priority = body.priority;
  if (body.run_at !== undefined) options.runAt = parseTime(body.run_at, 'run_at');
  if (body.steps !== undefined) options.steps = body.steps;
  if (body.force !== undefined) options.force = body.force;
  return options;
}

/** Epoch ms from a number or an ISO 8601 string, within the range of JavaScript dates (±8.64e15 ms). */
export function parseTime(value: number | string, field: string): number {
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (Number.isFinite(ms) && Math.abs(ms) > MAX_TIME_MS) {
    throw new SluiceError('REQUEST_INVALID', `${field} must be a time between -${MAX_TIME_MS} and ${MAX_TIME_MS} epoch ms (the years -271821 to 275760), got ${JSON.stringify(value)}`);
  }
  if (!Number.isFinite(ms)) throw new SluiceError('REQUEST_INVALID', `${field} must be epoch milliseconds or an ISO 8601 time, got ${JSON.stringify(value)}`);
  return ms;
}

/** The caller's W3C `traceparent` header: the run's spans join the caller's trace. */
function traceparentHeader(headers: Record<string, string | string[] | undefined>): { traceparent?: string } {
  const value = headers['traceparent'];
  return typeof value === 'string' ? { traceparent: value } : {};
}

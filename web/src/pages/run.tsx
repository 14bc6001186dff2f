import { lazy, Suspense, useEffect, useMemo, useRef, useState } from 'react';
import { api, enc, type GraphJson, type LiveEvent, type LogLine, type RunDetail, type Step } from '../api';
import { ActionButton, Badge, duration, Empty, ErrorBox, JsonView, Skeleton, Spinner, StatusBadge, Time, useAsync } from '../components/ui';
import { stepStatusOf, throttle, useLiveEvents } from '../live';
import { Link, setQuery, useLocation } from '../router';
import { useCan } from '../session';
import { Timeline } from './timeline';

// Fetched as soon as this page loads, while the run itself is being read.
const dagModule = import('../components/dag');
const Dag = lazy(() => dagModule);

const ACTIVE = ['queued', 'running', 'waiting'];

/** One run: live graph, timeline, controls, and the selected step's output, logs, errors and approval. */
export default function RunPage({ id }: { id: string }) {
  const run = useAsync(() => api<RunDetail>(`/api/runs/${enc(id)}`), [id]);
  const pipeline = run.data?.pipeline;
  const graph = useAsync(() => (pipeline ? api<GraphJson>(`/api/pipelines/${enc(pipeline)}/graph`) : Promise.resolve(undefined)), [pipeline]);
  const decisions = useAsync(() => api<{ decisions: Array<Record<string, unknown>> }>(`/api/runs/${enc(id)}/decisions`), [id]);
  // The newest time the loaded run reflects: replayed events older than it change nothing.
  const seenUntil = useRef(0);
  seenUntil.current = run.data ? newestTime(run.data) : 0;
  const live = useLiveStates(id, run.reload, decisions.reload, seenUntil);
  const { query } = useLocation();
  const selected = query.get('step') ?? undefined;

  const states = useMemo(() => {
    const base: Record<string, string> = {};
    for (const s of run.data?.steps ?? []) base[s.name] = s.status;
    return { ...base, ...live.steps };
  }, [run.data, live.steps]);
  const { nodes, edges } = useMemo(() => graphOf(graph.data, run.data?.steps ?? []), [graph.data, run.data?.steps]);

  if (run.data === undefined) {
    return (
      <section>
        <h1>Run {id}</h1>
        {run.error ? <ErrorBox error={run.error} /> : <Skeleton rows={8} />}
      </section>
    );
  }
  const r = run.data;
  const status = live.run ?? r.status;
  const step = r.steps.find((s) => s.name === selected);
  return (
    <section>
      <div className="title-row">
        <h1>
          Run <code>{r.id}</code> <StatusBadge status={status} />
        </h1>
        {status === 'queued' ? <FlowNote flow={r.flow} /> : null}
        <RunControls run={r} status={status} onDone={run.reload} />
      </div>
      <p className="muted">
        <Link to={`/pipelines/${enc(r.pipeline)}`}>{r.pipeline}</Link> v{r.version} · created <Time at={r.created_at} />
        {r.started_at ? <> · started <Time at={r.started_at} /></> : null}
        {r.finished_at ? <> · took {duration(r.finished_at - (r.started_at ?? r.created_at))}</> : null}
      </p>
      {r.input !== null && r.input !== undefined ? (
        <details className="run-input">
          <summary>Input</summary>
          <JsonView value={r.input} />
        </details>
      ) : null}
      {r.error ? <ErrorDetail error={r.error} /> : null}
      <Suspense fallback={<Spinner label="Drawing graph…" />}>
        {nodes.length ? <Dag nodes={nodes} edges={edges} states={states} selected={selected} onSelect={(s) => setQuery({ step: s })} height={nodes.length > 50 ? 520 : 360} /> : <Empty>This run has no steps.</Empty>}
      </Suspense>
      <div className="run-body">
        <div className="panel">
          <h2>Timeline</h2>
          <Timeline steps={r.steps} states={states} selected={selected} onSelect={(s) => setQuery({ step: s })} />
        </div>
        <div className="panel">
          {step ? <StepPanel runId={r.id} step={step} status={states[step.name] ?? step.status} onDecided={() => { run.reload(); decisions.reload(); }} /> : <Empty>Select a step in the graph or the timeline to see its output, logs and errors.</Empty>}
        </div>
      </div>
      <Decisions data={decisions.data?.decisions} error={decisions.error} />
    </section>
  );
}

/** Step and run statuses from the run's live stream (replayed from its start), with a refresh of the details. */
function useLiveStates(id: string, reloadRun: () => void, reloadDecisions: () => void, seenUntil: { current: number }) {
  const [state, setState] = useState<{ steps: Record<string, string>; run: string | undefined }>({ steps: {}, run: undefined });
  const pending = useRef<LiveEvent[]>([]);
  const flush = useMemo(
    () =>
      throttle(() => {
        const events = pending.current;
        pending.current = [];
        setState((s) => {
          const steps = { ...s.steps };
          let run = s.run;
          for (const e of events) {
            const st = stepStatusOf(e.type);
            if (st && e.step) steps[e.step] = st;
            if (e.type.startsWith('run.')) run = e.type === 'run.started' || e.type === 'run.resumed' ? 'running' : e.type.slice(4);
          }
          return { steps, run };
        });
      }, 100),
    [],
  );
  const refresh = useMemo(() => throttle(reloadRun, 250), [reloadRun]);
  const refreshDecisions = useMemo(() => throttle(reloadDecisions, 400), [reloadDecisions]);
  useEffect(() => setState({ steps: {}, run: undefined }), [id]);
  useLiveEvents({ run: id }, (e) => {
    // The stream replays the run from its start; the history the loaded run already shows is skipped whole
    // (a prefix, so the events after it still apply in order).
    if (e.at < seenUntil.current) return;
    pending.current.push(e);
    flush();
    refresh();
    if (e.type === 'gate.decided' || e.type === 'step.blocked' || e.type === 'step.waiting' || e.type === 'step.succeeded' || e.type === 'step.failed') refreshDecisions();
  });
  return state;
}

function newestTime(r: RunDetail): number {
  let t = Math.max(r.created_at, r.started_at ?? 0, r.finished_at ?? 0);
  for (const s of r.steps) for (const a of s.history) t = Math.max(t, a.queued_at ?? 0, a.started_at ?? 0, a.finished_at ?? 0);
  return t;
}

/**
 * Nodes and edges: the pipeline's graph, plus any step of the run it does not name (an older version). A run
 * sharing no step with the graph (an attribute pipeline's run is one `attribute` step over the dataset) shows
 * its own steps.
 */
function graphOf(graph: GraphJson | undefined, steps: Step[]) {
  const declared = graph ? [...graph.nodes] : [];
  const shared = steps.length === 0 || steps.some((s) => declared.some((n) => n.name === s.name));
  const nodes = shared ? declared : [];
  const known = new Set(nodes.map((n) => n.name));
  for (const s of steps) if (!known.has(s.name)) nodes.push({ name: s.name, uses: '', needs: [], if: null, disabled: false });
  return { nodes, edges: shared ? (graph?.edges ?? []) : [] };
}

function RunControls({ run, status, onDone }: { run: RunDetail; status: string; onDone: () => void }) {
  const can = useCan('operator');
  const [target, setTarget] = useState('');
  if (!can) return null;
  const act = (action: string) => async () => {
    await api(`/api/runs/${enc(run.id)}/${action}`, { method: 'POST', json: {} });
    onDone();
  };
  return (
    <div className="controls" data-testid="run-controls">
      {ACTIVE.includes(status) ? <ActionButton onClick={act('pause')}>Pause</ActionButton> : null}
      {status === 'paused' ? <ActionButton onClick={act('resume')}>Resume</ActionButton> : null}
      {[...ACTIVE, 'paused'].includes(status) ? (
        <ActionButton kind="danger" onClick={act('cancel')}>
          Cancel
        </ActionButton>
      ) : null}
      {status === 'failed' || status === 'cancelled' ? <ActionButton onClick={act('retry')}>Retry</ActionButton> : null}
      <span className="rollback">
        <select value={target} onChange={(e) => setTarget(e.target.value)} aria-label="Roll back to step">
          <option value="">roll back to step…</option>
          {run.steps.map((s) => (
            <option key={s.name} value={s.name}>
              {s.name}
            </option>
          ))}
        </select>
        <ActionButton
          disabled={!target}
          onClick={async () => {
            await api(`/api/runs/${enc(run.id)}/rollback`, { json: { to: target } });
            onDone();
          }}
        >
          Roll back
        </ActionButton>
      </span>
    </div>
  );
}

function StepPanel({ runId, step, status, onDecided }: { runId: string; step: Step; status: string; onDecided: () => void }) {
  const logs = useAsync(() => api<{ logs: LogLine[] }>(`/api/runs/${enc(runId)}/steps/${enc(step.name)}/logs`), [runId, step.name, step.status, step.attempts]);
  const last = step.history.at(-1);
  return (
    <div data-testid="step-panel">
      <h2>
        {step.name} <StatusBadge status={status} />
      </h2>
      <p className="muted">
        {step.attempts} attempt{step.attempts === 1 ? '' : 's'}
        {last?.processing_time_ms != null ? ` · last took ${duration(last.processing_time_ms)}` : ''}
        {last?.usage?.model ? ` · ${last.usage.model} ${last.usage.tokens_in ?? 0}/${last.usage.tokens_out ?? 0} tokens` : ''}
      </p>
      {step.cache_reason ? (
        <p className="muted" data-testid="cache-reason">
          Cache: {step.cache_reason}
          {step.cache_explain?.run_id ? (
            <>
              {' '}
              ({step.cache_explain.decision === 'cached' ? 'result of' : 'compared with'}{' '}
              <Link to={`/runs/${enc(step.cache_explain.run_id)}`}>that run</Link>)
            </>
          ) : null}
        </p>
      ) : null}
      {status === 'blocked' ? <Approval runId={runId} step={step.name} onDecided={onDecided} /> : null}
      {status === 'waiting' ? <WaitNotice output={step.output} /> : null}
      {step.error ? <ErrorDetail error={step.error} /> : null}
      <h3>Output</h3>
      {step.output === null || step.output === undefined ? <p className="muted">No output.</p> : <JsonView value={step.output} />}
      <h3>Logs</h3>
      {logs.data === undefined ? (
        logs.error ? <ErrorBox error={logs.error} /> : <Skeleton rows={2} />
      ) : logs.data.logs.length === 0 ? (
        <p className="muted">No log lines.</p>
      ) : (
        <pre className="logs" data-testid="logs">
          {logs.data.logs.map((l, i) => (
            <div key={i} className={`log-${l.stream}`}>
              <span className="muted">#{l.attempt} {new Date(l.at).toISOString().slice(11, 23)}</span> {l.line}
            </div>
          ))}
        </pre>
      )}
      {step.history.length ? (
        <>
          <h3>Attempts</h3>
          <table className="grid compact">
            <thead>
              <tr>
                <th>#</th>
                <th>Status</th>
                <th>Queued</th>
                <th>Processing</th>
                <th>Error</th>
              </tr>
            </thead>
            <tbody>
              {step.history.map((a) => (
                <tr key={a.number}>
                  <td>{a.number}</td>
                  <td>
                    <StatusBadge status={a.status} />
                  </td>
                  <td>{a.queued_at ? new Date(a.queued_at).toISOString().slice(11, 23) : '—'}</td>
                  <td>{duration(a.processing_time_ms)}</td>
                  <td>{a.error?.message ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </div>
  );
}

/** What a waiting step (`sleep`, `wait_for_event`) waits for, and until when. */
/** What flow rules did to a queued run: the run a singleton queue holds it behind, the starts a debounce absorbed. */
function FlowNote({ flow }: { flow: RunDetail['flow'] }) {
  const after = flow?.after_run_id;
  const absorbed = flow?.absorbed ?? 0;
  if (!after && absorbed < 2) return null;
  return (
    <span className="muted" data-testid="run-flow">
      {after ? <>waits for run <Link to={`/runs/${enc(after)}`}><code>{after}</code></Link> to end</> : null}
      {after && absorbed > 1 ? ' · ' : null}
      {absorbed > 1 ? `stands for ${absorbed} start requests` : null}
    </span>
  );
}

function WaitNotice({ output }: { output: unknown }) {
  const w = (output ?? {}) as { waiting_for?: string; event?: string; match?: string; until?: string };
  const until = w.until ? ` until ${new Date(w.until).toLocaleString()}` : '';
  const what = w.waiting_for === 'event' ? `event ${w.event ?? ''}${w.match ? ` matching ${w.match}` : ''}` : 'its time';
  return (
    <p className="notice" data-testid="wait-notice">
      Waiting for {what}
      {until}. No worker is held while it waits.
    </p>
  );
}

function Approval({ runId, step, onDecided }: { runId: string; step: string; onDecided: () => void }) {
  const can = useCan('operator');
  const [comment, setComment] = useState('');
  if (!can) return <p className="notice">Waiting for an operator to approve or reject this step.</p>;
  const decide = (decision: 'approve' | 'reject') => async () => {
    await api(`/api/runs/${enc(runId)}/steps/${enc(step)}/approval`, { json: { decision, ...(comment.trim() ? { comment: comment.trim() } : {}) } });
    onDecided();
  };
  return (
    <div className="approval" data-testid="approval">
      <p>
        <b>This step is waiting for a decision.</b>
      </p>
      <textarea rows={2} placeholder="Comment (optional)" value={comment} onChange={(e) => setComment(e.target.value)} data-testid="approval-comment" />
      <div className="row">
        <ActionButton kind="primary" onClick={decide('approve')} testId="approve">
          Approve
        </ActionButton>
        <ActionButton kind="danger" onClick={decide('reject')} testId="reject">
          Reject
        </ActionButton>
      </div>
    </div>
  );
}

function ErrorDetail({ error }: { error: NonNullable<Step['error']> }) {
  return (
    <div className="error-detail">
      <b>{error.code ? `${error.code}: ` : ''}</b>
      {error.message ?? JSON.stringify(error)}
      {error.stack ? <pre className="stack">{error.stack}</pre> : null}
    </div>
  );
}

function Decisions({ data, error }: { data: Array<Record<string, unknown>> | undefined; error: unknown }) {
  if (error) return <ErrorBox error={error} />;
  if (!data || data.length === 0) return null;
  return (
    <div className="panel">
      <h2>Decisions</h2>
      <table className="grid compact" data-testid="decisions">
        <thead>
          <tr>
            <th>Step</th>
            <th>Decision</th>
            <th>Reason</th>
            <th>Details</th>
            <th>At</th>
          </tr>
        </thead>
        <tbody>
          {data.map((d, i) => (
            <tr key={String(d['id'] ?? i)}>
              <td>{String(d['step'] ?? '')}</td>
              <td>
                <Badge kind={decisionKind(String(d['decision']))}>{String(d['decision'] ?? '')}</Badge>
              </td>
              <td>{String(d['reason'] ?? d['comment'] ?? d['message'] ?? '')}{d['by'] ? ` (${String(d['by'])})` : ''}</td>
              <td className="json-cell">
                <JsonView value={omit(d, ['id', 'runId', 'run_id', 'step', 'decision', 'at', 'reason', 'comment', 'by'])} depth={2} />
              </td>
              <td>
                <Time at={typeof d['at'] === 'number' ? d['at'] : null} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function decisionKind(d: string): string {
  return d === 'proceed' || d === 'approve' ? 'status-succeeded' : d === 'retry' ? 'status-retrying' : 'failing';
}

function omit(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}

import { useCallback, useEffect, useRef } from 'react';
import { api, enc, type LiveEvent, type PipelineSummary, type Run } from '../api';
import { Badge, Empty, ErrorBox, Skeleton, StatusBadge, Time, useAsync } from '../components/ui';
import { useLiveEvents } from '../live';
import { Link } from '../router';

type Row = PipelineSummary;

/** Every pipeline with its newest run, eval counts and mean confidence: one request. */
async function loadRows(name?: string): Promise<Row[]> {
  const q = name === undefined ? '' : `&name=${enc(name)}`;
  return (await api<{ pipelines: Row[] }>(`/api/pipelines?summary=true${q}`)).pipelines;
}

/** The run status a `run.*` event announces. */
const RUN_STATUS: Record<string, Run['status']> = {
  'run.queued': 'queued',
  'run.started': 'running',
  'run.resumed': 'running',
  'run.paused': 'paused',
  'run.waiting': 'waiting',
  'run.succeeded': 'succeeded',
  'run.failed': 'failed',
  'run.cancelled': 'cancelled',
};

/**
 * A row after a `run.*` event of its newest run: the status changes in place, from the event alone. Undefined
 * when the row needs the server: a run not shown yet (a new run, or a pipeline not listed yet).
 */
function applyRunEvent(row: Row, e: LiveEvent): Row | undefined {
  const status = RUN_STATUS[e.type];
  const last = row.last_run;
  if (!status || !last || last.id !== e.run_id) return undefined;
  return last.status === status ? row : { ...row, last_run: { ...last, status } };
}

const SETTLED = new Set(['run.succeeded', 'run.failed', 'run.cancelled']);

export function PipelinesPage() {
  const rows = useAsync(() => loadRows(), []);
  const current = useRef(rows.data);
  current.current = rows.data;
  // Several events (and refetches) may land before the next render: each change starts from the latest list.
  const setRows = useCallback(
    (list: Row[]) => {
      current.current = list;
      rows.set(list);
    },
    [rows.set],
  );
  // Rows fetched again one at a time (a new pipeline, or evals and values after a run settled), a second apart.
  const pending = useRef(new Set<string>());
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const refetch = useCallback(
    (name: string) => {
      pending.current.add(name);
      if (timer.current) return;
      timer.current = setTimeout(() => {
        timer.current = undefined;
        const names = [...pending.current];
        pending.current.clear();
        for (const n of names) {
          void loadRows(n).then((fresh) => {
            const list = current.current ?? [];
            const [row] = fresh;
            if (!row) return;
            const at = list.findIndex((r) => r.name === n);
            setRows(at >= 0 ? list.map((r, i) => (i === at ? row : r)) : [...list, row].sort((a, b) => (a.name < b.name ? -1 : 1)));
          }, () => undefined);
        }
      }, 1000);
    },
    [setRows],
  );
  useEffect(() => () => clearTimeout(timer.current), []);
  useLiveEvents({}, (e) => {
    const list = current.current;
    if (!list || !e.type.startsWith('run.')) return;
    const row = list.find((r) => r.name === e.pipeline);
    const next = row && applyRunEvent(row, e);
    if (next && next !== row) setRows(list.map((r) => (r === row ? next : r)));
    // A new run, a pipeline not listed yet, or a run that settled (its evals and values may have changed).
    if (!row || SETTLED.has(e.type) || (!next && e.type === 'run.queued')) refetch(e.pipeline);
  });
  return (
    <section>
      <h1>Pipelines</h1>
      <ErrorBox error={rows.error} />
      {rows.data === undefined ? (
        rows.error ? null : <Skeleton rows={5} />
      ) : rows.data.length === 0 ? (
        <Empty>
          No pipelines yet — register one with <code>sluice run pipeline.yaml</code> (the file is registered by name) or <code>PUT /api/pipelines/:name</code>.
        </Empty>
      ) : (
        <table className="grid" data-testid="pipelines">
          <thead>
            <tr>
              <th>Name</th>
              <th>Description</th>
              <th>Last run</th>
              <th>Avg confidence</th>
              <th>Evals</th>
            </tr>
          </thead>
          <tbody>
            {rows.data.map((r) => (
              <PipelineRow key={r.name} row={r} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function PipelineRow({ row: p }: { row: Row }) {
  const lastRun = p.last_run ?? undefined;
  const evals = p.evals;
  const confidence = p.avg_confidence;
  const failed = evals?.failed ?? 0;
  return (
    <tr data-pipeline={p.name}>
      <td>
        <Link to={`/pipelines/${enc(p.name)}`}>
          <b>{p.name}</b>
        </Link>{' '}
        <span className="muted">v{p.version}</span> {p.disabled ? <Badge kind="muted">disabled</Badge> : null}
        {p.attribute ? <Badge kind="info">attribute · {p.attribute.dataset}.{p.attribute.target}</Badge> : null}
      </td>
      <td className="desc">{p.description ?? <span className="muted">—</span>}</td>
      <td>
        {lastRun ? (
          <Link to={`/runs/${enc(lastRun.id)}`}>
            <StatusBadge status={lastRun.status} /> <Time at={lastRun.created_at} />
          </Link>
        ) : (
          <span className="muted">never run</span>
        )}
      </td>
      <td>{typeof confidence === 'number' ? `${(confidence * 100).toFixed(0)} %` : <span className="muted">—</span>}</td>
      <td>
        {evals && evals.total > 0 ? (
          <Link to={`/pipelines/${enc(p.name)}?tab=evals`}>
            <span className="pass">{evals.passed} passed</span> · <span className={failed ? 'fail' : ''}>{failed} failed</span>
            {failed > 0 ? <Badge kind="failing">failing</Badge> : null}
          </Link>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
    </tr>
  );
}

import { useEffect, useMemo, useState } from 'react';
import { api, enc, type PipelineSummary, type Run } from '../api';
import { ActionButton, duration, Empty, ErrorBox, Skeleton, StatusBadge, Time, useAsync } from '../components/ui';
import { throttle, useLiveEvents } from '../live';
import { Link, setQuery, useLocation } from '../router';

const STATUSES = ['queued', 'running', 'paused', 'waiting', 'succeeded', 'failed', 'cancelled'];

type RunPage = { runs: Run[]; next_cursor: string | null };

/**
 * Runs newest first, filtered by pipeline and status, refreshed live from the event stream. The first page
 * (100 runs) refreshes; "More" appends the pages after it.
 */
export function RunsPage() {
  const { query } = useLocation();
  const pipeline = query.get('pipeline') ?? '';
  const status = query.get('status') ?? '';
  const pipelines = useAsync(() => api<{ pipelines: PipelineSummary[] }>('/api/pipelines'), []);
  const page = (cursor?: string) => {
    const q = new URLSearchParams({ limit: '100' });
    if (pipeline) q.set('pipeline', pipeline);
    if (status) q.set('status', status);
    if (cursor) q.set('cursor', cursor);
    return api<RunPage>(`/api/runs?${q.toString()}`);
  };
  const runs = useAsync(() => page(), [pipeline, status]);
  const [older, setOlder] = useState<RunPage[]>([]);
  useEffect(() => setOlder([]), [pipeline, status]);
  const nextCursor = (older.at(-1) ?? runs.data)?.next_cursor ?? null;
  const shown = useMemo(() => {
    const seen = new Set<string>();
    return [runs.data?.runs ?? [], ...older.map((p) => p.runs)].flat().filter((r) => !seen.has(r.id) && seen.add(r.id));
  }, [runs.data, older]);
  const refresh = useMemo(() => throttle(runs.reload, 500), [runs.reload]);
  useLiveEvents({ pipeline: pipeline || undefined }, (e) => {
    if (e.type.startsWith('run.')) refresh();
  });
  return (
    <section>
      <h1>Runs</h1>
      <div className="filters">
        <label>
          Pipeline{' '}
          <select value={pipeline} onChange={(e) => setQuery({ pipeline: e.target.value })} data-testid="filter-pipeline">
            <option value="">all</option>
            {pipelines.data?.pipelines.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status{' '}
          <select value={status} onChange={(e) => setQuery({ status: e.target.value })} data-testid="filter-status">
            <option value="">all</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        {runs.loading && runs.data ? <span className="spin small" /> : null}
      </div>
      <ErrorBox error={runs.error} />
      {runs.data === undefined ? (
        runs.error ? null : <Skeleton rows={8} />
      ) : runs.data.runs.length === 0 ? (
        <Empty>
          No runs {pipeline || status ? 'match these filters' : 'yet'} — start one with <code>sluice run {pipeline || '<pipeline>'}</code> or from a pipeline page.
        </Empty>
      ) : (
        <>
          <RunTable runs={shown} />
          {nextCursor ? (
            <ActionButton onClick={async () => setOlder([...older, await page(nextCursor)])} testId="runs-more">
              More
            </ActionButton>
          ) : null}
        </>
      )}
    </section>
  );
}

export function RunTable({ runs }: { runs: Run[] }) {
  return (
    <table className="grid" data-testid="runs">
      <thead>
        <tr>
          <th>Run</th>
          <th>Pipeline</th>
          <th>Status</th>
          <th>Created</th>
          <th>Duration</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((r) => (
          <tr key={r.id} data-run={r.id}>
            <td>
              <Link to={`/runs/${enc(r.id)}`}>
                <code>{r.id}</code>
              </Link>
            </td>
            <td>
              <Link to={`/pipelines/${enc(r.pipeline)}`}>{r.pipeline}</Link> <span className="muted">v{r.version}</span>
            </td>
            <td>
              <StatusBadge status={r.status} />
            </td>
            <td>
              <Time at={r.created_at} />
            </td>
            <td>{r.finished_at ? duration(r.finished_at - (r.started_at ?? r.created_at)) : r.started_at ? <span className="muted">running…</span> : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

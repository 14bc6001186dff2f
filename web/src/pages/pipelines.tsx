import { useMemo } from 'react';
import { api, apiOptional, enc, type EvalSet, type PipelineStats, type PipelineSummary, type Run } from '../api';
import { Badge, Empty, ErrorBox, Skeleton, StatusBadge, Time, useAsync } from '../components/ui';
import { throttle, useLiveEvents } from '../live';
import { Link } from '../router';

interface Row {
  pipeline: PipelineSummary;
  lastRun: Run | undefined;
  stats: PipelineStats | undefined;
  evals: EvalSet | undefined;
}

/** Composed from the registry, the newest run, stats and evals of each pipeline; a missing route is just blank. */
async function loadRows(): Promise<Row[]> {
  const { pipelines } = await api<{ pipelines: PipelineSummary[] }>('/api/pipelines');
  return Promise.all(
    pipelines.map(async (p) => {
      const [runs, stats, evals] = await Promise.all([
        apiOptional<{ runs: Run[] }>(`/api/runs?pipeline=${enc(p.name)}&limit=1`),
        apiOptional<PipelineStats>(`/api/pipelines/${enc(p.name)}/stats`).catch(() => undefined),
        apiOptional<EvalSet>(`/api/pipelines/${enc(p.name)}/evals`).catch(() => undefined),
      ]);
      return { pipeline: p, lastRun: runs?.runs[0], stats, evals };
    }),
  );
}

export function PipelinesPage() {
  const rows = useAsync(loadRows, []);
  const refresh = useMemo(() => throttle(rows.reload, 1000), [rows.reload]);
  useLiveEvents({}, (e) => {
    if (e.type.startsWith('run.')) refresh();
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
              <PipelineRow key={r.pipeline.name} row={r} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function PipelineRow({ row }: { row: Row }) {
  const { pipeline: p, lastRun, stats, evals } = row;
  const confidence = stats?.attributes?.avg_confidence;
  const failed = evals?.summary.failed ?? 0;
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
        {evals && evals.summary.total > 0 ? (
          <Link to={`/pipelines/${enc(p.name)}?tab=evals`}>
            <span className="pass">{evals.summary.passed} passed</span> · <span className={failed ? 'fail' : ''}>{failed} failed</span>
            {failed > 0 ? <Badge kind="failing">failing</Badge> : null}
          </Link>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
    </tr>
  );
}

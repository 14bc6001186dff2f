import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { api, enc, type GraphJson, type PipelineDetail, type PipelineSummary, type Run, type RunDetail } from '../api';
import { ActionButton, Badge, Empty, ErrorBox, Skeleton, Spinner, StatusBadge, Time, useAsync } from '../components/ui';
import { stepStatusOf, throttle, useLiveEvents } from '../live';
import { Link, navigate, setQuery, useLocation } from '../router';
import { useCan } from '../session';
import { DefinitionTab } from './definition';
import { EvalsTab } from './evals';
import { RunTable } from './runs';
import { StatsTab } from './stats';

const Dag = lazy(() => import('../components/dag'));

const TABS = ['graph', 'definition', 'versions', 'stats', 'evals', 'runs'] as const;

export default function PipelinePage({ name }: { name: string }) {
  const { query } = useLocation();
  const tab = (TABS as readonly string[]).includes(query.get('tab') ?? '') ? query.get('tab')! : 'graph';
  const pipeline = useAsync(() => api<PipelineDetail>(`/api/pipelines/${enc(name)}`), [name]);
  if (pipeline.data === undefined) {
    return (
      <section>
        <h1>{name}</h1>
        {pipeline.error ? <ErrorBox error={pipeline.error} /> : <Skeleton rows={6} />}
      </section>
    );
  }
  const p = pipeline.data;
  return (
    <section>
      <div className="title-row">
        <h1>
          {p.name} <span className="muted">v{p.version}</span> {p.disabled ? <Badge kind="muted">disabled</Badge> : null}
        </h1>
        <StartRun pipeline={p} />
      </div>
      {p.description ? <p className="desc">{p.description}</p> : null}
      {p.attribute ? (
        <p className="muted">
          Attribute pipeline: writes <b>{p.attribute.target}</b> of dataset <Link to={`/datasets/${enc(p.attribute.dataset)}`}>{p.attribute.dataset}</Link> from{' '}
          {p.attribute.fields.join(', ')}
        </p>
      ) : null}
      <nav className="tabs">
        {TABS.map((t) => (
          <button key={t} type="button" className={t === tab ? 'active' : ''} onClick={() => setQuery({ tab: t === 'graph' ? null : t })} data-tab={t}>
            {t[0]!.toUpperCase() + t.slice(1)}
          </button>
        ))}
      </nav>
      {tab === 'graph' ? <GraphTab name={name} /> : null}
      {tab === 'definition' ? <DefinitionTab pipeline={p} onSaved={pipeline.set} /> : null}
      {tab === 'versions' ? <VersionsTab name={name} /> : null}
      {tab === 'stats' ? <StatsTab name={name} /> : null}
      {tab === 'evals' ? <EvalsTab name={name} /> : null}
      {tab === 'runs' ? <PipelineRuns name={name} /> : null}
    </section>
  );
}

function StartRun({ pipeline }: { pipeline: PipelineSummary }) {
  const can = useCan('operator');
  const [open, setOpen] = useState(false);
  const [input, setInput] = useState('{}');
  const [error, setError] = useState<unknown>();
  if (!can || pipeline.disabled) return null;
  const start = async () => {
    let parsed: unknown;
    try {
      parsed = input.trim() === '' ? null : JSON.parse(input);
    } catch (err) {
      setError(new Error(`Input is not JSON: ${(err as Error).message}`));
      return;
    }
    setError(undefined);
    const run = await api<Run>(`/api/pipelines/${enc(pipeline.name)}/runs`, { json: { input: parsed } });
    navigate(`/runs/${enc(run.id)}`);
  };
  return (
    <div className="start-run">
      {open ? (
        <div className="popover">
          <label>
            Input (JSON)
            <textarea rows={5} value={input} onChange={(e) => setInput(e.target.value)} data-testid="run-input" spellCheck={false} />
          </label>
          <ErrorBox error={error} />
          <div className="row">
            <ActionButton kind="primary" onClick={start} testId="start-run-submit">
              Start
            </ActionButton>
            <button type="button" onClick={() => setOpen(false)}>
              Close
            </button>
          </div>
        </div>
      ) : (
        <button type="button" className="primary" onClick={() => setOpen(true)} data-testid="start-run">
          Start run
        </button>
      )}
    </div>
  );
}

/** The DAG colored by the states of a run of this pipeline (the newest unless one is picked), live. */
function GraphTab({ name }: { name: string }) {
  const graph = useAsync(() => api<GraphJson>(`/api/pipelines/${enc(name)}/graph`), [name]);
  const runs = useAsync(() => api<{ runs: Run[] }>(`/api/runs?pipeline=${enc(name)}&limit=20`), [name]);
  const [picked, setPicked] = useState<string>('');
  const runId = picked || runs.data?.runs[0]?.id || '';
  const run = useAsync(() => (runId ? api<RunDetail>(`/api/runs/${enc(runId)}`) : Promise.resolve(undefined)), [runId]);
  const [live, setLive] = useState<Record<string, string>>({});
  useEffect(() => setLive({}), [runId]);
  const refreshRuns = useMemo(() => throttle(runs.reload, 800), [runs.reload]);
  useLiveEvents({ pipeline: name }, (e) => {
    if (e.type === 'run.queued') refreshRuns();
    const status = stepStatusOf(e.type);
    if (status && e.step && e.run_id === runId) setLive((s) => ({ ...s, [e.step!]: status }));
  });
  const states = useMemo(() => {
    const merged: Record<string, string> = {};
    for (const s of run.data?.steps ?? []) merged[s.name] = s.status;
    Object.assign(merged, live);
    // An attribute pipeline runs as one `attribute` step over its dataset: its state colors every declared step.
    const declared = graph.data?.nodes ?? [];
    const steps = Object.keys(merged);
    if (steps.length === 1 && !declared.some((n) => n.name === steps[0])) for (const n of declared) merged[n.name] = merged[steps[0]!]!;
    return merged;
  }, [run.data, live, graph.data]);
  if (graph.data === undefined) return graph.error ? <ErrorBox error={graph.error} /> : <Skeleton rows={6} />;
  return (
    <div>
      <div className="filters">
        <label>
          Colored by run{' '}
          <select
            value={runId}
            onChange={(e) => setPicked(e.target.value)}
          >
            {runs.data?.runs.length ? null : <option value="">no runs yet</option>}
            {runs.data?.runs.map((r) => (
              <option key={r.id} value={r.id}>
                {r.id} · {r.status}
              </option>
            ))}
          </select>
        </label>
        {runId ? <Link to={`/runs/${enc(runId)}`}>open run →</Link> : null}
        {run.data ? <StatusBadge status={run.data.status} /> : null}
      </div>
      <Suspense fallback={<Spinner label="Drawing graph…" />}>
        <Dag nodes={graph.data.nodes} edges={graph.data.edges} states={states} />
      </Suspense>
    </div>
  );
}

function VersionsTab({ name }: { name: string }) {
  const versions = useAsync(() => api<{ versions: PipelineSummary[] }>(`/api/pipelines/${enc(name)}/versions`), [name]);
  if (versions.data === undefined) return versions.error ? <ErrorBox error={versions.error} /> : <Skeleton />;
  const list = [...versions.data.versions].sort((a, b) => b.version - a.version);
  return (
    <table className="grid" data-testid="versions">
      <thead>
        <tr>
          <th>Version</th>
          <th>Hash</th>
          <th>Steps</th>
          <th>State</th>
          <th>Stored</th>
        </tr>
      </thead>
      <tbody>
        {list.map((v) => (
          <tr key={v.version}>
            <td>v{v.version}</td>
            <td>
              <code>{v.hash.slice(0, 12)}</code>
            </td>
            <td>{v.steps.join(' · ')}</td>
            <td>{v.disabled ? <Badge kind="muted">disabled</Badge> : <Badge kind="status-succeeded">enabled</Badge>}</td>
            <td>
              <Time at={v.created_at} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function PipelineRuns({ name }: { name: string }) {
  const runs = useAsync(() => api<{ runs: Run[] }>(`/api/runs?pipeline=${enc(name)}&limit=50`), [name]);
  const refresh = useMemo(() => throttle(runs.reload, 500), [runs.reload]);
  useLiveEvents({ pipeline: name }, (e) => {
    if (e.type.startsWith('run.')) refresh();
  });
  if (runs.data === undefined) return runs.error ? <ErrorBox error={runs.error} /> : <Skeleton />;
  if (runs.data.runs.length === 0) {
    return (
      <Empty>
        No runs yet — start one with <code>sluice run {name}</code> or the Start run button.
      </Empty>
    );
  }
  return <RunTable runs={runs.data.runs} />;
}

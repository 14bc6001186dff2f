import { useState } from 'react';
import { api, enc, type PipelineStats } from '../api';
import { BarChart, LineChart } from '../components/charts';
import { duration, Empty, ErrorBox, Skeleton, useAsync } from '../components/ui';

const WINDOWS = [
  { label: 'Last hour', ms: 3600_000, buckets: 12 },
  { label: 'Last 24 h', ms: 86400_000, buckets: 24 },
  { label: 'Last 7 days', ms: 7 * 86400_000, buckets: 28 },
  { label: 'Last 30 days', ms: 30 * 86400_000, buckets: 30 },
];

const STATUS_COLORS: Record<string, string> = {
  succeeded: '#16a34a',
  failed: '#dc2626',
  cancelled: '#6b7280',
  running: '#2563eb',
  queued: '#a3a3a3',
  waiting: '#d97706',
  paused: '#9333ea',
};

const money = (v: number) => (v === 0 ? '$0' : v < 0.01 ? `$${v.toFixed(4)}` : `$${v.toFixed(2)}`);
const count = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k` : String(Math.round(v * 100) / 100));

export function StatsTab({ name }: { name: string }) {
  const [w, setW] = useState(1);
  const win = WINDOWS[w]!;
  const stats = useAsync(() => api<PipelineStats>(`/api/pipelines/${enc(name)}/stats?since=${Date.now() - win.ms}&buckets=${win.buckets}`), [name, w]);
  const s = stats.data;
  return (
    <div>
      <div className="filters">
        <label>
          Window{' '}
          <select value={w} onChange={(e) => setW(Number(e.target.value))}>
            {WINDOWS.map((x, i) => (
              <option key={x.label} value={i}>
                {x.label}
              </option>
            ))}
          </select>
        </label>
        {stats.loading && s ? <span className="spin small" /> : null}
      </div>
      <ErrorBox error={stats.error} />
      {s === undefined ? stats.error ? null : <Skeleton rows={6} /> : <StatsView s={s} />}
    </div>
  );
}

function StatsView({ s }: { s: PipelineStats }) {
  const runCount = Object.values(s.runs.by_status).reduce((a, b) => a + b, 0);
  const series = s.series ?? [];
  const times = series.map((b) => b.start);
  const statuses = Object.keys(STATUS_COLORS).filter((st) => series.some((b) => b.by_status[st]));
  return (
    <div className="stats">
      <div className="cards">
        <Card label="Runs" value={String(runCount)} sub={Object.entries(s.runs.by_status).map(([k, v]) => `${v} ${k}`).join(' · ') || 'none'} />
        <Card label="p50 / p95 / p99" value={`${duration(s.runs.duration.p50)}`} sub={`${duration(s.runs.duration.p95)} / ${duration(s.runs.duration.p99)}`} />
        <Card label="Tokens in / out" value={`${count(s.tokens_in)} / ${count(s.tokens_out)}`} />
        <Card label="Cost" value={money(s.cost)} />
        {s.attributes ? (
          <Card
            label="Derived values"
            value={String(s.attributes.values)}
            sub={typeof s.attributes.avg_confidence === 'number' ? `average confidence ${(s.attributes.avg_confidence * 100).toFixed(0)} %` : 'no confidence reported'}
          />
        ) : null}
      </div>
      {runCount === 0 ? (
        <Empty>No runs in this window — start one with <code>sluice run {s.pipeline}</code>.</Empty>
      ) : (
        <div className="charts" data-testid="charts">
          <LineChart
            title="Run duration (p50 / p95 / p99)"
            times={times}
            format={(v) => duration(v)}
            series={[
              { name: 'p50', color: '#2563eb', values: series.map((b) => b.duration.p50) },
              { name: 'p95', color: '#d97706', values: series.map((b) => b.duration.p95) },
              { name: 'p99', color: '#dc2626', values: series.map((b) => b.duration.p99) },
            ]}
          />
          <BarChart title="Runs by status" times={times} format={count} series={statuses.map((st) => ({ name: st, color: STATUS_COLORS[st]!, values: series.map((b) => b.by_status[st] ?? 0) }))} />
          <BarChart
            title="Tokens"
            times={times}
            format={count}
            series={[
              { name: 'in', color: '#0891b2', values: series.map((b) => b.tokens_in) },
              { name: 'out', color: '#7c3aed', values: series.map((b) => b.tokens_out) },
            ]}
          />
          <LineChart title="Cost" times={times} format={money} series={[{ name: 'cost', color: '#059669', values: series.map((b) => b.cost) }]} />
        </div>
      )}
      {s.steps.length ? (
        <table className="grid">
          <thead>
            <tr>
              <th>Step</th>
              <th>By status</th>
              <th>Attempts</th>
              <th>p50</th>
              <th>p95</th>
              <th>p99</th>
              <th>Tokens in/out</th>
              <th>Cost</th>
            </tr>
          </thead>
          <tbody>
            {s.steps.map((st) => (
              <tr key={st.name}>
                <td>{st.name}</td>
                <td>{Object.entries(st.by_status).map(([k, v]) => `${v} ${k}`).join(' · ')}</td>
                <td>{st.attempts}</td>
                <td>{duration(st.duration.p50)}</td>
                <td>{duration(st.duration.p95)}</td>
                <td>{duration(st.duration.p99)}</td>
                <td>
                  {count(st.tokens_in)} / {count(st.tokens_out)}
                </td>
                <td>{money(st.cost)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}

function Card({ label, value, sub }: { label: string; value: string; sub?: string }) {
  return (
    <div className="card">
      <div className="muted">{label}</div>
      <div className="big">{value}</div>
      {sub ? <div className="muted small">{sub}</div> : null}
    </div>
  );
}

/** Small SVG charts for the stats tab (no chart library: keeps the bundle small). */

export interface Series {
  name: string;
  color: string;
  values: Array<number | null>;
}

const W = 560;
const H = 180;
const PAD = { left: 52, right: 12, top: 12, bottom: 26 };

function ticks(max: number): number[] {
  if (max <= 0) return [0];
  const step = niceStep(max / 4);
  const out: number[] = [];
  for (let v = 0; v <= max + step / 2; v += step) out.push(v);
  return out;
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function timeLabel(t: number, spanMs: number): string {
  const d = new Date(t);
  if (spanMs > 2 * 86400_000) return `${d.getMonth() + 1}/${d.getDate()}`;
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

interface Frame {
  title: string;
  times: number[];
  format: (v: number) => string;
}

function Axes({ frame, max, x }: { frame: Frame; max: number; x: (i: number) => number }) {
  const ys = ticks(max);
  const top = ys.at(-1) || 1;
  const span = (frame.times.at(-1) ?? 0) - (frame.times[0] ?? 0);
  const every = Math.max(1, Math.ceil(frame.times.length / 6));
  return (
    <g className="axes">
      {ys.map((v) => {
        const y = PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / top);
        return (
          <g key={v}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y} y2={y} className="grid" />
            <text x={PAD.left - 6} y={y + 4} textAnchor="end">
              {frame.format(v)}
            </text>
          </g>
        );
      })}
      {frame.times.map((t, i) =>
        i % every === 0 ? (
          <text key={t} x={x(i)} y={H - 8} textAnchor="middle">
            {timeLabel(t, span)}
          </text>
        ) : null,
      )}
    </g>
  );
}

function Legend({ series }: { series: Array<{ name: string; color: string }> }) {
  return (
    <div className="legend">
      {series.map((s) => (
        <span key={s.name}>
          <i style={{ background: s.color }} />
          {s.name}
        </span>
      ))}
    </div>
  );
}

/** Lines over time buckets; null values leave gaps. */
export function LineChart({ title, times, series, format }: Frame & { series: Series[] }) {
  const values = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const max = ticks(Math.max(0, ...values)).at(-1) || 1;
  const x = (i: number) => PAD.left + ((W - PAD.left - PAD.right) * (i + 0.5)) / Math.max(1, times.length);
  const y = (v: number) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / max);
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
        <Axes frame={{ title, times, format }} max={max} x={x} />
        {series.map((s) => {
          const segments: string[] = [];
          let current = '';
          s.values.forEach((v, i) => {
            if (v === null) {
              if (current) segments.push(current);
              current = '';
            } else current += `${current ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
          });
          if (current) segments.push(current);
          return (
            <g key={s.name}>
              {segments.map((d) => (
                <path key={d} d={d} fill="none" stroke={s.color} strokeWidth={2} />
              ))}
              {s.values.map((v, i) => (v === null ? null : <circle key={i} cx={x(i)} cy={y(v)} r={2.5} fill={s.color}><title>{`${s.name}: ${format(v)}`}</title></circle>))}
            </g>
          );
        })}
      </svg>
      <Legend series={series} />
    </figure>
  );
}

/** Stacked bars over time buckets. */
export function BarChart({ title, times, series, format }: Frame & { series: Series[] }) {
  const totals = times.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = ticks(Math.max(0, ...totals)).at(-1) || 1;
  const slot = (W - PAD.left - PAD.right) / Math.max(1, times.length);
  const x = (i: number) => PAD.left + slot * (i + 0.5);
  const h = (v: number) => ((H - PAD.top - PAD.bottom) * v) / max;
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
        <Axes frame={{ title, times, format }} max={max} x={x} />
        {times.map((t, i) => {
          let base = H - PAD.bottom;
          return (
            <g key={t}>
              {series.map((s) => {
                const v = s.values[i] ?? 0;
                if (v <= 0) return null;
                base -= h(v);
                return (
                  <rect key={s.name} x={x(i) - slot * 0.35} width={slot * 0.7} y={base} height={h(v)} fill={s.color}>
                    <title>{`${s.name}: ${format(v)}`}</title>
                  </rect>
                );
              })}
            </g>
          );
        })}
      </svg>
      <Legend series={series} />
    </figure>
  );
}

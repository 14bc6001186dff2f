import { useState } from 'react';
import type { Step } from '../api';
import { duration } from '../components/ui';

const SHOWN = 100;

/**
 * Each step's attempts as horizontal bars on one time axis: queued (light) then running (colored by the
 * attempt's outcome). A step still running extends to now.
 */
export function Timeline({ steps, states, selected, onSelect }: { steps: Step[]; states: Record<string, string>; selected: string | undefined; onSelect: (s: string) => void }) {
  const [all, setAll] = useState(false);
  const now = Date.now();
  const times = steps.flatMap((s) => s.history.flatMap((a) => [a.queued_at, a.started_at, a.finished_at])).filter((t): t is number => typeof t === 'number');
  if (times.length === 0) return <p className="muted">No step has been queued yet.</p>;
  const start = Math.min(...times);
  const end = Math.max(...times, steps.some((s) => s.history.some((a) => a.finished_at === null)) ? now : 0);
  const span = Math.max(1, end - start);
  const pct = (t: number) => `${(((t - start) / span) * 100).toFixed(3)}%`;
  const width = (a: number, b: number) => `${Math.max(0.4, ((b - a) / span) * 100).toFixed(3)}%`;
  const shown = all ? steps : steps.slice(0, SHOWN);
  return (
    <div className="timeline" data-testid="timeline">
      <div className="tl-axis">
        <span>0</span>
        <span>{duration(span / 2)}</span>
        <span>{duration(span)}</span>
      </div>
      {shown.map((s) => (
        <div key={s.name} className={`tl-row${selected === s.name ? ' selected' : ''}`} onClick={() => onSelect(s.name)} role="button" tabIndex={0} onKeyDown={(e) => e.key === 'Enter' && onSelect(s.name)}>
          <span className="tl-name" title={s.name}>
            {s.name}
          </span>
          <span className="tl-track">
            {s.history.map((a) => {
              const queued = a.queued_at ?? a.started_at;
              const started = a.started_at;
              const finished = a.finished_at ?? (started ? now : null);
              return (
                <span key={a.number}>
                  {queued !== null && (started ?? now) > queued ? (
                    <span className="tl-bar tl-queued" style={{ left: pct(queued), width: width(queued, started ?? now) }} title={`#${a.number} queued ${duration((started ?? now) - queued)}`} />
                  ) : null}
                  {started !== null && finished !== null ? (
                    <span className={`tl-bar status-${a.status}`} style={{ left: pct(started), width: width(started, finished) }} title={`#${a.number} ${a.status} ${duration(finished - started)}`} />
                  ) : null}
                </span>
              );
            })}
          </span>
          <span className={`tl-state status-${states[s.name] ?? s.status}`}>{states[s.name] ?? s.status}</span>
        </div>
      ))}
      {steps.length > SHOWN && !all ? (
        <button type="button" className="link" onClick={() => setAll(true)}>
          Show all {steps.length} steps
        </button>
      ) : null}
    </div>
  );
}

import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError } from '../api';

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="spinner" role="status" aria-live="polite">
      <span className="spin" />
      {label}
    </div>
  );
}

export function Skeleton({ rows = 4 }: { rows?: number }) {
  return (
    <div className="skeleton" aria-busy="true" aria-label="Loading">
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} className="skeleton-row" />
      ))}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof ApiError ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
  return (
    <div className="error-box" role="alert">
      {text}
    </div>
  );
}

export function StatusBadge({ status }: { status: string | null | undefined }) {
  if (!status) return <span className="badge muted">—</span>;
  return <span className={`badge status-${status}`}>{status}</span>;
}

export function Badge({ kind, children }: { kind: string; children: ReactNode }) {
  return <span className={`badge ${kind}`}>{children}</span>;
}

/** Relative time ("3 min ago") with the exact time as a tooltip. */
export function Time({ at }: { at: number | null | undefined }) {
  if (!at) return <span className="muted">—</span>;
  return <time title={new Date(at).toISOString()}>{ago(at)}</time>;
}

export function ago(at: number): string {
  const s = Math.round((Date.now() - at) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function isArtifact(v: unknown): v is { $artifact: string; size?: number; content_type?: string } {
  return typeof v === 'object' && v !== null && typeof (v as { $artifact?: unknown }).$artifact === 'string';
}

/** A collapsible JSON tree; artifact references are shown as references, not fetched. */
export function JsonView({ value, depth = 0 }: { value: unknown; depth?: number }) {
  if (isArtifact(value)) {
    return (
      <span className="artifact" title={value.$artifact}>
        artifact {value.$artifact.slice(0, 12)}…{value.size !== undefined ? ` · ${value.size} B` : ''}
        {value.content_type ? ` · ${value.content_type}` : ''}
      </span>
    );
  }
  if (value === null || typeof value !== 'object') return <span className={`json-${value === null ? 'null' : typeof value}`}>{JSON.stringify(value)}</span>;
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  const open = depth < 2;
  const brackets = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return <span>{brackets.join('')}</span>;
  return (
    <details className="json" open={open}>
      <summary>
        {brackets[0]}
        <span className="muted"> {entries.length} {Array.isArray(value) ? (entries.length === 1 ? 'item' : 'items') : entries.length === 1 ? 'key' : 'keys'} </span>
        {brackets[1]}
      </summary>
      <ul>
        {entries.map(([k, v]) => (
          <li key={k}>
            <span className="json-key">{k}</span>: <JsonView value={v} depth={depth + 1} />
          </li>
        ))}
      </ul>
    </details>
  );
}

export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  set: (data: T) => void;
}

/** Runs `load` when `deps` change and on `reload()`; keeps the last data while reloading (no flicker). */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    loadRef.current().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  const set = useCallback((data: T) => setState({ data, error: undefined, loading: false }), []);
  return { ...state, reload, set };
}

/** A button that shows progress while its action runs and reports a failure next to itself. */
export function ActionButton({ onClick, children, kind = '', disabled, title, testId }: { onClick: () => Promise<unknown>; children: ReactNode; kind?: string; disabled?: boolean; title?: string; testId?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await onClick();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="action">
      <button type="button" className={kind} disabled={busy || disabled} onClick={() => void run()} title={title} data-testid={testId}>
        {busy ? <span className="spin small" /> : null}
        {children}
      </button>
      {error ? <ErrorBox error={error} /> : null}
    </span>
  );
}

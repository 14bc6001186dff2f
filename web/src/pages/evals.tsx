import { useState, type KeyboardEvent } from 'react';
import { api, ApiError, enc, type EvalCase, type EvalSet } from '../api';
import { ActionButton, Badge, Empty, ErrorBox, JsonView, Skeleton, Time, useAsync } from '../components/ui';
import { useCan } from '../session';

/** Eval cases of a pipeline: desired output and notes edited in place (saved on blur or Enter), run on demand. */
export function EvalsTab({ name }: { name: string }) {
  const canEdit = useCan('operator');
  const evals = useAsync(() => api<EvalSet>(`/api/pipelines/${enc(name)}/evals`), [name]);
  if (evals.data === undefined) {
    if (evals.error instanceof ApiError && evals.error.status === 404 && evals.error.code === 'ROUTE_NOT_FOUND') return <Empty>This server has no evals API.</Empty>;
    return evals.error ? <ErrorBox error={evals.error} /> : <Skeleton rows={5} />;
  }
  const { summary } = evals.data;
  const update = (changed: EvalCase) => {
    const list = evals.data!.evals.map((e) => (e.id === changed.id ? changed : e));
    evals.set({ ...evals.data!, evals: list, summary: summarize(list) });
  };
  return (
    <div>
      <div className="toolbar">
        <span data-testid="eval-summary">
          <b>{summary.total}</b> {summary.total === 1 ? 'case' : 'cases'} · <span className="pass">{summary.passed} passed</span> · <span className={summary.failed ? 'fail' : ''}>{summary.failed} failed</span> · {summary.not_run} not run
        </span>
        {summary.failed > 0 ? <Badge kind="failing">failing</Badge> : null}
        {canEdit && summary.total > 0 ? (
          <ActionButton kind="primary" testId="run-evals" onClick={async () => evals.set(await api<EvalSet>(`/api/pipelines/${enc(name)}/evals/run`, { method: 'POST', json: {} }))}>
            Run evals
          </ActionButton>
        ) : null}
      </div>
      {evals.data.evals.length === 0 ? (
        <Empty>No eval cases yet — on a dataset record, override a value and choose “Add override as eval”, or PUT them to /api/pipelines/{name}/evals.</Empty>
      ) : (
        <table className="grid evals" data-testid="evals">
          <thead>
            <tr>
              <th>Case</th>
              <th>Input</th>
              <th>Desired output</th>
              <th>Actual output</th>
              <th>Confidence</th>
              <th>Result</th>
              <th>Notes</th>
              <th>Last ran</th>
            </tr>
          </thead>
          <tbody>
            {evals.data.evals.map((e) => (
              <EvalRow key={e.id} pipeline={name} row={e} canEdit={canEdit} onChange={update} />
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function summarize(list: EvalCase[]): EvalSet['summary'] {
  const passed = list.filter((e) => e.passed === true).length;
  const failed = list.filter((e) => e.passed === false).length;
  return { total: list.length, passed, failed, not_run: list.length - passed - failed };
}

function EvalRow({ pipeline, row, canEdit, onChange }: { pipeline: string; row: EvalCase; canEdit: boolean; onChange: (e: EvalCase) => void }) {
  const [error, setError] = useState<unknown>();
  const [saving, setSaving] = useState(false);
  const save = async (patch: { desired_output?: unknown; notes?: string }) => {
    setSaving(true);
    setError(undefined);
    try {
      onChange(await api<EvalCase>(`/api/pipelines/${enc(pipeline)}/evals/${enc(String(row.id))}`, { method: 'PATCH', json: patch }));
    } catch (err) {
      setError(err);
    } finally {
      setSaving(false);
    }
  };
  const result = row.passed === true ? <Badge kind="status-succeeded">pass</Badge> : row.passed === false ? <Badge kind="failing">fail</Badge> : <span className="muted">not run</span>;
  return (
    <tr className={row.passed === false ? 'failing-row' : ''} data-eval={String(row.id)} data-passed={String(row.passed)}>
      <td>
        <code>{row.record_id ?? row.id}</code>
        {saving ? <span className="spin small" /> : null}
      </td>
      <td className="json-cell">
        {row.input === null || row.input === undefined ? <span className="muted">{row.record_id ? 'the record' : '—'}</span> : <JsonView value={row.input} depth={2} />}
      </td>
      <td>
        {canEdit ? (
          <JsonField
            value={row.desired_output}
            onCommit={(v) => save({ desired_output: v })}
            onInvalid={(msg) => setError(new Error(msg))}
          />
        ) : (
          <code>{JSON.stringify(row.desired_output)}</code>
        )}
      </td>
      <td>
        <code>{row.actual_output === undefined || row.actual_output === null ? '—' : JSON.stringify(row.actual_output)}</code>
        {row.justification ? <div className="muted small">{row.justification}</div> : null}
        {row.error ? <div className="fail small">{row.error.code ? `${row.error.code}: ` : ''}{row.error.message}</div> : null}
      </td>
      <td>{typeof row.confidence === 'number' ? row.confidence.toFixed(2) : '—'}</td>
      <td>{result}</td>
      <td>
        {canEdit ? (
          <TextField value={row.notes ?? ''} onCommit={(v) => save({ notes: v })} placeholder="notes" />
        ) : (
          row.notes ?? <span className="muted">—</span>
        )}
        <ErrorBox error={error} />
      </td>
      <td>
        <Time at={row.last_ran_at} />
      </td>
    </tr>
  );
}

const commitOnEnter = (e: KeyboardEvent<HTMLInputElement>) => {
  if (e.key === 'Enter') e.currentTarget.blur();
};

/** A JSON value edited as text; committed on blur or Enter when it parses and changed. */
function JsonField({ value, onCommit, onInvalid }: { value: unknown; onCommit: (v: unknown) => void; onInvalid: (message: string) => void }) {
  const original = JSON.stringify(value ?? null);
  const [text, setText] = useState(original);
  const [bad, setBad] = useState(false);
  const commit = () => {
    if (text === original) return;
    try {
      const parsed: unknown = JSON.parse(text);
      setBad(false);
      onCommit(parsed);
    } catch (err) {
      setBad(true);
      onInvalid(`Desired output is not JSON: ${(err as Error).message}`);
    }
  };
  return <input className={`cell-input mono${bad ? ' invalid' : ''}`} value={text} onChange={(e) => setText(e.target.value)} onBlur={commit} onKeyDown={commitOnEnter} aria-label="Desired output (JSON)" data-testid="desired-output" />;
}

function TextField({ value, onCommit, placeholder }: { value: string; onCommit: (v: string) => void; placeholder: string }) {
  const [text, setText] = useState(value);
  return (
    <input
      className="cell-input"
      value={text}
      placeholder={placeholder}
      onChange={(e) => setText(e.target.value)}
      onBlur={() => text !== value && onCommit(text)}
      onKeyDown={commitOnEnter}
      aria-label="Notes"
    />
  );
}

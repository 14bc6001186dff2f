import { useMemo, useRef, useState } from 'react';
import { api, ApiError, enc, type PipelineDetail, type ValidationIssue } from '../api';
import { ActionButton, Badge } from '../components/ui';
import { useCan } from '../session';

const LINE_PX = 20;

/** The stored source (or the definition as JSON) in an editor; Validate marks issues beside their lines; admins save. */
export function DefinitionTab({ pipeline, onSaved }: { pipeline: PipelineDetail; onSaved: (p: PipelineDetail) => void }) {
  const canSave = useCan('admin');
  const initial = pipeline.source ?? JSON.stringify(pipeline.definition, null, 2);
  const [text, setText] = useState(initial);
  const [issues, setIssues] = useState<ValidationIssue[] | null>(null);
  const [saved, setSaved] = useState<string>();
  const gutter = useRef<HTMLDivElement>(null);
  const notes = useRef<HTMLDivElement>(null);
  const lines = useMemo(() => text.split('\n').length, [text]);
  const byLine = useMemo(() => {
    const m = new Map<number, ValidationIssue[]>();
    for (const i of issues ?? []) if (i.line) m.set(i.line, [...(m.get(i.line) ?? []), i]);
    return m;
  }, [issues]);
  const contentType = text.trimStart().startsWith('{') ? 'application/json' : 'application/yaml';

  const validate = async () => {
    setSaved(undefined);
    const r = await api<{ valid: boolean; issues: ValidationIssue[] }>(`/api/pipelines/${enc(pipeline.name)}/validate`, { text, contentType });
    setIssues(r.issues);
  };
  const save = async () => {
    setSaved(undefined);
    try {
      const r = await api<PipelineDetail & { created: boolean }>(`/api/pipelines/${enc(pipeline.name)}`, { method: 'PUT', text, contentType });
      setIssues([]);
      setSaved(r.created ? `Saved as version ${r.version}.` : `Unchanged (still version ${r.version}).`);
      onSaved(r);
    } catch (err) {
      const details = err instanceof ApiError ? (err.details as { issues?: ValidationIssue[] } | ValidationIssue[] | undefined) : undefined;
      const list = Array.isArray(details) ? details : details?.issues;
      if (list) setIssues(list);
      throw err;
    }
  };
  const sync = (top: number) => {
    if (gutter.current) gutter.current.scrollTop = top;
    if (notes.current) notes.current.scrollTop = top;
  };
  return (
    <div>
      <div className="toolbar">
        <ActionButton onClick={validate} testId="validate">
          Validate
        </ActionButton>
        {canSave ? (
          <ActionButton kind="primary" onClick={save} testId="save-definition" disabled={text === initial}>
            Save new version
          </ActionButton>
        ) : null}
        {issues === null ? null : issues.length === 0 ? (
          <Badge kind="status-succeeded">valid</Badge>
        ) : (
          <Badge kind="failing">
            {issues.length} issue{issues.length === 1 ? '' : 's'}
          </Badge>
        )}
        {saved ? <span className="ok">{saved}</span> : null}
        <span className="muted">{contentType === 'application/json' ? 'JSON' : 'YAML'}</span>
      </div>
      <div className="editor" style={{ ['--line' as string]: `${LINE_PX}px` }}>
        <div className="gutter" ref={gutter} aria-hidden="true">
          {Array.from({ length: lines }, (_, i) => (
            <div key={i} className={byLine.has(i + 1) ? 'bad' : ''}>
              {i + 1}
            </div>
          ))}
          <div style={{ height: 40 }} />
        </div>
        <textarea value={text} onChange={(e) => setText(e.target.value)} onScroll={(e) => sync(e.currentTarget.scrollTop)} spellCheck={false} wrap="off" data-testid="definition" aria-label="Pipeline definition" />
        <div className="line-notes" ref={notes} aria-live="polite">
          <div style={{ position: 'relative', height: lines * LINE_PX + 40 }}>
            {[...byLine.entries()].map(([line, list]) => (
              <div key={line} className="line-note" style={{ top: (line - 1) * LINE_PX }} data-line={line} title={list.map((i) => i.message).join('\n')}>
                ◀ {list.map((i) => `${i.path ? `${i.path}: ` : ''}${i.message}`).join('; ')}
              </div>
            ))}
          </div>
        </div>
      </div>
      {issues && issues.length > 0 ? (
        <ul className="issues" data-testid="issues">
          {issues.map((i, n) => (
            <li key={n}>
              {i.line ? <b>line {i.line}{i.column ? `:${i.column}` : ''}</b> : null} {i.path ? <code>{i.path}</code> : null} {i.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

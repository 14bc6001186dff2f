import { useState } from 'react';
import { api, enc, type AttributeValue, type DataRecord, type Dataset, type PipelineSummary } from '../api';
import { ActionButton, Badge, Empty, ErrorBox, JsonView, Skeleton, Time, useAsync } from '../components/ui';
import { Link, setQuery, useLocation } from '../router';
import { useCan } from '../session';

const PAGE = 25;

export default function DatasetsPage({ name }: { name?: string }) {
  return name ? <DatasetPage name={name} /> : <DatasetList />;
}

function DatasetList() {
  const datasets = useAsync(async () => {
    const { datasets } = await api<{ datasets: Dataset[] }>('/api/datasets');
    return Promise.all(datasets.map((d) => api<Dataset>(`/api/datasets/${enc(d.name)}`).catch(() => d)));
  }, []);
  return (
    <section>
      <h1>Datasets</h1>
      <ErrorBox error={datasets.error} />
      {datasets.data === undefined ? (
        datasets.error ? null : <Skeleton />
      ) : datasets.data.length === 0 ? (
        <Empty>
          No datasets yet — create one with <code>sluice dataset create NAME</code> and import records with <code>sluice dataset import NAME records.jsonl</code>.
        </Empty>
      ) : (
        <table className="grid" data-testid="datasets">
          <thead>
            <tr>
              <th>Dataset</th>
              <th>Records</th>
              <th>Ingest pipeline</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {datasets.data.map((d) => (
              <tr key={d.name}>
                <td>
                  <Link to={`/datasets/${enc(d.name)}`}>
                    <b>{d.name}</b>
                  </Link>
                </td>
                <td>{d.records ?? '—'}</td>
                <td>{d.ingest_pipeline ? <Link to={`/pipelines/${enc(d.ingest_pipeline)}`}>{d.ingest_pipeline}</Link> : <span className="muted">none</span>}</td>
                <td>
                  <Time at={d.created_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Records one page at a time (keyset paging by id); the selected record shows its data and derived values. */
function DatasetPage({ name }: { name: string }) {
  const { query } = useLocation();
  const after = query.get('after') ?? '';
  const selected = query.get('record');
  const [history, setHistory] = useState<string[]>([]);
  const dataset = useAsync(() => api<Dataset>(`/api/datasets/${enc(name)}`), [name]);
  // The attribute pipeline writing each field of this dataset (an overridden value no longer names it).
  const writers = useAsync(async () => {
    const { pipelines } = await api<{ pipelines: PipelineSummary[] }>('/api/pipelines');
    return Object.fromEntries(pipelines.filter((p) => p.attribute?.dataset === name).map((p) => [p.attribute!.target, p.name]));
  }, [name]);
  const page = useAsync(
    () => api<{ records: DataRecord[]; next_after: string | null }>(`/api/datasets/${enc(name)}/records?limit=${PAGE}${after ? `&after=${enc(after)}` : ''}`),
    [name, after],
  );
  const record = page.data?.records.find((r) => r.id === selected);
  return (
    <section>
      <h1>
        <Link to="/datasets">Datasets</Link> / {name}
      </h1>
      {dataset.data ? (
        <p className="muted">
          {dataset.data.records ?? 0} records
          {dataset.data.ingest_pipeline ? (
            <>
              {' '}
              · ingest pipeline <Link to={`/pipelines/${enc(dataset.data.ingest_pipeline)}`}>{dataset.data.ingest_pipeline}</Link>
            </>
          ) : null}
        </p>
      ) : null}
      <ErrorBox error={dataset.error ?? page.error} />
      {page.data === undefined ? (
        page.error ? null : <Skeleton rows={8} />
      ) : page.data.records.length === 0 ? (
        <Empty>
          No records yet — import some with <code>sluice dataset import {name} records.jsonl</code>.
        </Empty>
      ) : (
        <div className="split">
          <div>
            <table className="grid compact" data-testid="records">
              <thead>
                <tr>
                  <th>Id</th>
                  <th>Data</th>
                  <th>Values</th>
                </tr>
              </thead>
              <tbody>
                {page.data.records.map((r) => (
                  <tr key={r.id} className={r.id === selected ? 'selected' : ''} onClick={() => setQuery({ record: r.id })} data-record={r.id}>
                    <td>
                      <code>{r.id}</code>
                    </td>
                    <td className="clip">{preview(r.data)}</td>
                    <td>{Object.keys(r.attributes ?? {}).length || <span className="muted">—</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <div className="pager">
              <button
                type="button"
                disabled={history.length === 0}
                onClick={() => {
                  const prev = history.at(-1) ?? '';
                  setHistory((h) => h.slice(0, -1));
                  setQuery({ after: prev, record: null });
                }}
              >
                ← Previous
              </button>
              {page.loading ? <span className="spin small" /> : null}
              <button
                type="button"
                disabled={!page.data.next_after}
                onClick={() => {
                  setHistory((h) => [...h, after]);
                  setQuery({ after: page.data!.next_after, record: null });
                }}
              >
                Next →
              </button>
            </div>
          </div>
          <div className="panel">{record ? <RecordPanel dataset={name} record={record} writers={writers.data ?? {}} onChange={page.reload} /> : <Empty>Select a record to see its data and derived values.</Empty>}</div>
        </div>
      )}
    </section>
  );
}

function preview(data: Record<string, unknown>): string {
  const text = JSON.stringify(data);
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

function RecordPanel({ dataset, record, writers, onChange }: { dataset: string; record: DataRecord; writers: Record<string, string>; onChange: () => void }) {
  const attributes = Object.entries(record.attributes ?? {});
  return (
    <div data-testid="record-panel">
      <h2>
        Record <code>{record.id}</code>
      </h2>
      <p className="muted">
        updated <Time at={record.updated_at} />
      </p>
      <h3>Data</h3>
      <JsonView value={record.data} />
      <h3>Derived values</h3>
      {attributes.length === 0 ? (
        <p className="muted">No attribute pipeline has written a value for this record yet.</p>
      ) : (
        attributes.map(([field, v]) => (
          <ValueCard key={`${record.id}/${field}`} dataset={dataset} recordId={record.id} field={field} value={v} writer={v.pipeline ?? writers[field]} onChange={onChange} />
        ))
      )}
    </div>
  );
}

function ValueCard({
  dataset,
  recordId,
  field,
  value,
  writer,
  onChange,
}: {
  dataset: string;
  recordId: string;
  field: string;
  value: AttributeValue;
  writer: string | undefined;
  onChange: () => void;
}) {
  const can = useCan('operator');
  const [current, setCurrent] = useState(value);
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(JSON.stringify(value.value));
  const [note, setNote] = useState('');
  const [added, setAdded] = useState<string>();
  const base = `/api/datasets/${enc(dataset)}/records/${enc(recordId)}`;
  const override = async () => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`The value is not JSON: ${(err as Error).message}`);
    }
    setCurrent(await api<AttributeValue>(`${base}/overrides/${enc(field)}`, { json: { value: parsed, ...(note.trim() ? { note: note.trim() } : {}) } }));
    setEditing(false);
    onChange();
  };
  const approve = async () => {
    setCurrent(await api<AttributeValue>(`${base}/approvals/${enc(field)}`, { json: {} }));
    onChange();
  };
  const addEval = async () => {
    if (!writer) throw new Error(`No attribute pipeline of ${dataset} writes ${field}`);
    const e = await api<{ id: string | number }>(`/api/pipelines/${enc(writer)}/evals/from-override`, { json: { dataset, record_id: recordId, field, ...(note.trim() ? { notes: note.trim() } : {}) } });
    setAdded(`Added as eval ${String(e.id)} of ${writer}.`);
  };
  return (
    <div className={`value-card status-${current.status}`} data-field={field}>
      <div className="value-head">
        <b>{field}</b> <Badge kind={`value-${current.status}`}>{current.status}</Badge>
        {typeof current.confidence === 'number' ? <span className="muted"> confidence {current.confidence.toFixed(2)}</span> : null}
      </div>
      <div className="value">
        <JsonView value={current.value} />
      </div>
      {current.justification ? <p className="justification">{current.justification}</p> : null}
      {current.note ? <p className="small">Note: {current.note}</p> : null}
      <p className="muted small">
        {current.pipeline ? (
          <>
            by <Link to={`/pipelines/${enc(current.pipeline)}`}>{current.pipeline}</Link> v{current.pipeline_version}
          </>
        ) : current.status === 'overridden' ? (
          <>set by a person{writer ? <> (replacing the value of <Link to={`/pipelines/${enc(writer)}`}>{writer}</Link>)</> : null}</>
        ) : null}
        {current.run_id ? (
          <>
            {' '}
            in run <Link to={`/runs/${enc(current.run_id)}`}>{current.run_id}</Link>
          </>
        ) : null}{' '}
        · updated <Time at={current.updated_at} />
      </p>
      {can ? (
        editing ? (
          <div className="override-form">
            <label>
              New value (JSON)
              <input className="mono" value={text} onChange={(e) => setText(e.target.value)} data-testid="override-value" />
            </label>
            <label>
              Note
              <input value={note} onChange={(e) => setNote(e.target.value)} placeholder="why (optional)" />
            </label>
            <div className="row">
              <ActionButton kind="primary" onClick={override} testId="override-save">
                Save override
              </ActionButton>
              <button type="button" onClick={() => setEditing(false)}>
                Cancel
              </button>
            </div>
          </div>
        ) : (
          <div className="row">
            <button type="button" onClick={() => setEditing(true)} data-testid="override">
              Override
            </button>
            {current.status === 'proposed' ? (
              <ActionButton onClick={approve} testId="approve-value">
                Approve
              </ActionButton>
            ) : null}
            {current.status === 'overridden' ? (
              <ActionButton onClick={addEval} testId="add-eval">
                Add override as eval
              </ActionButton>
            ) : null}
            {added ? <span className="ok">{added}</span> : null}
          </div>
        )
      ) : null}
    </div>
  );
}

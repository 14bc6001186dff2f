import { phase, read } from './lib.mjs';

// Infers a type per column.
await phase('typing', () => {
  const { tables } = read('import');
  const types = {};
  for (const [table, rows] of Object.entries(tables)) {
    types[table] = Object.fromEntries(Object.entries(rows[0]).map(([k, v]) => [k, /^\d{4}-\d\d-\d\d$/.test(v) ? 'date' : typeof v === 'number' ? 'number' : 'string']));
  }
  return { types, rows: tables.transactions.length };
});

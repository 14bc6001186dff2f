import { phase } from './lib.mjs';

// Generates a small transactions table: the stand-in for the CSV import of the original scripts.
await phase('import', () => {
  const rows = [];
  for (let i = 0; i < 500; i++) {
    rows.push({ id: String(i), amount: ((i * 37) % 1000) / 10, day: `2026-0${1 + (i % 9)}-1${i % 10}`, customer: `c${i % 23}` });
  }
  return { tables: { transactions: rows } };
});

import { phase, read } from './lib.mjs';

await phase('temporal', () => {
  const days = read('import').tables.transactions.map((r) => r.day).sort();
  return { first: days[0], last: days.at(-1), months: [...new Set(days.map((d) => d.slice(0, 7)))] };
});

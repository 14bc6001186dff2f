import { phase, read } from './lib.mjs';

await phase('statistics', () => {
  const amounts = read('import').tables.transactions.map((r) => r.amount);
  const mean = amounts.reduce((a, b) => a + b, 0) / amounts.length;
  const sd = Math.sqrt(amounts.reduce((a, b) => a + (b - mean) ** 2, 0) / amounts.length);
  return { amount: { mean, sd, min: Math.min(...amounts), max: Math.max(...amounts) } };
});

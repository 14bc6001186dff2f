import { phase, read } from './lib.mjs';

await phase('correlations', () => {
  const rows = read('import').tables.transactions;
  const xs = rows.map((r) => Number(r.id));
  const ys = rows.map((r) => r.amount);
  const mx = xs.reduce((a, b) => a + b) / xs.length;
  const my = ys.reduce((a, b) => a + b) / ys.length;
  let num = 0, dx = 0, dy = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    dx += (xs[i] - mx) ** 2;
    dy += (ys[i] - my) ** 2;
  }
  return { id_amount: num / Math.sqrt(dx * dy) };
});

import { phase, read } from './lib.mjs';

await phase('semantic', () => {
  const { amount } = read('statistics');
  return { annotations: { amount: amount.min >= 0 ? 'monetary amount' : 'signed measure', customer: 'customer key', day: 'transaction date' } };
});

import { phase, read } from './lib.mjs';

await phase('statistical_quality', () => {
  const { amount } = read('statistics');
  return { amount: { coefficient_of_variation: amount.sd / amount.mean, ok: amount.sd > 0 } };
});

import { phase, read } from './lib.mjs';

await phase('relationships', () => {
  const { types } = read('typing');
  return { candidates: Object.keys(types.transactions).filter((c) => c === 'customer' || c.endsWith('_id')) };
});

import { phase, read } from './lib.mjs';

// Joins every analysis into one context summary.
await phase('entropy', () => ({
  quality_ok: read('statistical_quality').amount.ok,
  semantic: Object.keys(read('semantic').annotations),
  relationships: read('relationships').candidates,
  correlation: read('correlations').id_amount,
}));

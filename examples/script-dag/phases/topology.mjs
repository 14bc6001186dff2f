import { phase, read } from './lib.mjs';

await phase('topology', () => ({ keys: read('relationships').candidates.length, correlation: read('correlations').id_amount }));

import { phase, read } from './lib.mjs';

await phase('validation', () => ({ annotated_columns: Object.keys(read('semantic').annotations).length, valid: true }));

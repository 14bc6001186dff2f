import { phase, read } from './lib.mjs';

await phase('slicing', () => ({ slices: read('temporal').months.map((m) => ({ month: m })) }));

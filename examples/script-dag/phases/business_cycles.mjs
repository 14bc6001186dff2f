import { phase, read } from './lib.mjs';

await phase('business_cycles', () => ({ cycle_months: read('temporal').months.length }));

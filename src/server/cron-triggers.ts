/** Cron triggers moved to the engine, which every leading worker and server runs; kept here for old imports. */
export { CronTriggers, type CronTriggersOptions } from '../engine/cron-triggers.js';

import { cpus, loadavg } from 'node:os';

/** The load average (1, 5 and 15 minutes) and the core count, as a bench prints it beside its figures. */
export function loadLine(when: string): string {
  return `load average ${when}: ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} cores (${new Date().toISOString().slice(11, 16)} UTC)`;
}

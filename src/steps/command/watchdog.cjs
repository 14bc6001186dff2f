// @ts-check
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS script, run by plain node */
/**
 * Ends the process groups of a worker's `command` steps when the worker's process ends, however it ends (even
 * SIGKILL). Plain JavaScript so that it runs as is, from the sources and from the package; one per worker
 * process, started by supervised-process.ts in a session of its own:
 *
 *   node watchdog.cjs TOKEN DEFAULT_GRACE_MS
 *
 * stdin is a pipe from the worker carrying one line per change, `+ PGID LEADER_START_TICKS GRACE_MS` when a
 * group starts and `- PGID` once it is gone. Its end means the worker is gone: every group still listed gets
 * SIGTERM, and SIGKILL after its grace period if any of it is left. Then this process exits.
 *
 * The worker also gives each command `SLUICE_WATCHDOG=TOKEN` in its environment: a group that started just
 * before the worker died, too late to be listed, is found by that mark in /proc/PID/environ.
 */
const { readdirSync, readFileSync } = require('node:fs');

const POLL_MS = 50;
const [token = '', defaultGraceText = '5000'] = process.argv.slice(2);
const defaultGraceMs = Number(defaultGraceText) || 0;
/** @type {Map<number, { startTicks: string, graceMs: number }>} */
const groups = new Map();
let pending = '';

/** @param {number} pgid @param {NodeJS.Signals | 0} signal */
function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code !== 'ESRCH';
  }
}

/** @param {number} pid */
function startTicksOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The group is still the one the worker started: its leader is that same process, or gone (a live group's id is never reused). */
function isSameGroup(/** @type {number} */ pgid, /** @type {string} */ startTicks) {
  const leader = startTicksOf(pgid);
  return leader === undefined || startTicks === '' || leader === startTicks;
}

/** @param {string} line */
function apply(line) {
  const [op, pgidText, startTicks = '', graceText = '5000'] = line.split(' ');
  const pgid = Number(pgidText);
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  if (op === '+') groups.set(pgid, { startTicks, graceMs: Number(graceText) || 0 });
  else if (op === '-') groups.delete(pgid);
}

/** Adds the groups of processes that carry this worker's mark and are not listed (they started too late). */
function findMarked() {
  if (token === '') return;
  const mark = `\0SLUICE_WATCHDOG=${token}\0`;
  let pids;
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      if (!`\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(mark)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgid > 1 && pgid !== process.pid && !groups.has(pgid)) groups.set(pgid, { startTicks: '', graceMs: defaultGraceMs });
    } catch {
      // Gone meanwhile, or not readable: not one of ours.
    }
  }
}

let gone = false;

function workerGone() {
  if (gone) return;
  gone = true;
  findMarked();
  /** @type {Map<number, number>} */
  const deadlines = new Map();
  for (const [pgid, group] of groups) {
    if (!isSameGroup(pgid, group.startTicks) || !signalGroup(pgid, 'SIGTERM')) continue;
    // A stopped process only acts on SIGTERM once continued.
    signalGroup(pgid, 'SIGCONT');
    deadlines.set(pgid, Date.now() + group.graceMs);
  }
  const check = () => {
    for (const [pgid, deadline] of deadlines) {
      if (!signalGroup(pgid, 0)) deadlines.delete(pgid);
      else if (Date.now() >= deadline) {
        signalGroup(pgid, 'SIGKILL');
        deadlines.delete(pgid);
      }
    }
    if (deadlines.size === 0) process.exit(0);
  };
  setInterval(check, POLL_MS);
  check();
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', (/** @type {string} */ chunk) => {
  const lines = (pending + chunk).split('\n');
  pending = lines.pop() ?? '';
  lines.forEach(apply);
});
process.stdin.once('end', workerGone);
process.stdin.once('error', workerGone);

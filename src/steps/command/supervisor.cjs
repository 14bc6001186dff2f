// @ts-check
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS script, run by plain node */
/**
 * Runs the process of one `command` step for a worker and makes sure it does not outlive that worker. Plain
 * JavaScript so that it runs as is, from the sources and from the package; started only by supervised-process.ts:
 *
 *   node supervisor.cjs GRACE_MS FILE [ARG...]
 *
 * The worker starts it in a new process group, which the command joins. stdin is a pipe the worker never writes
 * to: it ends when the worker's process ends, however it ended (even SIGKILL). Then the whole group gets SIGTERM,
 * and SIGKILL once the command has exited or after GRACE_MS. fd 3 is a pipe to the worker carrying one JSON line:
 * `{"exit":{"code","signal"}}` when the command ended, or `{"error":{"code","message"}}` when it could not start.
 *
 * Signals sent to the group (the worker ending the step) reach the command directly; this process outlasts
 * them to report how the command ended, and exits with it.
 */
const { spawn } = require('node:child_process');
const { writeSync } = require('node:fs');
const { constants } = require('node:os');

const POLL_MS = 50;
const GROUP_SIGNALS = /** @type {const} */ (['SIGTERM', 'SIGINT', 'SIGHUP']);
const [graceText = '5000', file = '', ...args] = process.argv.slice(2);
const graceMs = Number(graceText);

for (const signal of GROUP_SIGNALS) process.on(signal, () => {});

/** @type {import('node:child_process').ChildProcess | undefined} */
let child;
let exited = false;

/** @param {unknown} message */
function report(message) {
  try {
    writeSync(3, `${JSON.stringify(message)}\n`);
  } catch {
    // The worker is gone: nobody is left to tell.
  }
}

/** @param {NodeJS.Signals | 0} signal */
function signalGroup(signal) {
  try {
    process.kill(-process.pid, signal);
  } catch {
    // The group is gone.
  }
}

/** @param {unknown} err */
function startFailed(err) {
  const e = /** @type {NodeJS.ErrnoException} */ (err);
  report({ error: { code: e.code ?? null, message: e.message ?? String(err) } });
  process.exit(127);
}

/**
 * @param {number | null} code
 * @param {NodeJS.Signals | null} signal
 */
function commandExited(code, signal) {
  exited = true;
  report({ exit: { code, signal } });
  process.exit(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
}

/** The worker is gone: end the command's whole group, this process last. */
function orphaned() {
  if (exited) return;
  signalGroup('SIGTERM');
  signalGroup('SIGCONT');
  const deadline = Date.now() + graceMs;
  setInterval(() => {
    if (exited || Date.now() >= deadline) signalGroup('SIGKILL');
  }, POLL_MS);
}

// NODE_OPTIONS meant for the command must not change this process; the worker moved it aside.
const env = { ...process.env };
delete env['NODE_OPTIONS'];
if (env['SLUICE_SUPERVISED_NODE_OPTIONS'] !== undefined) env['NODE_OPTIONS'] = env['SLUICE_SUPERVISED_NODE_OPTIONS'];
delete env['SLUICE_SUPERVISED_NODE_OPTIONS'];

try {
  // fd 3 is /dev/null in the command, not this process's report pipe, which would otherwise be inherited.
  child = spawn(file, args, { env, stdio: ['ignore', 'inherit', 'inherit', 'ignore'] });
} catch (err) {
  startFailed(err);
}
if (child) {
  child.once('error', startFailed);
  child.once('exit', (code, signal) => {
    // Once orphaned, the group is being ended: this process stays until SIGKILL takes the rest with it.
    if (process.stdin.readableEnded) exited = true;
    else commandExited(code, signal);
  });
}
process.stdin.on('error', () => {});
process.stdin.once('end', orphaned);
process.stdin.resume();

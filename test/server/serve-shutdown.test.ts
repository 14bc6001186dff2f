/**
 * `sluice serve` shuts down on SIGTERM even while clients hold the sockets of WebSocket upgrades it refused
 * (a wrong token, no token). Runs the CLI from source (tsx), so it does not depend on a build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';

const children: ChildProcess[] = [];
const sockets: Socket[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sluice(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

function finished(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

function listeningPort(server: ChildProcess): Promise<number> {
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice serve printed no address: ${stderr}`)), 45_000);
    server.stderr!.on('data', (d) => {
      stderr += d;
      const m = /sluice serve on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
}

/** Sends a raw WebSocket upgrade request and resolves with the status line; the socket is left open, as a client that does not hang up leaves it. */
function refusedUpgrade(port: number, query: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `GET /api/ws${query} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
    });
    sockets.push(socket);
    socket.on('error', () => {});
    socket.once('data', (d: Buffer) => resolve(d.toString('latin1').split('\r\n')[0] ?? ''));
    socket.once('close', () => reject(new Error('the server closed the connection without an answer')));
  });
}

/** Resolves with the exit of `child`, or with 'still running' after `boundMs` (a generous bound, not a timing assertion). */
function exitWithin(child: ChildProcess, boundMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still running'), boundMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

describe('sluice serve shutdown', () => {
  it('exits on SIGTERM after refusing WebSocket upgrades with a wrong or a missing token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-serve-stop-'));
    dirs.push(dir);
    const store = `sqlite:${join(dir, 's.db')}`;
    const token = await finished(sluice(['--store', store, 'token', 'create', '--role', 'viewer']));
    expect(token.code, token.stderr).toBe(0);

    const server = sluice(['--store', store, 'serve', '--port', '0', '--workers', '0', '--no-cron']);
    const port = await listeningPort(server);
    expect(await refusedUpgrade(port, '?token=nope')).toBe('HTTP/1.1 401 Unauthorized');
    expect(await refusedUpgrade(port, '')).toBe('HTTP/1.1 401 Unauthorized');

    server.kill('SIGTERM');
    expect(await exitWithin(server, 45_000)).toEqual({ code: 0, signal: null });
  }, 120_000);
});

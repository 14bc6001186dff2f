/**
 * End to end: the supervised AI job run by the CLI (in this process) against a local OpenAI-compatible server. The
 * gate sends a weak analysis back with feedback, blocks on a critical finding, and the run waits for a
 * human at the approval step; decisions are released with `sluice approve`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinStepTypes, createServer, Engine, openStore, SqliteStore } from 'sluice';
import { jsonReply, startChatServer, type ChatServer } from '../../test/support/chat-server.js';
import { killSpawned, stepStatuses, tempDir, type CliResult } from '../../test/support/cli.js';
import { runCliInProcess, runCliJsonInProcess as runCliJson } from '../../test/support/cli-in-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PIPELINE = path.join(here, 'pipeline.yaml');
const INPUT = JSON.stringify({ request: '3 bedrooms and a kitchen', image_url: 'https://example.com/plan.png' });

const weak = { spaces: [{ name: 'living room', confidence: 0.9 }] };
const good = {
  spaces: [
    { name: 'bedroom', confidence: 0.9 },
    { name: 'bedroom', confidence: 0.8 },
    { name: 'kitchen', confidence: 0.95 },
  ],
};

let tmp: ReturnType<typeof tempDir>;
let chat: ChatServer;
let store: string;

function sluice(args: string[]): Promise<CliResult> {
  const env = { OPENAI_BASE_URL: chat.baseUrl, SLUICE_SECRET_OPENAI_API_KEY: 'test-key' };
  return runCliInProcess([...args, '--store', `sqlite:${store}`], { cwd: tmp.dir, env });
}

async function runIdOf(result: CliResult): Promise<string> {
  const id = /run (r[0-9a-z]+)/.exec(result.stdout)?.[1];
  if (!id) throw new Error(`no run id in:\n${result.stdout}\n${result.stderr}`);
  return id;
}

async function decisions(runId: string) {
  const s = new SqliteStore({ path: store });
  await s.migrate();
  try {
    return await s.listDecisions(runId);
  } finally {
    await s.close();
  }
}

beforeEach(async () => {
  tmp = tempDir('sluice-supervised-');
  store = path.join(tmp.dir, 's.db');
  chat = await startChatServer();
});

afterEach(async () => {
  await killSpawned();
  await chat.close();
  tmp.cleanup();
});

describe('examples/supervised-ai', () => {
  it('retries a weak analysis with the gate feedback, then waits for approval and finishes', async () => {
    chat.reply(
      jsonReply(weak),
      jsonReply({ verdict: 'FAIL', failures: [{ message: 'no bedrooms found', severity: 'high' }] }),
      jsonReply(good),
      jsonReply({ verdict: 'PASS', failures: [] }),
    );
    const first = await sluice(['run', PIPELINE, '--input', INPUT]);
    expect(first.code, first.stderr).toBe(1);
    expect(first.stdout).toContain('waiting');
    const id = await runIdOf(first);

    const retried = chat.requests[2]!.body.messages.at(-1).content as string;
    expect(retried).toContain('A reviewer rejected your last answer');
    expect(retried).toContain('comparison-passed');
    expect(chat.requests[0]!.body).toMatchObject({ model: 'gpt-4o-mini', temperature: 0 });

    const waiting = await runCliJson(['status', id, '--json', '--store', `sqlite:${store}`], { cwd: tmp.dir });
    expect(waiting.status).toBe('waiting');
    expect(stepStatuses(waiting)).toEqual({ analyse: 'succeeded', compare: 'succeeded', supervise: 'succeeded', release: 'blocked' });
    expect((await decisions(id)).map((d) => [d.decision, d.budgetLeft])).toEqual([
      ['retry', 1],
      ['proceed', null],
    ]);

    // Approving the last step ends the run in the same transaction: nothing is left to resume.
    const approve = await sluice(['approve', id, 'release', '--comment', 'ship it', '--by', 'ana']);
    expect(approve.code, approve.stderr).toBe(0);
    expect(approve.stdout).toContain('succeeded');
    const done = await runCliJson(['status', id, '--json', '--store', `sqlite:${store}`], { cwd: tmp.dir });
    expect(done.status).toBe('succeeded');
    expect(done.steps.find((s: { name: string }) => s.name === 'release').output).toMatchObject({ approved: true, comment: 'ship it', human: { decision: 'approve', by: 'ana' } });
    expect(done.decisions.map((d: { kind: string; decision: string }) => [d.kind, d.decision])).toEqual([
      ['gate', 'retry'],
      ['gate', 'proceed'],
      ['human', 'approve'],
    ]);

    // `sluice status RUN` shows the audit: each gate verdict with the rules it checked, and who approved.
    const status = await sluice(['status', id]);
    expect(status.stdout).toContain('decisions:');
    expect(status.stdout).toMatch(/supervise +gate +retry +2 high failure\(s\); retry analyse +2\/3 passed \(failed: comparison-passed\)/);
    expect(status.stdout).toMatch(/supervise +gate +proceed +all checks passed +3\/3 passed/);
    expect(status.stdout).toMatch(/release +human +approve +ana +ship it/);
    expect(chat.requests).toHaveLength(4);
  });

  it('blocks on a critical finding until a human approves the gate', async () => {
    chat.reply(jsonReply(good), jsonReply({ verdict: 'FAIL', failures: [{ message: 'plan is upside down', severity: 'critical' }] }));
    const first = await sluice(['run', PIPELINE, '--input', INPUT]);
    expect(first.code).toBe(1);
    const id = await runIdOf(first);
    const [decision] = await decisions(id);
    expect(decision).toMatchObject({ step: 'supervise', decision: 'block', reason: '1 critical failure(s)' });

    // The block is released over the HTTP API, by a server on the same store.
    const engine = new Engine({ store: await openStore(`sqlite:${store}`), steps: builtinStepTypes() });
    const app = await createServer({ engine });
    try {
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const audit = (await (await fetch(`${base}/api/runs/${id}/decisions`)).json()) as { decisions: Array<{ decision: string }> };
      expect(audit.decisions.map((d) => d.decision)).toEqual(['block']);
      const released = await fetch(`${base}/api/runs/${id}/steps/supervise/approval`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ decision: 'approve', comment: 'checked by hand' }),
      });
      expect(released.status).toBe(200);
      expect(((await released.json()) as { status: string }).status).toBe('running');
    } finally {
      await app.close();
      await engine.close();
    }
    const second = await sluice(['run', '--resume', id]);
    expect(second.code, second.stdout + second.stderr).toBe(1);
    expect(stepStatuses(await runCliJson(['status', id, '--json', '--store', `sqlite:${store}`], { cwd: tmp.dir }))).toMatchObject({
      supervise: 'succeeded',
      release: 'blocked',
    });
    const release = await sluice(['approve', id, 'release']);
    expect(release.code, release.stderr).toBe(0);
    expect(release.stdout).toContain('succeeded');

    // The audit keeps the block, the approval over HTTP (no auth: `api`) and the CLI's (the OS user by default);
    // the gate's output still says why it blocked.
    const audit = await decisions(id);
    expect(audit.map((d) => [d.step, d.kind, d.decision, d.by ?? null])).toEqual([
      ['supervise', 'gate', 'block', null],
      ['supervise', 'human', 'approve', 'api'],
      ['release', 'human', 'approve', expect.any(String)],
    ]);
    expect(audit[1]!.comment).toBe('checked by hand');
    const done = await runCliJson(['status', id, '--json', '--store', `sqlite:${store}`], { cwd: tmp.dir });
    const gate = done.steps.find((s: { name: string }) => s.name === 'supervise');
    expect(gate.output).toMatchObject({ decision: { decision: 'block', reason: '1 critical failure(s)' }, human: { decision: 'approve', comment: 'checked by hand', by: 'api' } });
  });
});

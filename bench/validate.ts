/**
 * Validation of large definitions: a chain of N steps, each reading its predecessor's output in a `${{ }}`
 * template, as YAML text. Prints, for N = 2,000, 5,000 and 10,000, the time to parse the text, to validate and
 * normalize it, and to register it (version hash and insert into a fresh SQLite file), then what a 10,000-step
 * cycle is reported as. Each figure is the best of `--repeat` runs (default 3). Linear means the 10k figure is
 * about 5x the 2k one.
 *
 *   npm run build && npx tsx bench/validate.ts [--repeat N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinStepTypes, Engine, normalizePipeline, parsePipelineText, SqliteStore } from './support/built.js';

const SIZES = [2000, 5000, 10_000];
const repeatAt = process.argv.indexOf('--repeat');
const repeat = repeatAt > 0 ? Number(process.argv[repeatAt + 1]) : 3;
const stepTypes = builtinStepTypes();

/** YAML of a chain s0 <- s1 <- ... ; with `cycle`, s0 needs the last step too. */
function chainYaml(n: number, cycle = false): string {
  const lines = ['name: big-chain', 'steps:'];
  for (let i = 0; i < n; i++) {
    const need = i > 0 ? `s${i - 1}` : cycle ? `s${n - 1}` : null;
    const read = i > 0 ? `steps.s${i - 1}.stdout` : 'input.source';
    lines.push(`  s${i}:`, '    uses: command', ...(need ? [`    needs: [${need}]`] : []), `    with: { run: "echo \${{ ${read} }}" }`);
  }
  return `${lines.join('\n')}\n`;
}

/** Process CPU time in ms (user + system): steadier than wall time when other work shares the machine. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

async function measure(n: number): Promise<{ parse: number; validate: number; register: number; parseCpu: number; validateCpu: number }> {
  const text = chainYaml(n);
  const best = { parse: Infinity, validate: Infinity, register: Infinity, parseCpu: Infinity, validateCpu: Infinity };
  for (let r = 0; r < repeat; r++) {
    const c0 = cpuMs();
    const t0 = performance.now();
    const { spec, locate } = parsePipelineText(text, 'chain.yaml');
    const t1 = performance.now();
    const c1 = cpuMs();
    best.parseCpu = Math.min(best.parseCpu, c1 - c0);
    const pipeline = normalizePipeline(spec, { stepTypes, file: 'chain.yaml', locate });
    const t2 = performance.now();
    best.validateCpu = Math.min(best.validateCpu, cpuMs() - c1);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-validate-'));
    const store = new SqliteStore({ path: join(dir, 'sluice.db') });
    await store.migrate();
    const engine = new Engine({ store, steps: stepTypes });
    const t3 = performance.now();
    await engine.registerPipeline(pipeline, { text });
    const t4 = performance.now();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    best.parse = Math.min(best.parse, t1 - t0);
    best.validate = Math.min(best.validate, t2 - t1);
    best.register = Math.min(best.register, t4 - t3);
  }
  return best;
}

const ms = (v: number) => `${v.toFixed(0)} ms`.padStart(8);
console.log(`steps    parse  validate  register     total  |  CPU: parse  validate   (best of ${repeat})`);
for (const n of SIZES) {
  const f = await measure(n);
  console.log(`${String(n).padStart(6)} ${ms(f.parse)}  ${ms(f.validate)}  ${ms(f.register)}  ${ms(f.parse + f.validate + f.register)}  |   ${ms(f.parseCpu)}  ${ms(f.validateCpu)}`);
}
const { spec, locate } = parsePipelineText(chainYaml(10_000, true), 'cycle.yaml');
const t0 = performance.now();
try {
  normalizePipeline(spec, { stepTypes, file: 'cycle.yaml', locate });
  console.log('10,000-step cycle: validated (unexpected)');
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  console.log(`10,000-step cycle: ${(err as { code?: string }).code} in ${(performance.now() - t0).toFixed(0)} ms: ${message}`);
}

import { afterAll, describe, expect, it } from 'vitest';
import { killSpawned, runCli } from '../support/cli.js';

afterAll(killSpawned);

/** The verbs a help page lists under "Commands:" (commander's own `help` aside). */
function verbsListed(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1]?.split(/^\S/m)[0] ?? '';
  return [...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!).filter((v) => v !== 'help');
}

async function helpOf(path: string[]): Promise<string> {
  const r = await runCli([...path, '--help']);
  expect(r.code, `sluice ${path.join(' ')} --help: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** Every verb path (`run`, `dataset import`, ...) with its help text, walked from `sluice --help`. */
async function everyVerbHelp(): Promise<Map<string, string>> {
  const helps = new Map<string, string>();
  let level = verbsListed(await helpOf([])).map((v) => [v]);
  while (level.length > 0) {
    const texts = await Promise.all(level.map((path) => helpOf(path)));
    const next: string[][] = [];
    level.forEach((path, i) => {
      helps.set(path.join(' '), texts[i]!);
      next.push(...verbsListed(texts[i]!).map((v) => [...path, v]));
    });
    level = next;
  }
  return helps;
}

describe('sluice help', () => {
  it("lists the global options and shows an example in every verb's help", async () => {
    const helps = await everyVerbHelp();
    // The verbs this product has today; more may come, each with the same help.
    for (const verb of ['run', 'status', 'serve', 'worker', 'token create', 'dataset import', 'eval', 'migrate']) expect([...helps.keys()]).toContain(verb);
    const lacking: string[] = [];
    for (const [verb, help] of helps) {
      const globals = help.split(/^Global Options:$/m)[1] ?? '';
      if (!/--store <url>/.test(globals) || !/--json/.test(globals)) lacking.push(`${verb}: global options`);
      if (!new RegExp(`^Examples:\\n {2}\\$ sluice .*${verb.split(' ').at(-1)}`, 'm').test(help)) lacking.push(`${verb}: example`);
    }
    expect(lacking).toEqual([]);
  });
});

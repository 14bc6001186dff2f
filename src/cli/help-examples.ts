import type { Command } from 'commander';

/**
 * Examples shown at the end of each verb's `--help`, by the verb's path (`run`, `dataset import`). Every verb has
 * at least one; test/cli/help.test.ts keeps it so.
 */
const EXAMPLES: Record<string, string[]> = {
  run: [
    'sluice run pipeline.yaml --input \'{"url": "https://example.com"}\'',
    'sluice run ./pipelines.ts#users',
    'sluice run nightly-report --detach',
    'sluice run --resume RUN_ID',
  ],
  status: ['sluice status', 'sluice status RUN_ID --json'],
  runs: ['sluice runs --status failed --limit 50', 'sluice runs --pipeline nightly-report'],
  logs: ['sluice logs RUN_ID', 'sluice logs RUN_ID fetch'],
  graph: ['sluice graph pipeline.yaml', 'sluice graph nightly-report --format mermaid'],
  validate: ['sluice validate pipeline.yaml'],
  reset: ['sluice reset pipeline.yaml'],
  pause: ['sluice pause RUN_ID'],
  resume: ['sluice resume RUN_ID'],
  cancel: ['sluice cancel RUN_ID'],
  retry: ['sluice retry RUN_ID'],
  rollback: ['sluice rollback RUN_ID --to transform'],
  approve: ['sluice approve RUN_ID review --comment "looks right" --by alice'],
  reject: ['sluice reject RUN_ID review --comment "wrong totals"'],
  dlq: ['sluice dlq --limit 20'],
  prune: ['sluice prune --older-than 30d --dry-run', 'sluice prune --pipeline nightly-report --dead-letters'],
  emit: ['sluice emit order.paid --data \'{"order_id": "o-17"}\'', 'sluice emit supplier.file --data @event.json --json'],

  worker: ['sluice --store postgres://localhost/sluice worker --concurrency 32', 'sluice worker --load ./pipelines.ts --grace 30s'],
  serve: ['sluice serve --port 8080', 'sluice --store postgres://localhost/sluice serve --host 0.0.0.0 --auth'],
  token: ['sluice token create --role operator --name ci --expires 30d', 'sluice token list'],
  'token list': ['sluice token list --json'],
  'token revoke': ['sluice token revoke TOKEN_ID'],
  'token create': ['sluice token create --role viewer --name dashboard --expires 12h'],
  dataset: ['sluice dataset import products products.jsonl', 'sluice dataset list'],
  'dataset create': ['sluice dataset create products', 'sluice dataset create products --ingest clean-product'],
  'dataset list': ['sluice dataset list --json'],
  'dataset get': ['sluice dataset get products sku-42'],
  'dataset run': ['sluice dataset run products attributes/*.yaml', 'sluice dataset run products --force'],
  'dataset override': ['sluice dataset override products sku-42 color \'"navy"\' --note "checked by hand"'],
  'dataset approve': ['sluice dataset approve products sku-42 color'],
  'dataset import': ['sluice dataset import products products.jsonl --id-field sku'],
  'dataset export': ['sluice dataset export products products.jsonl', 'sluice dataset export products | head'],
  eval: ['sluice eval classify --set evals.yaml', 'sluice eval classify --no-run'],
  migrate: ['sluice --store postgres://localhost/sluice migrate'],
};

/** The path of a command below the program, e.g. `dataset import`. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Every verb below `program`, nested ones included (commander's own `help` verb aside). */
export function allVerbs(program: Command): Command[] {
  return program.commands.filter((c) => c.name() !== 'help').flatMap((c) => [c, ...allVerbs(c)]);
}

/** The examples of a verb, by its path; empty when it has none. */
export function examplesOf(path: string): string[] {
  return EXAMPLES[path] ?? [];
}

/** Appends an `Examples:` section to the help of every verb that has examples. */
export function addExamples(program: Command): void {
  for (const cmd of allVerbs(program)) {
    const examples = examplesOf(commandPath(cmd));
    if (examples.length > 0) cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
  }
}

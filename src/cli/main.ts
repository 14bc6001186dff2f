import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { isSluiceError, isValidationError } from '../core/errors.js';
// Each verb's module loads when that verb runs, so help, --version and usage errors stay fast.
import {
  controlCommand,
  datasetApproveCommand,
  datasetCreateCommand,
  datasetExportCommand,
  datasetGetCommand,
  datasetImportCommand,
  datasetListCommand,
  datasetOverrideCommand,
  datasetRunCommand,
  decideCommand,
  dlqCommand,
  emitCommand,
  pruneCommand,
  evalCommand,
  graphCommand,
  logsCommand,
  migrateCommand,
  resetCommand,
  rollbackCommand,
  runCommand,
  runsCommand,
  serveCommand,
  statusCommand,
  tokenCreateCommand,
  tokenListCommand,
  tokenRevokeCommand,
  validateCommand,
  workerCommand,
} from './verbs.js';
import type { GlobalOptions } from './context.js';
import { addExamples } from './help-examples.js';

type Handler = (...args: any[]) => Promise<number>;

/** Wraps a command so its exit code and errors reach the shell: 0 ok, 1 failure, 2 invalid input. */
function action(handler: Handler) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const opts = { ...cmd.optsWithGlobals() } as GlobalOptions;
    const positional = args.slice(0, -2);
    try {
      process.exitCode = await handler(...positional, opts);
    } catch (err) {
      process.exitCode = reportError(err, opts);
    }
  };
}

function reportError(err: unknown, opts: GlobalOptions): number {
  if (opts.json) {
    const body = isSluiceError(err) ? err.toJSON() : { code: 'INTERNAL', message: String(err) };
    process.stderr.write(`${JSON.stringify({ error: body })}\n`);
  } else if (isValidationError(err)) {
    process.stderr.write(`${err.message}\n`);
  } else if (isSluiceError(err)) {
    process.stderr.write(`sluice: ${err.code}: ${err.message}\n`);
  } else {
    process.stderr.write(`sluice: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  return isSluiceError(err) && ['VALIDATION_FAILED', 'INPUT_INVALID', 'INPUT_TOO_LARGE', 'RECORD_INVALID'].includes(err.code) ? 2 : 1;
}

/** The package's version (src/cli and dist/cli both sit two folders below package.json). */
const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Durable pipelines on SQLite or PostgreSQL')
    .version(VERSION, '-V, --version', 'print the version of sluice')
    // Usage errors (an unknown verb or option, a missing argument) exit 2, as shells expect; see runCli.
    .exitOverride()
    .option('--store <url>', 'store URL (sqlite:PATH or postgres://...); default $SLUICE_STORE or sqlite:.sluice/sluice.db')
    .option('--json', 'machine-readable output')
    // Every verb's help lists --store, --json, ... under "Global Options" (inherited by the verbs made below).
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError();

  program
    .command('run')
    .argument('[pipeline]', 'pipeline FILE (YAML, JSON, TS), FILE.ts#NAME (a pipeline defined in code) or registered NAME')
    .description('start a run and work it here until it ends; exit 0 only when it succeeded')
    .option('--input <json>', 'run input as JSON, or @file')
    .option('--steps <names>', 'comma-separated steps to run (plus their dependencies)')
    .option('--force', 'bypass the step cache')
    .option('--resume <run>', 'resume a failed, cancelled, paused or interrupted run')
    .option('--max-parallel <n>', "steps at once (overrides the pipeline's max_parallel)")
    .option('--concurrency <n>', 'attempts this process executes at once')
    .option('--detach', 'only queue the run and print its id')
    .option('--explain', 'say per step why it ran or was cached')
    .action(action((target: string | undefined, opts) => runCommand(target, opts)));

  program
    .command('emit')
    .argument('<event>', 'event NAME, as pipelines name it in `triggers: [{ event: NAME }]`')
    .description('fire an event: start a run of every enabled pipeline whose triggers name it (queued for the workers)')
    .option('--data <json>', 'the event payload, each run\'s input, as JSON, or @file')
    .option('--idempotency-key <key>', 'emitting again with this key starts nothing new')
    .action(action((event: string, opts) => emitCommand(event, opts)));

  program.command('status').argument('[run]').description('a run and its steps (default: the newest run)').action(action(statusCommand));
  program
    .command('runs')
    .description('recent runs')
    .option('--pipeline <name>')
    .addOption(new Option('--status <status>').choices(['queued', 'running', 'paused', 'waiting', 'succeeded', 'failed', 'cancelled']))
    .option('--limit <n>', 'how many (1-1000)', '20')
    .option('--cursor <cursor>', 'the next page, as printed after the previous one')
    .action(action((opts) => runsCommand(opts)));
  program.command('logs').argument('<run>').argument('[step]').description('logs of a run or one of its steps').action(action(logsCommand));
  program
    .command('graph')
    .argument('<pipeline>', 'FILE or NAME')
    .addOption(new Option('--format <format>', 'output format').choices(['ascii', 'mermaid', 'dot']).default('ascii'))
    .description('draw the DAG')
    .action(action(graphCommand));
  program.command('validate').argument('<file>').description('check a pipeline file; problems name file:line:column and key path').action(action(validateCommand));
  program.command('reset').argument('<pipeline>', 'FILE or NAME').description('forget cached step results so the next run executes everything').action(action(resetCommand));
  for (const verb of ['pause', 'resume', 'cancel', 'retry'] as const) {
    program
      .command(verb)
      .argument('<run>')
      .description(`${verb} a run`)
      .action(action((runId: string, opts) => controlCommand(verb, runId, opts)));
  }
  program
    .command('rollback')
    .argument('<run>')
    .requiredOption('--to <step>', 'step whose output and descendants are discarded')
    .description('discard the outputs of a step and everything after it, and run them again')
    .action(action(rollbackCommand));
  for (const verb of ['approve', 'reject'] as const) {
    program
      .command(verb)
      .argument('<run>')
      .argument('<step>')
      .option('--comment <text>', 'why')
      .option('--by <name>', 'who decides, recorded in the audit (default: the OS user, else "cli")')
      .option('--response <json>', "the reviewer's data, checked against the approval's with.response schema")
      .description(`${verb} a blocked step (an approval, or a gate that blocked)`)
      .action(action((runId: string, step: string, opts) => decideCommand(verb, runId, step, opts)));
  }
  program.command('dlq').description('runs that failed for good').option('--limit <n>').action(action((opts) => dlqCommand(opts)));
  program
    .command('worker')
    .description('execute queued attempts of every run until stopped')
    .option('--concurrency <n>', 'attempts at once', '16')
    .option('--load <file>', 'register and run the pipelines a JS/TS module exports (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--grace <duration>', 'on SIGTERM/SIGINT, how long running attempts may finish before they are handed back', '10s')
    .action(action((opts) => workerCommand(opts)));
  program
    .command('serve')
    .description('HTTP API (docs at /docs) with an in-process worker and cron triggers')
    .option('--port <n>', 'port', '8080')
    .option('--host <host>', 'interface; beyond loopback only with auth', '127.0.0.1')
    .option('--workers <n>', 'attempts the in-process worker runs at once; 0 serves only', '16')
    .option('--auth', 'require tokens even before one exists (default: on once a token exists)')
    .option('--body-limit <bytes>', 'largest request body', String(1024 * 1024))
    .option('--no-cron', 'do not fire cron triggers (nor the nightly evals) in this process')
    .option('--evals-cron <pattern>', "when every pipeline's evals run again ('off' for never)", '0 3 * * *')
    .option('--load <file>', 'register and run the pipelines a JS/TS module exports (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--grace <duration>', 'on SIGTERM/SIGINT, how long running attempts may finish before they are handed back', '10s')
    .action(action((opts) => serveCommand(opts)));
  const token = program.command('token').description('API tokens');
  token.command('list').description('every token: id, name, role, created, expires, revoked (never the token itself)').action(action((opts) => tokenListCommand(opts)));
  token
    .command('revoke')
    .argument('<id>', 'the id `sluice token list` shows')
    .description('revoke a token: servers refuse it (401 TOKEN_REVOKED) within a second')
    .action(action(tokenRevokeCommand));
  token
    .command('create')
    .requiredOption('--role <role>', 'admin, operator or viewer')
    .option('--name <name>', 'a label for the token')
    .option('--expires <duration>', 'refuse the token after this long (e.g. 12h, 30d); default: never')
    .description('create a token; it is printed once, the store keeps only its sha256')
    .action(action((opts) => tokenCreateCommand(opts)));
  const dataset = program.command('dataset').description('datasets of JSON records');
  dataset
    .command('create')
    .argument('<name>')
    .option('--ingest <pipeline>', 'pipeline every written record passes through before it is stored')
    .description('create a dataset, or set its ingest pipeline')
    .action(action(datasetCreateCommand));
  dataset.command('list').description('datasets and their record counts').action(action((opts) => datasetListCommand(opts)));
  dataset.command('get').argument('<name>').argument('<id>').description('one record as JSON, and its derived values').action(action(datasetGetCommand));
  dataset
    .command('run')
    .argument('<name>')
    .argument('[files...]', 'attribute pipeline files of this dataset to register first')
    .option('--force', 'recompute every record, whatever its input hash')
    .description("run every attribute pipeline of the dataset, in Kahn's order, in this process")
    .action(action(datasetRunCommand));
  dataset
    .command('override')
    .argument('<name>')
    .argument('<id>')
    .argument('<field>')
    .argument('<value>', 'JSON (42, true, "x", {"a":1}); anything else is taken as text')
    .option('--note <text>', 'why: kept with the value')
    .description('set a derived value by hand; no run replaces it')
    .action(action(datasetOverrideCommand));
  dataset
    .command('approve')
    .argument('<name>')
    .argument('<id>')
    .argument('<field>')
    .option('--note <text>', 'kept with the value')
    .description('approve a proposed derived value')
    .action(action(datasetApproveCommand));
  dataset
    .command('import')
    .argument('<name>')
    .argument('<file>', 'JSONL, one record (a JSON object) per line')
    .option('--id-field <field>', 'field holding each record id', 'id')
    .description('check every line, then upsert the records in batches of 1000 (through the ingest pipeline)')
    .action(action(datasetImportCommand));
  dataset
    .command('export')
    .argument('<name>')
    .argument('[file]', 'JSONL output (default: stdout)')
    .option('--id-field <field>', 'field the id is written under when a record lacks it', 'id')
    .description('write every record as JSONL, in id order')
    .action(action(datasetExportCommand));
  program
    .command('eval')
    .argument('<pipeline>', 'registered NAME')
    .option('--set <file>', 'first replace the eval cases from a YAML, JSON or JSONL file')
    .option('--no-run', 'only list the stored cases and their last results')
    .description("run a pipeline's evals and print each case; exit 1 when one fails")
    .action(action(evalCommand));
  program.command('migrate').description('apply pending store migrations').action(action((opts) => migrateCommand(opts)));
  program
    .command('prune')
    .description("remove finished runs older than each pipeline's retention (else SLUICE_RETENTION), with everything they own")
    .option('--older-than <duration>', 'prune runs that finished longer ago than this (e.g. 30d), whatever the pipelines say')
    .option('--pipeline <name>', 'only runs of this pipeline')
    .option('--dead-letters', 'also prune failed runs (dead letters), kept otherwise until re-driven')
    .option('--dry-run', 'print what would be removed, remove nothing')
    .action(action((opts) => pruneCommand(opts)));
  addExamples(program);
  return program;
}

/** Commander's own exits that are not usage errors (`--help`, `--version`; help shown for a missing verb is one). */
const CLEAN_EXITS = new Set(['commander.helpDisplayed', 'commander.version']);

/** Parses the command line and runs the verb; commander has already printed what a usage error is. */
async function runCli(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    process.exitCode = CLEAN_EXITS.has(err.code) ? 0 : 2;
  }
}

await runCli(process.argv);

/**
 * The verbs' handlers, each loading its module (and through it the engine, the server, ...) only when that verb
 * runs: `sluice --help`, `--version` and usage errors load none of them.
 */
type Handler = (...args: any[]) => Promise<number>;

/** A handler with the signature of `module[name]` that imports the module on its first call. */
function lazy<M extends { [P in K]: Handler }, K extends keyof M>(load: () => Promise<M>, name: K): M[K] {
  return (async (...args: unknown[]) => (await load())[name](...args)) as M[K];
}

const attributes = () => import('./commands/attributes.js');
const control = () => import('./commands/control.js');
const dataset = () => import('./commands/dataset.js');
const inspect = () => import('./commands/inspect.js');
const token = () => import('./commands/token.js');
const worker = () => import('./commands/worker.js');

export const datasetApproveCommand = lazy(attributes, 'datasetApproveCommand');
export const datasetOverrideCommand = lazy(attributes, 'datasetOverrideCommand');
export const datasetRunCommand = lazy(attributes, 'datasetRunCommand');
export const datasetCreateCommand = lazy(dataset, 'datasetCreateCommand');
export const datasetExportCommand = lazy(dataset, 'datasetExportCommand');
export const datasetGetCommand = lazy(dataset, 'datasetGetCommand');
export const datasetImportCommand = lazy(dataset, 'datasetImportCommand');
export const datasetListCommand = lazy(dataset, 'datasetListCommand');
export const evalCommand = lazy(() => import('./commands/eval.js'), 'evalCommand');
export const emitCommand = lazy(() => import('./commands/emit.js'), 'emitCommand');
export const pruneCommand = lazy(() => import('./commands/prune.js'), 'pruneCommand');
export const controlCommand = lazy(control, 'controlCommand');
export const decideCommand = lazy(control, 'decideCommand');
export const resetCommand = lazy(control, 'resetCommand');
export const rollbackCommand = lazy(control, 'rollbackCommand');
export const dlqCommand = lazy(inspect, 'dlqCommand');
export const graphCommand = lazy(inspect, 'graphCommand');
export const logsCommand = lazy(inspect, 'logsCommand');
export const runsCommand = lazy(inspect, 'runsCommand');
export const statusCommand = lazy(inspect, 'statusCommand');
export const validateCommand = lazy(inspect, 'validateCommand');
export const runCommand = lazy(() => import('./commands/run.js'), 'runCommand');
export const serveCommand = lazy(() => import('./commands/serve.js'), 'serveCommand');
export const tokenCreateCommand = lazy(token, 'tokenCreateCommand');
export const tokenListCommand = lazy(token, 'tokenListCommand');
export const tokenRevokeCommand = lazy(token, 'tokenRevokeCommand');
export const migrateCommand = lazy(worker, 'migrateCommand');
export const workerCommand = lazy(worker, 'workerCommand');

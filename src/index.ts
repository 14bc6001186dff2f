/**
 * Sluice: durable pipelines for TypeScript. The public library API.
 */
export { Engine, type EngineOptions, type StartRunOptions, type Clock } from './engine/engine.js';
export type { CodeSandboxOptions } from './steps/code/sandbox-pool-options.js';
export type { WorkerOptions } from './engine/worker.js';
export { SluiceError, ValidationError, formatIssue, type ErrorCode, type ValidationIssue } from './core/errors.js';
export { isSluiceError, errorCodeOf, hasErrorCode, type ErrorRecord } from './core/errors.js';
export type { EmitOptions, EmittedEvent } from './engine/engine.js';
export type { EngineExtension, ExtensionHost, InstalledExtension } from './engine/extension.js';
export { attributePipelines, attributeTriggersOf, ATTRIBUTE_EXTENSION, type AttributeExtension } from './attributes/extension.js';
export type { AttemptFence } from './steps/step-type.js';
export { pipelinesTriggeredBy } from './core/event-triggers.js';
export {
  afterFailure,
  failedForGood,
  mayRetry,
  retryDelayAfter,
  afterRewindRequest,
  gateFailedError,
  renderWith,
  startVerdict,
  type FailureAction,
  type FailureFacts,
  type RewindBudget,
  type RewindVerdict,
  type RenderRules,
  type StartFacts,
  type StartVerdict,
} from './core/step-policy.js';
export type * from './core/model.js';
export { normalizePipeline, pipelineVersionHash } from './core/validate.js';
export { loadPipelineFile, parsePipelineText } from './core/load-pipeline.js';
export { renderGraph } from './core/graph.js';
export type { StepType, StepContext, StepRegistry, LogStream, ArtifactAccess } from './steps/step-type.js';
export { isArtifactRef, DEFAULT_INLINE_LIMIT, type ArtifactRef, type ArtifactContent } from './artifacts/artifact-store.js';
export type { ArtifactStore } from './artifacts/artifact-store.js';
export { FolderArtifactStore } from './artifacts/folder-artifact-store.js';
// PostgresStore, PostgresArtifactStore and their options: `sluice/postgres` (they need the optional peer `pg`).
export { S3ArtifactStore, type S3ArtifactStoreOptions } from './artifacts/s3-artifact-store.js';
export { openArtifactStore } from './artifacts/open-artifact-store.js';
export { builtinStepTypes } from './steps/builtin.js';
export { openStore, DEFAULT_STORE_URL } from './store/open-store.js';
export { SqliteStore } from './store/sqlite/sqlite-store.js';
export type * from './store/store.js';
// Loads the server on its first call; `sluice/server` exports it directly.
export { createServer } from './server/load-server.js';
export type { ServerOptions } from './server/create-server.js';
export { createApiToken } from './server/auth.js';
export { simulatePipeline, type SimulateOptions, type SimulatedRun } from './engine/simulate.js';
export { putDataset, requireDataset, streamRecords, writeRecords } from './datasets/datasets.js';
export { readJsonlFile, recordsFromJsonl } from './datasets/jsonl.js';
export { computeValues, type ComputeCase, type ComputedValue } from './attributes/compute.js';
export { runDatasetPipelines, datasetPipelineOrder } from './attributes/dataset-runs.js';
export { attributeOrder } from './attributes/ordering.js';
export type { AttributeRunInput, AttributeRunStats } from './attributes/attribute-step.js';
export type * from './store/attributes.js';
export { runEvals, loadEvalReport, type EvalReport } from './evals/run-evals.js';
export { EvalScheduler } from './evals/eval-scheduler.js';
export { setEvals, patchEval, evalFromValue } from './evals/evals.js';
export { parseComparator, matches as evalMatches } from './core/comparators.js';

import { Engine, type EngineOptions } from './engine/engine.js';
import { builtinStepTypes } from './steps/builtin.js';
import { attributePipelines } from './attributes/extension.js';

/**
 * Creates an engine; `steps` defaults to the built-in step types, and attribute pipelines are installed (before
 * any `extensions` given).
 */
export function createEngine(options: Omit<EngineOptions, 'steps'> & { steps?: EngineOptions['steps'] }): Engine {
  return new Engine({ ...options, steps: options.steps ?? builtinStepTypes(), extensions: [attributePipelines(), ...(options.extensions ?? [])] });
}
export * from './define/index.js';
export type { EngineLogger } from './engine/engine-log.js';
export { tracerFromEnv, tracingEnabled, type RunTracer } from './telemetry/tracing.js';
export { CronTriggers, type CronTriggersOptions } from './engine/cron-triggers.js';
export { type PruneOptions, type PruneReport } from './engine/retention.js';

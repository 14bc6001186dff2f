import type { Pipeline } from '../core/model.js';
import type { StepRegistry, StepType } from '../steps/step-type.js';
import type { Store, StoredPipeline } from '../store/store.js';

/**
 * A feature that plugs into the engine through the public step contract instead of being built into it (attribute
 * pipelines are one). The entry that creates the engine (the library's `createEngine`, the CLI, the server)
 * passes it in `EngineOptions.extensions`; the engine knows nothing of what it adds.
 */
export interface EngineExtension {
  /** Unique among the engine's extensions; {@link Engine.extension} finds it by this name. */
  readonly name: string;
  /** Called once, while the engine is constructed. */
  install(host: ExtensionHost): InstalledExtension;
}

/** What an extension may use of the engine that installs it. */
export interface ExtensionHost {
  /** The store, for what the extension reads and keeps outside runs (its steps get fenced ports instead). */
  readonly store: Store;
  /** The engine's step types, the extensions' included; read when used, so types added later count. */
  steps(): StepRegistry;
  /** Starts a run of the latest version of `pipeline`. */
  startRun(pipeline: string, input: unknown): Promise<unknown>;
  /** Reports an error that has no caller to go to (the engine's `onError`). */
  onError(err: unknown): void;
  /** Engine options extensions read (`EngineOptions.triggerDebounceMs`). */
  readonly options: { triggerDebounceMs?: number };
}

/** What an installed extension adds. Every member is optional. */
export interface InstalledExtension {
  /** Step types it adds to the engine's registry. */
  stepTypes?: StepType<any>[];
  /** Checks a pipeline before it is registered; throws a SluiceError to refuse it. `registered` lists the stored ones. */
  checkPipeline?(pipeline: Pipeline, registered: () => Promise<StoredPipeline[]>): Promise<void>;
  /** Finishes what is pending when the engine closes. */
  close?(): Promise<void>;
}

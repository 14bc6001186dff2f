// What the stores offer for flow control besides run creation (which applies the rules itself).

/** What the flow rules did to one run. */
export interface RunFlow {
  /** debounce: start requests this run stands for (itself included); null when not debounced. */
  absorbed: number | null;
  /** singleton queue: the run this one waits for; null once released or when not held. */
  afterRunId: string | null;
}

/** Flow methods of a store (both built-in backends have them). */
export interface FlowPort {
  /** Starts the runs a singleton queue held behind a run that has ended; returns their ids. */
  releaseHeldRuns(now: number): Promise<string[]>;
  /** What the flow rules did to run `id`; undefined when none applied. */
  runFlow(id: string): Promise<RunFlow | undefined>;
  /** The pending (not started) run of a debounce bucket, with its input: what a `merge` reads. */
  pendingDebounce(pipeline: string, key: string): Promise<{ runId: string; input: unknown } | undefined>;
}

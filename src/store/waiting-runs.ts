/**
 * The runs `--status waiting` lists: those waiting for a human (run status `waiting`) and the running ones with a
 * step that waits (`sleep`, `wait_for_event`), whose run stays `running` meanwhile. `param` is the status
 * parameter as the dialect writes it.
 */
export function waitingRunsCondition(param: string): string {
  return `(status = ${param} OR (status = 'running' AND EXISTS (SELECT 1 FROM steps w WHERE w.run_id = runs.id AND w.status = 'waiting')))`;
}

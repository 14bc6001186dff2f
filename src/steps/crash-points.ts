/**
 * Named crash points for fault-injection tests. Setting `SLUICE_CRASH_POINT=before-commit:STEP` (or
 * `after-commit:STEP`) makes this process kill itself with SIGKILL right before (after) the result of
 * STEP is committed, exactly as a power cut would.
 */
export function crashPoint(name: string, step: string): void {
  const armed = process.env['SLUICE_CRASH_POINT'];
  if (armed !== undefined && armed === `${name}:${step}`) process.kill(process.pid, 'SIGKILL');
}

/**
 * Whether output to `stream` may redraw in place with Unicode glyphs: only on a terminal, and not when
 * `TERM=dumb` (a terminal that cannot move the cursor) or `NO_COLOR` is set (https://no-color.org: asks for plain
 * output). Otherwise Sluice writes plain ASCII lines, one per event, safe for pipes, logs and CI.
 */
export function isRichTerminal(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (stream.isTTY !== true) return false;
  if (env['TERM'] === 'dumb') return false;
  return env['NO_COLOR'] === undefined || env['NO_COLOR'] === '';
}

/**
 * Durations as written in pipeline definitions: a number of milliseconds, or a string of one or more
 * `<number><unit>` parts, largest unit first (`500ms`, `1.5s`, `5m`, `2h`, `1d`, `1m30s`).
 */

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;

/**
 * Source of the duration-string pattern, shared with the JSON Schema so editors and the loader agree.
 * The lookahead rejects the empty string; units must appear at most once, largest first, which keeps
 * `1m30s` unambiguous and rejects typos like `30s1m`.
 */
export const DURATION_PATTERN =
  '^(?=\\d)(?:(\\d+(?:\\.\\d+)?)d)?(?:(\\d+(?:\\.\\d+)?)h)?(?:(\\d+(?:\\.\\d+)?)m)?(?:(\\d+(?:\\.\\d+)?)s)?(?:(\\d+(?:\\.\\d+)?)ms)?$';

const DURATION_RE = new RegExp(DURATION_PATTERN);
const UNITS_IN_PATTERN_ORDER = ['d', 'h', 'm', 's', 'ms'] as const;

/** What a valid duration looks like, for error messages. */
export const DURATION_HINT = 'a duration such as 500ms, 30s, 1.5s, 5m, 2h, 1d or 1m30s, or a number of milliseconds';

/**
 * Parses a duration into milliseconds (rounded to a whole millisecond).
 * Numbers are taken as milliseconds. Throws an `Error` naming the value and the accepted forms.
 */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return parseMilliseconds(value);
  if (typeof value !== 'string') throw new Error(`invalid duration ${String(value)}: expected ${DURATION_HINT}`);
  const match = DURATION_RE.exec(value);
  if (!match) throw new Error(`invalid duration ${JSON.stringify(value)}: expected ${DURATION_HINT}`);
  let total = 0;
  UNITS_IN_PATTERN_ORDER.forEach((unit, i) => {
    const amount = match[i + 1];
    if (amount !== undefined) total += Number(amount) * UNIT_MS[unit];
  });
  return Math.round(total);
}

function parseMilliseconds(value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`invalid duration ${value}: expected a non-negative, finite number of milliseconds`);
  }
  return Math.round(value);
}

/**
 * A native regular expression cannot be interrupted once it runs, and a pattern whose repeated group itself
 * repeats (`(a+)+`, `(\w*\s?)*`, `(x{1,3})+`) backtracks exponentially on a near-miss: 30 characters can
 * take minutes. Expressions are written by users and evaluated in the server and workers, so such regexes are
 * refused when the expression is compiled instead.
 */

/** One open group while scanning a pattern. */
interface GroupScan {
  /** Something inside may match a varying number of times (`*`, `+`, `?`, `{n,m}` with n < m). */
  variable: boolean;
}

/**
 * Why `source` (a regex pattern, without slashes and flags) may backtrack catastrophically, or null. Finds a
 * group repeated without a fixed count (`*`, `+`, `{n,}`, `{n,m}` with m > 1) whose content has a quantifier of
 * its own that can vary. A heuristic: it does not catch overlapping alternatives such as `(a|a)*`.
 */
export function backtrackingRisk(source: string): string | null {
  const groups: GroupScan[] = [{ variable: false }];
  let closed: GroupScan | null = null; // the group that just closed, if the next token may quantify it
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    const quantifier = readQuantifier(source, i);
    if (quantifier) {
      if (closed && quantifier.repeats && closed.variable) {
        const group = groupSourceEnding(source, i - 1);
        return `the group ${group} is repeated by "${quantifier.text}" and itself contains a repetition, which can backtrack exponentially on input that almost matches; rewrite it without nesting (e.g. "(a+)+" as "a+")`;
      }
      if (quantifier.varies) groups[groups.length - 1]!.variable = true;
      i += quantifier.text.length - 1;
      // A lazy or possessive-looking suffix (`+?`) belongs to the quantifier.
      if (source[i + 1] === '?') i++;
      closed = null;
      continue;
    }
    closed = null;
    if (c === '\\') i++;
    else if (c === '[') i = classEnd(source, i);
    else if (c === '(') {
      groups.push({ variable: false });
      // `(?:`, `(?=`, `(?!`, `(?<=`, `(?<!`, `(?<name>`: the `?` opens the group, it quantifies nothing.
      const prefix = /^\?(?::|=|!|<=|<!|<[A-Za-z_$][\w$]*>)/.exec(source.slice(i + 1, i + 40));
      if (prefix) i += prefix[0].length;
    }
    else if (c === ')' && groups.length > 1) {
      closed = groups.pop()!;
      if (closed.variable) groups[groups.length - 1]!.variable = true;
    }
  }
  return null;
}

interface Quantifier {
  text: string;
  /** Repeats more than once: `*`, `+`, `{n,}`, `{n,m}` with m > 1. */
  repeats: boolean;
  /** Matches a varying number of times: anything but `{n}`. */
  varies: boolean;
}

function readQuantifier(source: string, i: number): Quantifier | null {
  const c = source[i];
  if (c === '*' || c === '+') return { text: c, repeats: true, varies: true };
  if (c === '?') return { text: c, repeats: false, varies: true };
  if (c !== '{') return null;
  const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i, i + 24));
  if (!m) return null;
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
  return { text: m[0], repeats: max > 1, varies: max !== min };
}

/** Index of the `]` closing the character class opened at `start`. */
function classEnd(source: string, start: number): number {
  for (let i = start + 1; i < source.length; i++) {
    if (source[i] === '\\') i++;
    else if (source[i] === ']' && i > start + 1) return i;
  }
  return source.length;
}

/** The text of the group whose `)` is at `end`, for the message. */
function groupSourceEnding(source: string, end: number): string {
  let depth = 0;
  for (let i = end; i >= 0; i--) {
    if (source[i - 1] === '\\') continue;
    if (source[i] === ')') depth++;
    else if (source[i] === '(' && --depth === 0) return source.slice(i, end + 1);
  }
  return source.slice(0, end + 1);
}

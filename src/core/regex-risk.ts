/**
 * A native regular expression cannot be interrupted once it runs, and a pattern that can match the same text in
 * many ways inside a repetition backtracks exponentially on a near-miss: 30 characters can take minutes.
 * Expressions are written by users and evaluated in the server and workers, so such regexes are refused when the
 * expression is compiled instead.
 *
 * The screen is a heuristic over first characters. Inside a group repeated without a fixed count (`*`, `+`,
 * `{n,}`, `{n,m}` with m > 1) it refuses:
 * - a part with a varying count (`a+`, `\w*`, `(ab)?`) whose characters may also start what comes next in the
 *   same repetition, the next round of the group included (`(a+)+`, `(\w+\s?)*`), while `([A-Z][a-z]+ )*` passes
 *   because a space, never a letter, ends each word;
 * - alternatives that may start with the same character (`(a|a)*`, `(\w|\d)+`, `(.|\s)*`, and `(a|ab)*`, which
 *   is cheap only until another alternative such as `b` joins it);
 * - a backreference (`\1`, `\k<name>`), whose text changes between rounds.
 * Alternatives of a group inside, matched once per round, count too (`(?:(a|a)b)+`). Characters are compared on
 * a sample (ASCII and a few others), as the `i` flag does when given.
 */

/** Sample characters the first-character sets are computed on. */
const SAMPLE = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), '\t', '\n', '\r', '\u00a0', 'é', 'ж', '中', '\u2028'];

type CharSet = ReadonlySet<string>;

/** One part of a sequence with its quantifier: a character matcher, a group, an anchor or a backreference. */
interface Term {
  /** The pattern text of the part, quantifier included. */
  text: string;
  min: number;
  max: number;
  /** Characters that may start the part (before its quantifier). */
  first: CharSet;
  /** The part may match nothing even once (anchors, lookarounds, groups with an empty alternative). */
  empty: boolean;
  /** For a group: its alternatives. */
  alternatives?: Term[][];
  /** For a group: the text of each alternative. */
  alternativeTexts?: string[];
  backreference: boolean;
}

/**
 * Why `source` (a regex pattern, without slashes and flags) may backtrack catastrophically, or null when the
 * screen finds nothing. A heuristic (see the module comment): it may refuse a pattern that is fast in practice,
 * and it does not catch every slow one (e.g. `\d*\d*\d*x` is slow polynomially, not exponentially). `flags`
 * (default none): only `i` matters, for which characters overlap.
 */
export function backtrackingRisk(source: string, flags = ''): string | null {
  const parser = new Parser(source, flags.includes('i') ? 'i' : '');
  const alternatives = parser.alternatives();
  if (parser.tooDeep) return `it nests groups more than ${MAX_GROUP_DEPTH} deep, too deep to screen; flatten the pattern`;
  return riskIn(alternatives);
}

/** Deepest group nesting the screen reads (its walks recurse per level). */
const MAX_GROUP_DEPTH = 100;

function riskIn(alternatives: Term[][]): string | null {
  for (const sequence of alternatives) {
    for (const term of sequence) {
      if (!term.alternatives) continue;
      if (term.max > 1 && term.max !== term.min) {
        const risk = repeatedGroupRisk(term);
        if (risk) return risk;
      }
      const inner = riskIn(term.alternatives);
      if (inner) return inner;
    }
  }
  return null;
}

/** Why the repeated group `group` is risky, or null. */
function repeatedGroupRisk(group: Term): string | null {
  const quantifier = group.text.slice(groupText(group).length);
  const intro = `the group ${groupText(group)} is repeated by "${quantifier}" and`;
  if (containsBackreference(group.alternatives!)) {
    return `${intro} holds a backreference, which can backtrack exponentially on input that almost matches; capture outside the repetition or match the repeated text literally`;
  }
  const overlap = overlappingAlternatives(group);
  if (overlap) {
    return `${intro} its alternatives "${overlap[0]}" and "${overlap[1]}" can start with the same character, so one text can match in many ways and backtrack exponentially on input that almost matches; make at most one alternative fit each character (e.g. "(a|ab)*" as "(ab?)*", "(\\w|\\d)+" as "\\w+", "(.|\\s)*" as "[\\s\\S]*")`;
  }
  const nested = ambiguousRepetition(group.alternatives!, [], group.first);
  if (nested) {
    return `${intro} itself contains the repetition "${nested}" that can also match what follows it, which can backtrack exponentially on input that almost matches; rewrite it without nesting (e.g. "(a+)+" as "a+") or end each round with a character the repetition cannot match (e.g. "(\\w+\\s?)+" as "\\w+(\\s\\w+)*")`;
  }
  return null;
}

function containsBackreference(alternatives: Term[][]): boolean {
  return alternatives.some((sequence) => sequence.some((t) => t.backreference || (t.alternatives !== undefined && containsBackreference(t.alternatives))));
}

/** Two alternatives of `group`, or of a group inside matched once per round, whose first characters overlap. */
function overlappingAlternatives(group: Term): [string, string] | null {
  const own = overlappingOwnAlternatives(group);
  if (own) return own;
  for (const sequence of group.alternatives!) {
    for (const term of sequence) {
      const inner = term.alternatives && term.max <= 1 ? overlappingAlternatives(term) : null;
      if (inner) return inner;
    }
  }
  return null;
}

function overlappingOwnAlternatives(group: Term): [string, string] | null {
  const firsts = group.alternatives!.map((sequence) => firstOf(sequence, 0).first);
  for (let a = 0; a < firsts.length; a++) {
    for (let b = a + 1; b < firsts.length; b++) {
      if (intersects(firsts[a]!, firsts[b]!)) return [group.alternativeTexts![a]!, group.alternativeTexts![b]!];
    }
  }
  return null;
}

/** A continuation: what follows a sequence once it ends, innermost first. */
type Continuation = { sequence: Term[]; from: number }[];

/**
 * The text of a part with a varying count, inside the repeated group, whose characters may also start what follows
 * it: the rest of its sequence, then of the enclosing sequences, then `wrap` (the next round of the group).
 */
function ambiguousRepetition(alternatives: Term[][], after: Continuation, wrap: CharSet): string | null {
  for (const sequence of alternatives) {
    for (let i = 0; i < sequence.length; i++) {
      const term = sequence[i]!;
      const rest: Continuation = [{ sequence, from: i + 1 }, ...after];
      if (term.min !== term.max && intersects(term.first, followOf(rest, wrap))) return term.text;
      // A repeated group inside is screened on its own; a group matched once continues this sequence.
      if (term.alternatives && term.max <= 1) {
        const inner = ambiguousRepetition(term.alternatives, rest, wrap);
        if (inner) return inner;
      }
    }
  }
  return null;
}

/** Characters that may come right after a part: the continuation's first characters, then `wrap` if it can be empty. */
function followOf(rest: Continuation, wrap: CharSet): CharSet {
  const out = new Set<string>();
  for (const { sequence, from } of rest) {
    const { first, empty } = firstOf(sequence, from);
    for (const c of first) out.add(c);
    if (!empty) return out;
  }
  for (const c of wrap) out.add(c);
  return out;
}

/** First characters of `sequence` from `from`, and whether that rest may match nothing. */
function firstOf(sequence: Term[], from: number): { first: CharSet; empty: boolean } {
  return suffixes(sequence)[from]!;
}

// Every suffix of a sequence, computed once from the right: the screen stays linear on long patterns.
const suffixCache = new WeakMap<Term[], { first: CharSet; empty: boolean }[]>();

function suffixes(sequence: Term[]): { first: CharSet; empty: boolean }[] {
  const cached = suffixCache.get(sequence);
  if (cached) return cached;
  const out: { first: CharSet; empty: boolean }[] = new Array(sequence.length + 1);
  out[sequence.length] = { first: new Set(), empty: true };
  for (let i = sequence.length - 1; i >= 0; i--) {
    const term = sequence[i]!;
    const next = out[i + 1]!;
    const required = term.min > 0 && !term.empty;
    out[i] = required ? { first: term.first, empty: false } : { first: union(term.first, next.first), empty: next.empty };
  }
  suffixCache.set(sequence, out);
  return out;
}

function union(a: CharSet, b: CharSet): CharSet {
  if (a.size === 0) return b;
  if (b.size === 0) return a;
  const out = new Set(a);
  for (const c of b) out.add(c);
  return out;
}

function intersects(a: CharSet, b: CharSet): boolean {
  for (const c of a) if (b.has(c)) return true;
  return false;
}

function groupText(group: Term): string {
  const m = /(?:[*+?]|\{\d+(?:,\d*)?\})\??$/.exec(group.text);
  return m ? group.text.slice(0, m.index) : group.text;
}

/** A small recursive-descent reader of JavaScript regex syntax, enough for the screen. */
class Parser {
  private i = 0;
  private depth = 0;
  /** A group nested deeper than {@link MAX_GROUP_DEPTH} was met; the rest was skipped. */
  tooDeep = false;
  constructor(
    private readonly source: string,
    private readonly flags: string,
  ) {}

  /** Alternatives up to the end or a `)` (left unread). */
  alternatives(): Term[][] {
    const out: Term[][] = [this.sequence()];
    while (this.source[this.i] === '|') {
      this.i++;
      out.push(this.sequence());
    }
    return out;
  }

  /** Terms up to the end, a `|` or a `)`. */
  private sequence(): Term[] {
    const terms: Term[] = [];
    while (this.i < this.source.length && this.source[this.i] !== '|' && this.source[this.i] !== ')') {
      const start = this.i;
      const atom = this.atom();
      const quantifier = this.quantifier();
      terms.push({ ...atom, ...quantifier, text: this.source.slice(start, this.i) });
    }
    return terms;
  }

  private atom(): Omit<Term, 'text' | 'min' | 'max'> {
    const s = this.source;
    const start = this.i;
    const c = s[this.i]!;
    if (c === '^' || c === '$') {
      this.i++;
      return { first: new Set(), empty: true, backreference: false };
    }
    if (c === '(') return this.group();
    if (c === '[') this.i = classEnd(s, this.i) + 1;
    else if (c === '\\') {
      const escape = /^\\(?:[1-9]\d*|k<[^>]*>)/.exec(s.slice(this.i));
      if (escape) {
        this.i += escape[0].length;
        return { first: new Set(SAMPLE), empty: true, backreference: true };
      }
      if (s[this.i + 1] === 'b' || s[this.i + 1] === 'B') {
        this.i += 2;
        return { first: new Set(), empty: true, backreference: false };
      }
      const long = /^\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|u\{[0-9a-fA-F]+\}|c[A-Za-z]|[pP]\{[^}]*\})/.exec(s.slice(this.i));
      this.i += long ? long[0].length : 2;
    } else this.i++;
    return { first: matchedSample(s.slice(start, this.i), this.flags), empty: false, backreference: false };
  }

  private group(): Omit<Term, 'text' | 'min' | 'max'> {
    this.i++;
    const prefix = /^\?(?::|=|!|<=|<!|<[A-Za-z_$][\w$]*>)/.exec(this.source.slice(this.i, this.i + 40));
    const lookaround = prefix !== null && /^\?(?:=|!|<=|<!)$/.test(prefix[0]);
    if (prefix) this.i += prefix[0].length;
    if (++this.depth > MAX_GROUP_DEPTH) {
      this.tooDeep = true;
      this.i = this.source.length;
    }
    const alternatives = this.alternatives();
    this.depth--;
    const alternativeTexts = alternatives.map((sequence) => sequence.map((t) => t.text).join(''));
    if (this.source[this.i] === ')') this.i++;
    if (lookaround) return { first: new Set(), empty: true, backreference: containsBackreference(alternatives) };
    const firsts = alternatives.map((sequence) => firstOf(sequence, 0));
    const first = new Set<string>();
    for (const f of firsts) for (const c of f.first) first.add(c);
    return { first, empty: firsts.some((f) => f.empty), alternatives, alternativeTexts, backreference: false };
  }

  private quantifier(): { min: number; max: number } {
    const s = this.source;
    const c = s[this.i];
    let result: { min: number; max: number } | null = null;
    if (c === '*') result = { min: 0, max: Infinity };
    else if (c === '+') result = { min: 1, max: Infinity };
    else if (c === '?') result = { min: 0, max: 1 };
    if (result) this.i++;
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(s.slice(this.i, this.i + 24));
      if (!m) return { min: 1, max: 1 };
      const min = Number(m[1]);
      result = { min, max: m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]) };
      this.i += m[0].length;
    } else return { min: 1, max: 1 };
    // A lazy suffix (`+?`) belongs to the quantifier.
    if (s[this.i] === '?') this.i++;
    return result;
  }
}

/** Which sample characters the single-character matcher `atom` (a literal, escape, class or `.`) matches. */
function matchedSample(atom: string, flags: string): CharSet {
  // A Unicode property class is read literally without the u flag; assume it may match anything.
  if (/^\\[pP]\{/.test(atom)) return new Set(SAMPLE);
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${atom})$`, flags);
  } catch {
    // Unknown to the plain syntax (e.g. `\p{L}` without the u flag): assume it may match anything.
    return new Set(SAMPLE);
  }
  return new Set(SAMPLE.filter((c) => re.test(c)));
}

/** Index of the `]` closing the character class opened at `start`. */
function classEnd(source: string, start: number): number {
  for (let i = start + 1; i < source.length; i++) {
    if (source[i] === '\\') i++;
    else if (source[i] === ']' && i > start + 1) return i;
  }
  return source.length;
}

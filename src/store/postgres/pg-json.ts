/**
 * JSON as PostgreSQL holds it. `jsonb` refuses two things any JavaScript string may contain: U+0000 (the escape
 * `\u0000`) and lone UTF-16 surrogates (`\ud800`, which JSON.stringify emits escaped). Both are written as an
 * escape sequence that jsonb accepts and restored on read, so every value reads back equal to what was written:
 *
 * - the marker U+FDD0 (a Unicode noncharacter, never meant for interchange) becomes U+FDD0 U+FDD0,
 * - U+0000 becomes U+FDD0 `0`,
 * - a lone surrogate U+D800..U+DFFF becomes U+FDD0 `s` and its four lowercase hex digits.
 *
 * The transform works on JSON text (strings and keys alike), so it applies to text another module stringified.
 * Text columns (log lines, notes) hold no escapes: {@link toPgText} replaces U+0000 there.
 */

const MARK = '\uFDD0';

/**
 * In JSON text: an escaped backslash (kept as is, so that what follows it is not taken for an escape), the escapes
 * jsonb refuses, the marker raw or escaped.
 */
const ENCODE = /\\\\|\\u0000|\\u(d[89a-f][0-9a-f]{2})|\\ufdd0|\uFDD0/gi;
const DECODE = /\uFDD0(\uFDD0|0|s([0-9a-f]{4}))/g;

/** JSON text that jsonb and json accept, for a JSON text made by JSON.stringify (or null). */
export function encodePgJson(text: string): string;
export function encodePgJson(text: string | null): string | null;
export function encodePgJson(text: string | null): string | null {
  // The common case costs one scan that finds nothing.
  if (text === null || !mayNeedEncoding(text)) return text;
  return text.replace(ENCODE, (m: string, surrogate: string | undefined) => {
    if (m === '\\\\') return m;
    if (surrogate !== undefined) return `${MARK}s${surrogate.toLowerCase()}`;
    if (m === MARK || m.toLowerCase() === '\\ufdd0') return MARK + MARK;
    return `${MARK}0`;
  });
}

/** The JSON text that was written, for a json/jsonb value read back (its text form). */
export function decodePgJson(text: string): string {
  if (!text.includes(MARK)) return text;
  return text.replace(DECODE, (_m, what: string, hex: string | undefined) => {
    if (hex !== undefined) return `\\u${hex}`;
    return what === '0' ? '\\u0000' : MARK;
  });
}

/** `value` as JSON text for a json/jsonb parameter; undefined is stored as null. */
export function pgJson(value: unknown): string {
  return encodePgJson(JSON.stringify(value === undefined ? null : value));
}

/**
 * Text for a `text` column, which cannot hold U+0000: each becomes U+FFFD (the replacement character). Lone
 * surrogates need nothing here: the driver sends UTF-8, which writes them as U+FFFD already.
 */
export function toPgText(text: string): string;
export function toPgText(text: string | null): string | null;
export function toPgText(text: string | null): string | null {
  return text !== null && text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text;
}

function mayNeedEncoding(text: string): boolean {
  return text.includes('\\u') || text.includes(MARK);
}

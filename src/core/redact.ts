/** Secret values shorter than this are left alone: blanking every "a" or "1" would garble text, not hide a key. */
const MIN_SECRET_CHARS = 4;

/** Replaces every secret value in `text` with `***` (logs, error messages, simulate answers). */
export function redactSecrets(text: string, secrets: Readonly<Record<string, string>> | undefined): string {
  let out = text;
  for (const value of Object.values(secrets ?? {})) {
    if (value.length < MIN_SECRET_CHARS) continue;
    if (out.includes(value)) out = out.split(value).join('***');
    // A secret templated into a URL is written percent-encoded (http steps' messages quote the URL).
    const encoded = encodeURIComponent(value);
    if (encoded !== value && out.includes(encoded)) out = out.split(encoded).join('***');
  }
  return out;
}

/** A copy of a JSON value with every secret value blanked out of its strings (keys included). */
export function redactDeep<T>(value: T, secrets: Readonly<Record<string, string>> | undefined): T {
  if (Object.values(secrets ?? {}).every((v) => v.length < MIN_SECRET_CHARS)) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactSecrets(v, secrets);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [redactSecrets(k, secrets), walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/**
 * A JSON value (a step's output) with every secret value blanked out, as it will be stored: the value itself
 * when its JSON holds no secret (the common case costs one serialization), else a redacted copy of its JSON form.
 */
export function redactJson<T>(value: T, secrets: Readonly<Record<string, string>> | undefined): T {
  const values = Object.values(secrets ?? {}).filter((v) => v.length >= MIN_SECRET_CHARS);
  if (values.length === 0) return value;
  const text = JSON.stringify(value);
  if (text === undefined) return value;
  // JSON escapes quotes, backslashes and control characters: look for the secret as its JSON text shows it.
  const shows = (v: string) => text.includes(JSON.stringify(v).slice(1, -1));
  if (!values.some((v) => shows(v) || shows(encodeURIComponent(v)))) return value;
  return redactDeep(JSON.parse(text) as T, secrets);
}

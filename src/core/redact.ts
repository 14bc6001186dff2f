/** Secret values shorter than this are left alone: blanking every "a" or "1" would garble text, not hide a key. */
const MIN_SECRET_CHARS = 4;

/** Replaces every secret value in `text` with `***` (logs, error messages, simulate answers). */
export function redactSecrets(text: string, secrets: Readonly<Record<string, string>> | undefined): string {
  let out = text;
  for (const value of Object.values(secrets ?? {})) if (value.length >= MIN_SECRET_CHARS) out = out.split(value).join('***');
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

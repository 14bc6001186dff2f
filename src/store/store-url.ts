/**
 * A store URL fit to print or answer with: the password of `postgres://user:pass@host/db` and any
 * `password=` (or `sslpassword=`) query parameter are replaced by `***`. `/readyz` answers without auth and
 * start lines land in logs, so a password must never show there.
 */
export function maskStoreUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#@]*@/i, '$1:***@')
    .replace(/([?&](?:ssl)?password=)[^&#]*/gi, '$1***');
}

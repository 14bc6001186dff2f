import { createHash, createHmac } from 'node:crypto';

/** AWS credentials; `sessionToken` only for temporary ones. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

export interface SignableRequest {
  method: string;
  /** Its path must already be encoded as it is sent (each segment RFC 3986-encoded once, as S3 expects). */
  url: URL;
  /** Extra headers to sign and send (e.g. `content-type`), any case. */
  headers?: Record<string, string>;
  /** sha256 (hex) of the body; `UNSIGNED-PAYLOAD` is allowed by S3. */
  payloadHash: string;
  region: string;
  /** Default: `s3`. */
  service?: string;
  credentials: AwsCredentials;
  /** Signing time. Default: now. */
  now?: Date;
}

/** sha256 of the empty body. */
export const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

/**
 * AWS Signature Version 4 for one request (header form): returns the headers to send, `authorization`,
 * `x-amz-date`, `x-amz-content-sha256` (and `x-amz-security-token`) included, with the caller's headers.
 * `host` is signed but not returned: fetch sets it from the URL.
 */
export function signRequest(req: SignableRequest): Record<string, string> {
  const service = req.service ?? 's3';
  const amzDate = (req.now ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  headers['x-amz-date'] = amzDate;
  headers['x-amz-content-sha256'] = req.payloadHash;
  if (req.credentials.sessionToken) headers['x-amz-security-token'] = req.credentials.sessionToken;
  const signing: Record<string, string> = { ...headers, host: req.url.host };
  const names = Object.keys(signing).sort();
  const canonical = [
    req.method.toUpperCase(),
    req.url.pathname || '/',
    canonicalQuery(req.url),
    ...names.map((n) => `${n}:${signing[n]!.trim().replace(/\s+/g, ' ')}`),
    '',
    names.join(';'),
    req.payloadHash,
  ].join('\n');
  const scope = `${day}/${req.region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, hex(createHash('sha256').update(canonical))].join('\n');
  const key = [day, req.region, service, 'aws4_request'].reduce<Buffer>((k, part) => hmac(k, part), Buffer.from(`AWS4${req.credentials.secretAccessKey}`));
  const signature = hmac(key, toSign).toString('hex');
  headers['authorization'] = `AWS4-HMAC-SHA256 Credential=${req.credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return headers;
}

/** RFC 3986 encoding (what SigV4 wants): everything but `A-Z a-z 0-9 - _ . ~` percent-encoded. */
export function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(url: URL): string {
  return [...url.searchParams]
    .map(([k, v]) => [encodeRfc3986(k), encodeRfc3986(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function hex(hash: ReturnType<typeof createHash>): string {
  return hash.digest('hex');
}

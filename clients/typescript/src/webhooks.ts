/**
 * Verifies creditd's outbound webhooks (Standard Webhooks): `webhook-signature` holds one or more
 * space-separated `v1,<base64 HMAC-SHA256>` over `{webhook-id}.{webhook-timestamp}.{body}`,
 * keyed with the base64-decoded part of the endpoint's `whsec_…` secret after the prefix.
 */

/** Why a delivery was refused: `missing_header`, `bad_secret`, `timestamp_out_of_range`, `bad_signature` or `bad_body`. */
export class WebhookVerificationError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.code = code;
  }
}

/** A `Headers`, or a plain object such as Node's `req.headers` (names in any case). */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** Seconds `webhook-timestamp` may be from now, either way; default 300. */
  toleranceSeconds?: number;
  /** Unix seconds to check the timestamp against (tests); default the clock. */
  now?: number;
  /** Web Crypto to use; default `globalThis.crypto.subtle` (Node 18: `require('node:crypto').webcrypto.subtle`). */
  subtle?: SubtleCrypto;
}

/** An outbound event's body as creditd sends it (its id is the `webhook-id` header). */
export interface WebhookEvent {
  /** e.g. `customer.created`, `credits.low`, `payment.succeeded`. */
  type: string;
  /** RFC 3339. */
  timestamp: string;
  /** The object the event is about, e.g. the customer. */
  data: Record<string, unknown>;
}

function header(headers: WebhookHeaders, name: string): string {
  let value: string | string[] | null | undefined;
  if (typeof (headers as Headers).get === 'function') {
    value = (headers as Headers).get(name);
  } else {
    const record = headers as Record<string, string | string[] | undefined>;
    const key = Object.keys(record).find((k) => k.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  const text = Array.isArray(value) ? value.join(' ') : value;
  if (!text) throw new WebhookVerificationError('missing_header', `the ${name} header is missing`);
  return text;
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

function secretKey(secret: string): Uint8Array<ArrayBuffer> {
  const bytes = secret.startsWith('whsec_') ? fromBase64(secret.slice('whsec_'.length)) : undefined;
  if (!bytes || bytes.length === 0) throw new WebhookVerificationError('bad_secret', 'the secret is not a whsec_… secret');
  return bytes;
}

/**
 * Checks a delivery and returns its parsed event; throws `WebhookVerificationError` when a header
 * is missing, the timestamp is more than `toleranceSeconds` away, or no signature matches.
 * Pass the body exactly as received (the raw text or bytes, not re-serialized JSON).
 */
export async function verify(
  body: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string,
  options: VerifyOptions = {},
): Promise<WebhookEvent> {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  const key = secretKey(secret);
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const sent = /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : NaN;
  if (!(Math.abs(now - sent) <= (options.toleranceSeconds ?? 300))) {
    throw new WebhookVerificationError('timestamp_out_of_range', `webhook-timestamp ${timestamp} is too far from now (${now})`);
  }
  const bodyBytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const prefix = new TextEncoder().encode(`${id}.${timestamp}.`);
  const signed = new Uint8Array(prefix.length + bodyBytes.length);
  signed.set(prefix);
  signed.set(bodyBytes, prefix.length);
  const subtle = options.subtle ?? globalThis.crypto?.subtle;
  if (!subtle) throw new TypeError('creditd: no Web Crypto (globalThis.crypto.subtle); pass options.subtle');
  const hmac = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  for (const candidate of signatures.split(' ')) {
    const [version, value] = candidate.split(',', 2);
    const mac = version === 'v1' && value ? fromBase64(value) : undefined;
    // subtle.verify compares in constant time.
    if (mac && (await subtle.verify('HMAC', hmac, mac, signed))) return parse(bodyBytes);
  }
  throw new WebhookVerificationError('bad_signature', 'no webhook-signature matches the body and the secret');
}

function parse(body: Uint8Array): WebhookEvent {
  try {
    return JSON.parse(new TextDecoder().decode(body)) as WebhookEvent;
  } catch {
    throw new WebhookVerificationError('bad_body', 'the signed body is not JSON');
  }
}

/** `webhooks.verify(body, headers, secret)`. */
export const webhooks = { verify };

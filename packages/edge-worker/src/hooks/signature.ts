/**
 * HMAC-SHA256 signatures of Directus → edge hooks: `X-Attune-Signature: sha256=<hex>`
 * over the raw body, with HOOK_SECRET. Verification is constant-time (WebCrypto verify).
 */

const encoder = new TextEncoder();
const SIGNATURE = /^sha256=([0-9a-f]{64})$/;

async function hmacKey(secret: string, usage: 'sign' | 'verify'): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    usage,
  ]);
}

/** The header value for a body (what the Directus Flow computes). */
export async function signHookBody(secret: string, body: string): Promise<string> {
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret, 'sign'), encoder.encode(body));
  return `sha256=${[...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * A HOOK_SECRET shorter than this verifies nothing: unset, or a placeholder such as the
 * example file's `change-me`, which anyone could sign with.
 */
export const MIN_HOOK_SECRET_CHARS = 16;

/**
 * The MAC a header carries, as 64 lower-case hex digits (the form verification accepts in
 * any case and with surrounding space): what names one signed hook, so a replay whose header
 * is written differently is still the same hook. Undefined when the header is malformed.
 */
export function signatureHex(header: string | undefined): string | undefined {
  return header === undefined ? undefined : SIGNATURE.exec(header.trim().toLowerCase())?.[1];
}

/** Whether `header` is a valid signature of `body` under `secret`. A short or empty secret verifies nothing. */
export async function verifyHookSignature(
  secret: string,
  body: string,
  header: string | undefined,
): Promise<boolean> {
  if (secret.length < MIN_HOOK_SECRET_CHARS) return false;
  const hex = signatureHex(header);
  if (hex === undefined) return false;
  const mac = new Uint8Array(32);
  for (let i = 0; i < 32; i++) mac[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return crypto.subtle.verify('HMAC', await hmacKey(secret, 'verify'), mac, encoder.encode(body));
}

/** Reads a request body as text without ever holding more than a byte limit of it. */

export type BodyRead =
  | { ok: true; text: string }
  | { ok: false; reason: 'too_large' | 'unreadable' }
  | { ok: false; reason: 'unsupported_encoding'; encoding: string };

/** The body as UTF-8 text (invalid bytes replaced), or why not. */
export async function readBodyLimited(request: Request, limit: number): Promise<BodyRead> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) return { ok: false, reason: 'too_large' };
  if (!request.body) return { ok: true, text: '' };
  if (Number.isFinite(declared)) {
    // A declared length within the limit bounds the body (the runtime ends it there), so one
    // native read replaces the chunk loop below, which exists for bodies of unknown length.
    // Bytes decoded here rather than `text()`, which reads them alike but has workerd warn of
    // every body whose Content-Type is not a text type (a fuzz of every route sent hundreds).
    try {
      return { ok: true, text: utf8Text(await request.arrayBuffer()) };
    } catch {
      return { ok: false, reason: 'unreadable' };
    }
  }
  return readStreamLimited(request.body, limit);
}

/** Bytes as UTF-8 text, invalid bytes replaced and a byte-order mark dropped, as `Body.text()` reads them. */
export function utf8Text(bytes: ArrayBuffer): string {
  return new TextDecoder('utf-8').decode(bytes);
}

/** A request's or response's `Content-Encoding`, lower-cased, or `identity` when it names none. */
export function contentCoding(headers: Headers): string {
  return (headers.get('content-encoding') ?? '').trim().toLowerCase() || 'identity';
}

/**
 * The body as text after its `Content-Encoding` (none, `identity` or `gzip`, as Segment
 * libraries send it), with `limit` applied to the decompressed bytes: a small body that
 * inflates past it (a zip bomb) ends as `too_large` after at most `limit` bytes inflated.
 */
export async function readBodyDecoded(request: Request, limit: number): Promise<BodyRead> {
  const encoding = contentCoding(request.headers);
  if (encoding === 'identity') return readBodyLimited(request, limit);
  if (encoding !== 'gzip' && encoding !== 'x-gzip') {
    return { ok: false, reason: 'unsupported_encoding', encoding: encoding.slice(0, 40) };
  }
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  // Compressed bytes over the limit cannot inflate to less than it in any real payload.
  if (Number.isFinite(declared) && declared > limit) return { ok: false, reason: 'too_large' };
  if (!request.body) return { ok: true, text: '' };
  let compressed = 0;
  // The compressed input is bounded too: empty gzip members inflate to nothing, forever.
  const counted = request.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        compressed += chunk.byteLength;
        if (compressed > limit) controller.error(new RangeError('compressed body over the limit'));
        else controller.enqueue(chunk);
      },
    }),
  );
  const read = await readStreamLimited(counted.pipeThrough(new DecompressionStream('gzip')), limit);
  return !read.ok && compressed > limit ? { ok: false, reason: 'too_large' } : read;
}

/** Reads a byte stream as UTF-8 text, cancelling it once it passes `limit` bytes. */
async function readStreamLimited(stream: ReadableStream<Uint8Array>, limit: number): Promise<BodyRead> {
  const reader = stream.getReader();
  const decoder = new TextDecoder('utf-8');
  let text = '';
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > limit) {
        await reader.cancel().catch(() => undefined);
        return { ok: false, reason: 'too_large' };
      }
      text += decoder.decode(value, { stream: true });
    }
    return { ok: true, text: text + decoder.decode() };
  } catch {
    return { ok: false, reason: 'unreadable' };
  }
}

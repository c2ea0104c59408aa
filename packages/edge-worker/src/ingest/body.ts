/** Reads a request body as text without ever holding more than a byte limit of it. */

export type BodyRead = { ok: true; text: string } | { ok: false; reason: 'too_large' | 'unreadable' };

/** The body as UTF-8 text (invalid bytes replaced), or why not. */
export async function readBodyLimited(request: Request, limit: number): Promise<BodyRead> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) return { ok: false, reason: 'too_large' };
  if (!request.body) return { ok: true, text: '' };
  if (Number.isFinite(declared)) {
    // A declared length within the limit bounds the body (the runtime ends it there), so one
    // native read replaces the chunk loop below, which exists for bodies of unknown length.
    try {
      return { ok: true, text: await request.text() };
    } catch {
      return { ok: false, reason: 'unreadable' };
    }
  }
  const reader = request.body.getReader();
  const decoder = new TextDecoder('utf-8');
  let text = '';
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > limit) {
        await reader.cancel();
        return { ok: false, reason: 'too_large' };
      }
      text += decoder.decode(value, { stream: true });
    }
    return { ok: true, text: text + decoder.decode() };
  } catch {
    return { ok: false, reason: 'unreadable' };
  }
}

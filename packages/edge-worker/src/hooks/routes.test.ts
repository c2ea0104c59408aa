/** POST /v1/hooks/directus: bounded reads of unauthenticated bodies. */
import { describe, expect, it } from 'vitest';
import { call } from '../ingest/test-support.ts';

describe('POST /v1/hooks/directus', () => {
  it('answers 413 to a body of unknown length without reading all of it (no buffering before the signature check)', async () => {
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024).fill(32);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= 8 * 1024 * 1024) {
          controller.close();
          return;
        }
        pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const res = await call(body, {
      path: '/v1/hooks/directus',
      origin: null,
      headers: { 'content-type': 'application/json', 'x-attune-signature': `sha256=${'0'.repeat(64)}` },
    });
    expect(res.status).toBe(413);
    expect(pulled).toBeLessThan(1024 * 1024);
  });
});

import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

describe('health', () => {
  it('answers', async () => {
    const res = await exports.default.fetch('http://attune.test/healthz');
    expect(res.status).toBe(200);
  });
});

import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

const SHOP = 'http://127.0.0.1:8787';

describe('edge proxy: pass-through', () => {
  it('passes non-HTML through untouched, headers and bytes', async () => {
    const js = await exports.default.fetch(`${SHOP}/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toBe('public, max-age=3600');
    expect(js.headers.get('etag')).toBe('"js"');
    expect(await js.text()).toContain('<div data-attune-slot=\\"hero\\">');
    const png = await exports.default.fetch(`${SHOP}/logo.png`);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await png.arrayBuffer()).slice(0, 4)).toEqual(
      new Uint8Array([0x89, 0x50, 0x4e, 0x47]),
    );
  });
});

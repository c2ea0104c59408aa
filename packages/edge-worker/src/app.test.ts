/** The HTTP surface as a whole: what a client with a wrong method or path is told. */
import { describe, expect, it } from 'vitest';
import { ADMIN_HEADERS, call } from './ingest/test-support.ts';

describe('a request no route answers', () => {
  it('is a 405 naming the methods that path answers when only the method is wrong', async () => {
    const collect = await call(null, { method: 'GET', path: '/v1/collect' });
    expect(collect.status).toBe(405);
    expect(collect.headers.get('allow')).toBe('POST, OPTIONS');
    expect(await collect.json()).toMatchObject({
      error: {
        code: 'method_not_allowed',
        message: 'GET is not answered on /v1/collect; use POST or OPTIONS',
      },
    });

    const person = await call(null, {
      method: 'PUT',
      path: '/v1/people/user:someone',
      headers: ADMIN_HEADERS,
    });
    expect(person.status).toBe(405);
    expect(person.headers.get('allow')).toBe('GET, DELETE, HEAD');

    const config = await call(null, { method: 'POST', path: '/v1/config' });
    expect(config.status).toBe(405);
    expect(config.headers.get('allow')?.split(', ')).toContain('GET');
  });

  it('is a 404 no_route for a path nothing answers, whatever the method', async () => {
    for (const method of ['GET', 'POST']) {
      const res = await call(null, { method, path: '/v1/colect' });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ error: { code: 'no_route' } });
    }
  });
});

/**
 * The dead-letter queue's consumer in workerd, without a Directus: what it logs when it
 * cannot keep letters (the Directus-backed behaviour is in test/directus/dead-letters.test.ts).
 */
import { createMessageBatch } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { directusClient } from '../directus/client.ts';
import { DEAD_LETTER_QUEUE, storeDeadLetters } from './dead-letters.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the dead-letter consumer while Directus is unavailable', () => {
  it('says in its log why it retried, not only how many', async () => {
    // Letters reach this queue after a day of failed syncs; if they cannot be kept either,
    // the reason (here: DIRECTUS_URL without its scheme) is all an operator has to act on.
    const unreachable = directusClient({
      url: 'directus.example.com',
      token: 't',
      fetch: async (url) => {
        throw new TypeError(`Invalid URL: ${String(url)}`);
      },
    });
    const warned: string[] = [];
    vi.spyOn(console, 'warn').mockImplementation((line: unknown) => {
      warned.push(String(line));
    });
    const batch = createMessageBatch<unknown>(DEAD_LETTER_QUEUE, [
      {
        id: 'letter-1',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisits', siteId: 'demo', pairs: 'not pairs' },
      },
    ]);
    const report = await storeDeadLetters(batch, env, { directus: unreachable, isErased: async () => false });
    expect(report).toMatchObject({ stored: 0, retried: 1 });
    const line = warned
      .map((w) => JSON.parse(w) as Record<string, unknown>)
      .find((w) => w.msg === 'sync.dead_letters');
    expect(line?.cause).toBe(
      'Directus unreachable (GET /items/dead_letters): Invalid URL: directus.example.com/items/dead_letters',
    );
  });
});

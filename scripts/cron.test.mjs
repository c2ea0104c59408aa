/**
 * When `./attune up` fires the Worker's Cron Triggers (cron.mjs): the crons of the repo's
 * wrangler.toml, due in the UTC minutes Cloudflare would run them and no others.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { cronsOf, isDue } from './cron.mjs';

const at = (iso) => new Date(iso);

describe('the crons of wrangler.toml', () => {
  const crons = cronsOf(readFileSync(new URL('../wrangler.toml', import.meta.url), 'utf8'));

  it('are the cache check and the retention', () => {
    assert.deepEqual([...crons].sort(), ['*/5 * * * *', '17 3 * * *']);
  });

  it('the cache check is due every five minutes, and only then', () => {
    const due = [];
    for (let minute = 0; minute < 60; minute++) {
      if (isDue('*/5 * * * *', at(`2026-11-28T10:${String(minute).padStart(2, '0')}:30Z`))) due.push(minute);
    }
    assert.deepEqual(due, [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]);
  });

  it('retention is due once a day at 03:17 UTC', () => {
    assert.equal(isDue('17 3 * * *', at('2026-11-28T03:17:05Z')), true);
    assert.equal(isDue('17 3 * * *', at('2026-11-28T03:18:00Z')), false);
    assert.equal(isDue('17 3 * * *', at('2026-11-28T04:17:00Z')), false);
    assert.equal(isDue('17 3 * * *', at('2026-11-29T03:17:59Z')), true);
  });
});

describe('isDue', () => {
  it('reads lists, ranges and steps of ranges', () => {
    assert.equal(isDue('0,30 9-17/2 * * 1-5', at('2026-11-30T11:30:00Z')), true); // a Monday
    assert.equal(isDue('0,30 9-17/2 * * 1-5', at('2026-11-30T10:30:00Z')), false);
    assert.equal(isDue('0,30 9-17/2 * * 1-5', at('2026-11-29T11:30:00Z')), false); // a Sunday
  });

  it('refuses what it cannot read, naming it, rather than never firing', () => {
    assert.throws(() => isDue('@daily', at('2026-11-28T00:00:00Z')), /5 fields/);
    assert.throws(() => isDue('0 3 * * MON', at('2026-11-28T00:00:00Z')), /cannot read "MON"/);
  });
});

/** The memo behind `decision.served`: an exposure once per window, per person, slot, variant and group. */
import type { EventMessage } from '@attune/shared-schema';
import { beforeEach, describe, expect, it } from 'vitest';
import { firstServings, forgetServings, SERVED_MEMO_MAX, SERVED_MEMO_MS } from './served-memo.ts';

const served = (
  personId: string,
  properties: { slot?: string; variant?: string; holdout?: boolean; eligible?: boolean } = {},
): EventMessage => ({
  kind: 'event',
  siteId: 'demo',
  personId,
  event: {
    id: crypto.randomUUID(),
    type: 'track',
    name: 'decision.served',
    timestamp: new Date(0).toISOString(),
    anonymousId: personId.slice(5),
    properties: {
      slot: 'hero',
      variant: 'hero-outdoor',
      holdout: false,
      eligible: true,
      personalized: true,
      experiment: 'personalization-v1',
      ...properties,
    },
    schemaVersion: 1,
  },
  enrichment: { receivedAt: new Date(0).toISOString(), correctedTimestamp: new Date(0).toISOString() },
  purposes: ['analytics'],
});

describe('firstServings', () => {
  beforeEach(() => forgetServings());

  it('passes an exposure once within the window, and again after it', () => {
    const t = 1_000_000;
    expect(firstServings([served('anon:a')], t)).toHaveLength(1);
    expect(firstServings([served('anon:a')], t + 60_000)).toHaveLength(0);
    expect(firstServings([served('anon:a')], t + SERVED_MEMO_MS - 1)).toHaveLength(0);
    expect(firstServings([served('anon:a')], t + SERVED_MEMO_MS)).toHaveLength(1);
  });

  it('tells exposures apart by person, slot, variant and the flags lift reads', () => {
    const t = 2_000_000;
    const all = [
      served('anon:a'),
      served('anon:b'),
      served('anon:a', { slot: 'promo' }),
      served('anon:a', { variant: 'hero-default' }),
      // Granting personalization later makes the person eligible: lift must see that exposure.
      served('anon:a', { eligible: false }),
      served('anon:a', { holdout: true }),
    ];
    expect(firstServings(all, t)).toHaveLength(all.length);
    expect(firstServings(all, t + 1)).toHaveLength(0);
  });

  it('stays bounded: past its size the oldest exposures are forgotten first', () => {
    const t = 3_000_000;
    firstServings([served('anon:oldest')], t);
    for (let i = 0; i < SERVED_MEMO_MAX; i++) firstServings([served(`anon:p${i}`)], t + 1);
    expect(firstServings([served('anon:oldest')], t + 2)).toHaveLength(1);
    expect(firstServings([served(`anon:p${SERVED_MEMO_MAX - 1}`)], t + 2)).toHaveLength(0);
  });
});

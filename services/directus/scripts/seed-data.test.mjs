/**
 * The seed's content targets people the Worker can tell apart: every segment a slot variant
 * names is built in or defined in the demo site's settings, and those settings are the ones
 * wrangler.toml gives the Worker (a variant aimed at an undefined segment is never shown).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BUILT_IN_SEGMENTS } from '../../../packages/shared-schema/src/constants.ts';
import { configuredSites } from '../../../scripts/wrangler-sites.mjs';
import { SITES, SLOT_CONTENT } from './seed-data.mjs';

const toml = readFileSync(new URL('../../../wrangler.toml', import.meta.url), 'utf8');
const workerSites = configuredSites(toml);
const demo = SITES.find((site) => site.id === 'demo');

describe('the seeded demo site', () => {
  it('is configured in the Worker with the settings the seed records in Directus', () => {
    const configured = workerSites.find((site) => site.id === 'demo');
    assert.ok(configured, "wrangler.toml's ATTUNE_SITES has no demo site");
    assert.deepEqual(configured.settings, demo?.settings);
  });

  it('defines every segment its slot content targets', () => {
    const defined = new Set([
      ...Object.values(BUILT_IN_SEGMENTS),
      ...(demo?.settings.segments ?? []).map((segment) => segment.id),
    ]);
    const targeted = SLOT_CONTENT.flatMap((variant) =>
      variant.targetSegments.map((segment) => ({ variant: variant.id, segment })),
    );
    assert.ok(targeted.length > 0, 'the seed targets no segment: this test checks nothing');
    assert.deepEqual(
      targeted.filter(({ segment }) => !defined.has(segment)),
      [],
      'a variant targets a segment no rule defines',
    );
  });
});

#!/usr/bin/env node
/**
 * Seeds the demo content (seed-data.mjs) into a bootstrapped instance. Creates only the
 * rows that are missing, so a marketer's edits survive a re-seed; records data/seeded so
 * `start` never re-seeds. `--force` re-checks even when seeded.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { adminClient, adminToken, instance, log } from './lib.mjs';
import { CONSENT_CATEGORIES, products, SITES, SLOT_CONTENT, TRIGGER_RULES } from './seed-data.mjs';
import { startServer } from './server.mjs';

async function createMissing(api, collection, rows, pkField = 'id') {
  const existing = (await api.get(`/items/${collection}?fields=${pkField}&limit=-1`)) ?? [];
  const have = new Set(existing.map((r) => String(r[pkField])));
  const missing = rows.filter((r) => !have.has(String(r[pkField])));
  if (missing.length > 0) await api.post(`/items/${collection}`, missing);
  log(`${collection}: ${missing.length} created, ${rows.length - missing.length} already there`);
}

export async function seed(inst = instance(), { force = false } = {}) {
  const marker = `${inst.dataDir}/seeded`;
  if (existsSync(marker) && !force) {
    log('already seeded');
    return;
  }
  await startServer(inst);
  const api = adminClient(inst, await adminToken(inst));
  await createMissing(api, 'consent_categories', CONSENT_CATEGORIES, 'key');
  await createMissing(api, 'sites', SITES);
  await createMissing(api, 'products', products());
  await createMissing(api, 'slot_content', SLOT_CONTENT);
  await createMissing(api, 'trigger_rules', TRIGGER_RULES);
  writeFileSync(marker, new Date().toISOString());
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await seed(instance(), { force: process.argv.includes('--force') });
}

/**
 * Starts the whole local system for the end-to-end suite on its own ports (Directus 28055
 * with a fresh data folder, the Worker 28787 with fresh state, the shop 23000) and stops
 * it afterwards. Server output lands in test-results/logs/.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { parseDotenv, startLocalSystem } from '../../../scripts/up.mjs';
import type { SystemInfo } from './system.ts';

export const E2E_PORTS = { shop: 23000, worker: 28787, directus: 28055 };

/** While iterating: ATTUNE_E2E_REUSE=1 runs against a system already started on the e2e ports. */
function reuseRunning(stateDir: string): SystemInfo {
  const dev = parseDotenv(readFileSync(join(stateDir, '.dev.vars'), 'utf8'));
  const directus = parseDotenv(readFileSync(join(stateDir, 'directus', '.env'), 'utf8'));
  const workerVars = parseDotenv(readFileSync(join(stateDir, 'directus', 'data', 'worker.dev.vars'), 'utf8'));
  const shopVars = parseDotenv(readFileSync(join(stateDir, 'directus', 'data', 'shop.env'), 'utf8'));
  const sites = JSON.parse(dev.ATTUNE_SITE_SECRETS ?? '{}') as {
    demo?: { identitySecret?: string; privacyToken?: string };
  };
  return {
    urls: {
      shop: `http://127.0.0.1:${E2E_PORTS.shop}`,
      worker: `http://localhost:${E2E_PORTS.worker}`,
      directus: `http://127.0.0.1:${E2E_PORTS.directus}`,
    },
    secrets: {
      identitySecret: sites.demo?.identitySecret ?? '',
      adminToken: dev.ADMIN_TOKEN ?? '',
      privacyToken: sites.demo?.privacyToken ?? '',
      directusToken: workerVars.DIRECTUS_TOKEN ?? '',
      shopDirectusToken: shopVars.DIRECTUS_TOKEN ?? '',
      directusAdminEmail: directus.ADMIN_EMAIL ?? '',
      directusAdminPassword: directus.ADMIN_PASSWORD ?? '',
    },
  };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const results = join(import.meta.dirname, '..', 'test-results');
  const stateDir = join(results, 'system');
  if (process.env.ATTUNE_E2E_REUSE === '1') {
    project.provide('system', reuseRunning(stateDir));
    return async () => {};
  }
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(join(results, 'logs'), { recursive: true, force: true });
  const system = await startLocalSystem({
    ports: E2E_PORTS,
    stateDir,
    directusHome: join(stateDir, 'directus'),
    logDir: join(results, 'logs'),
    inspectorPort: 23001,
    // No holdout group here: every test visitor must see personalization (the Worker's own
    // tests cover the holdout's determinism and share). And a decision budget that a busy
    // 2-core CI machine can meet: these tests check what is personalized, not how fast
    // (the benchmark measures that, with the real budget).
    vars: { HOLDOUT_PERCENT: '0', DECISION_BUDGET_MS: '2000' },
  });
  const info: SystemInfo = { urls: system.urls, secrets: system.secrets };
  project.provide('system', info);
  return async () => {
    await system.stop();
  };
}

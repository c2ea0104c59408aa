/**
 * Starts the whole local system for the end-to-end suite on its own ports (Directus 28055
 * with a fresh data folder, the Worker 28787 with fresh state, the shop 23000) and stops
 * it afterwards. Server output lands in test-results/logs/.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startLocalSystem } from '../../../scripts/up.mjs';
import type { SystemInfo } from './system.ts';

export const E2E_PORTS = { shop: 23000, worker: 28787, directus: 28055 };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const results = join(import.meta.dirname, '..', 'test-results');
  const stateDir = join(results, 'system');
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(join(results, 'logs'), { recursive: true, force: true });
  const system = await startLocalSystem({
    ports: E2E_PORTS,
    stateDir,
    directusHome: join(stateDir, 'directus'),
    logDir: join(results, 'logs'),
    inspectorPort: 23001,
  });
  const info: SystemInfo = { urls: system.urls, secrets: system.secrets };
  project.provide('system', info);
  return async () => {
    await system.stop();
  };
}

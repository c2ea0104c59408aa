/**
 * The Worker's scheduled() handler, for the two Cron Triggers in wrangler.toml: every five
 * minutes the edge caches are checked against Directus (a marketer's change whose notice
 * never reached the Worker applies within minutes, instead of when a cached copy expires:
 * a week for the catalog, never for an isolate's consent configuration), and paid orders
 * the Directus order Flows did not deliver (on create, or when marked paid) are caught up
 * (src/orders/catch-up.ts); once a
 * day, retention, then every site's lift report (src/decide/lift-report.ts).
 */
import { reconcileCatalog } from '../catalog/index.ts';
import { reconcileConsentConfig } from '../config/consent-config.ts';
import { reportLift } from '../decide/lift-report.ts';
import { directusFromEnv } from '../directus/client.ts';
import { log } from '../observability/index.ts';
import { catchUpOrders, type OrdersCaughtUp } from '../orders/catch-up.ts';
import { runRetention } from '../retention/index.ts';
import { listSites, ownsUnsitedRows } from '../sites/index.ts';

/** The crons, as wrangler.toml names them (a cron changed there must be changed here too). */
export const CACHE_CHECK_CRON = '*/5 * * * *';
export const RETENTION_CRON = '17 3 * * *';

export async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  if (controller.cron === CACHE_CHECK_CRON) {
    // Side by side, each logging its own failure; the run fails if the catch-up did.
    const [, orders] = await Promise.allSettled([
      checkCaches(env),
      catchUpAllOrders(env, controller.scheduledTime),
    ]);
    if (orders.status === 'rejected') throw orders.reason;
  } else if (controller.cron === RETENTION_CRON) await runDaily(controller, env);
  // Not run on a guess: retention on a five-minute schedule, or the check never, would go unnoticed.
  else log('error', `scheduled: no job for cron ${controller.cron.slice(0, 64)}; see src/schedule`);
}

/** Checks the catalog and every site's consent configuration; one failing does not stop the other. */
export async function checkCaches(env: Env): Promise<void> {
  const siteIds = (await listSites(env)).map((site) => site.id);
  const [catalog, consent] = await Promise.allSettled([
    reconcileCatalog(env, siteIds),
    reconcileConsentConfig(env, siteIds),
  ]);
  const outcome = (result: PromiseSettledResult<unknown>) =>
    result.status === 'rejected' ? `failed: ${String(result.reason).slice(0, 200)}` : 'checked';
  log(catalog.status === 'rejected' || consent.status === 'rejected' ? 'warn' : 'info', 'cache_check', {
    catalog: catalog.status === 'fulfilled' && catalog.value ? 'republished' : outcome(catalog),
    consentSitesChanged: consent.status === 'fulfilled' ? consent.value.length : outcome(consent),
  });
}

/**
 * Catches up every site's paid orders the order Flows did not deliver; one site failing does
 * not stop the others, and the run fails at the end if any did. Logged as counts: a
 * `delivered` above zero is an order the Flow lost.
 */
export async function catchUpAllOrders(env: Env, now: number): Promise<void> {
  const directus = directusFromEnv(env);
  const failures: unknown[] = [];
  for (const site of await listSites(env)) {
    try {
      const done: OrdersCaughtUp = await catchUpOrders(env, site, {
        directus,
        now,
        unsited: await ownsUnsitedRows(env, site.id),
      });
      log(done.delivered > 0 ? 'warn' : 'info', 'orders.caught_up', { siteId: site.id, ...done });
    } catch (e) {
      failures.push(e);
      log('error', 'orders.catch_up_failed', { siteId: site.id, error: String(e).slice(0, 200) });
    }
  }
  if (failures.length > 0)
    throw new AggregateError(failures, `order catch-up: ${failures.length} site(s) failed`);
}

/**
 * Retention, then every site's lift report over the window ending now: each runs whatever
 * the others did, and the run fails at the end if any failed (so the cron's status shows it).
 */
export async function runDaily(controller: ScheduledController, env: Env): Promise<void> {
  const failures: unknown[] = [];
  try {
    await runRetention(controller, env);
  } catch (e) {
    failures.push(e);
    log('error', 'retention.failed', { error: String(e).slice(0, 200) });
  }
  for (const site of await listSites(env)) {
    try {
      await reportLift(env, site.id, { now: controller.scheduledTime });
    } catch (e) {
      failures.push(e);
      log('error', 'lift.failed', { siteId: site.id, error: String(e).slice(0, 200) });
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, `daily jobs: ${failures.length} failed`);
}

/**
 * Retention of the event log: the Cron Trigger deletes Directus events received, and dead
 * letters set aside (erasures not done excepted), more than EVENT_RETENTION_DAYS ago. Profiles have their own retention
 * (ProfileDO alarms).
 */
import { type DirectusFilter, directusFromEnv } from '../directus/client.ts';
import { PENDING_ERASURE } from '../sync/mapping.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_RETENTION_DAYS = 90;

/** The retention period in days (EVENT_RETENTION_DAYS; 90 when unset or nonsense). */
export function eventRetentionDays(env: Pick<Env, 'EVENT_RETENTION_DAYS'>): number {
  const days = Number(env.EVENT_RETENTION_DAYS);
  return Number.isFinite(days) && days > 0 ? days : DEFAULT_RETENTION_DAYS;
}

/**
 * Deletes the rows of `collection` whose `timeField` is before `now - retention` (and that
 * match `also`); returns how many went.
 */
function deleteExpired(
  env: Env,
  collection: string,
  timeField: string,
  now: number,
  also: DirectusFilter[] = [],
): Promise<number> {
  const cutoff = new Date(now - eventRetentionDays(env) * DAY_MS).toISOString();
  return directusFromEnv(env).deleteWhere(collection, { _and: [{ [timeField]: { _lt: cutoff } }, ...also] });
}

/** Deletes events received before `now - retention`; returns how many went. */
export function deleteExpiredEvents(env: Env, now: number = Date.now()): Promise<number> {
  return deleteExpired(env, 'events', 'received_at', now);
}

/**
 * Deletes dead letters set aside before `now - retention` (they hold events too), except
 * erasures not done (see PENDING_ERASURE); returns how many went.
 */
export function deleteExpiredDeadLetters(env: Env, now: number = Date.now()): Promise<number> {
  return deleteExpired(env, 'dead_letters', 'failed_at', now, [
    { reason: { _nstarts_with: PENDING_ERASURE } },
    // How such letters began before PENDING_ERASURE (the sync's consumer wrote it so).
    { reason: { _nstarts_with: 'erasure rejected' } },
  ]);
}

/** The Worker's scheduled() handler (the daily cron in wrangler.toml). */
export async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  const deleted = await deleteExpiredEvents(env, controller.scheduledTime);
  const letters = await deleteExpiredDeadLetters(env, controller.scheduledTime);
  console.log(
    JSON.stringify({ level: 'info', msg: 'retention.events_deleted', deleted, deadLetters: letters }),
  );
}

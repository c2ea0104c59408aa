/**
 * Retention of the event log: the Cron Trigger deletes Directus events received, and dead
 * letters set aside (erasures excepted), more than EVENT_RETENTION_DAYS ago. Profiles have
 * their own retention (ProfileDO alarms).
 */
import { directusFromEnv } from '../directus/client.ts';
import { PENDING_ERASURE } from '../sync/mapping.ts';
import { configuredDays } from './days.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_RETENTION_DAYS = 90;

/** The retention period in days (EVENT_RETENTION_DAYS; 90 when unset or nonsense, which is logged). */
export function eventRetentionDays(env: Pick<Env, 'EVENT_RETENTION_DAYS'>): number {
  return configuredDays(env.EVENT_RETENTION_DAYS, 'EVENT_RETENTION_DAYS', DEFAULT_RETENTION_DAYS);
}

/** The cutoff of the retention period, as Directus compares times. */
function cutoffOf(env: Env, now: number): string {
  return new Date(now - eventRetentionDays(env) * DAY_MS).toISOString();
}

/** Deletes events received before `now - retention`; returns how many went. */
export function deleteExpiredEvents(env: Env, now: number = Date.now()): Promise<number> {
  return directusFromEnv(env).deleteWhere('events', { received_at: { _lt: cutoffOf(env, now) } });
}

/** Letters read per page when the cron looks for the ones to delete. */
const LETTER_PAGE = 500;

/**
 * Deletes dead letters set aside before `now - retention` (they hold events too), except
 * those holding an erasure: deleted, the only record that the person's rows still wait to
 * be erased would go, and the rows would stay. Told by the message they hold (letters kept
 * before PENDING_ERASURE began their reason are erasures too), the reason only narrowing
 * what is read. Returns how many went.
 */
export async function deleteExpiredDeadLetters(env: Env, now: number = Date.now()): Promise<number> {
  const directus = directusFromEnv(env);
  const filter = {
    _and: [{ failed_at: { _lt: cutoffOf(env, now) } }, { reason: { _nstarts_with: PENDING_ERASURE } }],
  };
  let deleted = 0;
  // Letters kept stay in the filter's answer: the next page starts past them.
  for (let kept = 0; ; ) {
    const page = await directus.readItems<{ id: string; message: unknown }>('dead_letters', {
      filter,
      fields: ['id', 'message'],
      sort: ['id'],
      limit: LETTER_PAGE,
      offset: kept,
    });
    const doomed = page.filter((letter) => !holdsErasure(letter.message)).map((letter) => letter.id);
    await directus.deleteItems('dead_letters', doomed);
    deleted += doomed.length;
    kept += page.length - doomed.length;
    if (page.length < LETTER_PAGE) return deleted;
  }
}

function holdsErasure(message: unknown): boolean {
  return (
    message !== null && typeof message === 'object' && (message as { kind?: unknown }).kind === 'erasure'
  );
}

/** The daily retention job (see src/schedule). */
export async function runRetention(controller: ScheduledController, env: Env): Promise<void> {
  const deleted = await deleteExpiredEvents(env, controller.scheduledTime);
  const letters = await deleteExpiredDeadLetters(env, controller.scheduledTime);
  console.log(
    JSON.stringify({ level: 'info', msg: 'retention.events_deleted', deleted, deadLetters: letters }),
  );
}

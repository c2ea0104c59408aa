/**
 * A number of days read from configuration (a var, or a site's settings): retention periods
 * and the interests' half-life. Unset, the default applies; set to something unusable, the
 * default applies too, but an operator is told so, once per isolate: a retention silently
 * three times longer than configured is data kept that should be gone.
 */
import { logUnusableSetting } from '../observability/index.ts';

/** `raw` as a positive number of days, else `fallbackDays` (logged when `raw` was set). */
export function configuredDays(raw: unknown, name: string, fallbackDays: number): number {
  if (raw === undefined || raw === null || raw === '') return fallbackDays;
  const days = typeof raw === 'number' || typeof raw === 'string' ? Number(raw) : Number.NaN;
  if (Number.isFinite(days) && days > 0) return days;
  logUnusableSetting(name, raw, 'a positive number of days', `${fallbackDays} days apply`);
  return fallbackDays;
}

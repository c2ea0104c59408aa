/**
 * Retention periods from configuration: a value that cannot be used is not taken silently.
 * EVENT_RETENTION_DAYS = "30 days" kept the event log for the default 90 days, three times
 * what the operator set, with nothing in any log to say so.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configuredDays } from './days.ts';
import { eventRetentionDays } from './index.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

function errorsLogged(): string[] {
  const lines: string[] = [];
  vi.spyOn(console, 'error').mockImplementation((line: unknown) => {
    lines.push(String(line));
  });
  return lines;
}

describe('EVENT_RETENTION_DAYS', () => {
  it('takes a positive number of days', () => {
    const lines = errorsLogged();
    expect(eventRetentionDays({ EVENT_RETENTION_DAYS: '30' } as unknown as Env)).toBe(30);
    expect(lines).toEqual([]);
  });

  it('says, once, that a value it cannot use was replaced by the default, and which', () => {
    const lines = errorsLogged();
    const env = { EVENT_RETENTION_DAYS: '30 days' } as unknown as Env;
    expect(eventRetentionDays(env)).toBe(90);
    expect(eventRetentionDays(env)).toBe(90);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      level: 'error',
      msg: 'EVENT_RETENTION_DAYS "30 days" is not a positive number of days; 90 days apply',
    });
  });
});

describe('a site setting of days (ProfileDO: profileRetentionDays, interestHalfLifeDays)', () => {
  it('names the site and setting whose value it could not use', () => {
    const lines = errorsLogged();
    expect(configuredDays(0, 'site demo settings.profileRetentionDays', 395)).toBe(395);
    expect(configuredDays('14', 'INTEREST_HALF_LIFE_DAYS', 14)).toBe(14);
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      'site demo settings.profileRetentionDays 0 is not a positive number of days; 395 days apply',
    ]);
  });
});

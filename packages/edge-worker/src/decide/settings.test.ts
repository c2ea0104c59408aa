/**
 * The decide settings from wrangler vars: HOLDOUT_PERCENT and DECISION_BUDGET_MS. A value an
 * operator set but the Worker cannot use is not replaced silently: "5%" held out the default
 * 10 %, and an empty budget read as 0 ms, every page served its defaults, with nothing logged.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { holdoutPercent } from './holdout.ts';
import { decisionBudgetMs } from './routes.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

function errorsLogged(): string[] {
  const lines: string[] = [];
  vi.spyOn(console, 'error').mockImplementation((line: unknown) => {
    lines.push((JSON.parse(String(line)) as { msg: string }).msg);
  });
  return lines;
}

const budget = (raw: string | undefined) => decisionBudgetMs({ DECISION_BUDGET_MS: raw } as unknown as Env);

describe('HOLDOUT_PERCENT', () => {
  it('takes 0 to 100, and 10 when unset, without a word', () => {
    const lines = errorsLogged();
    expect([
      holdoutPercent('0'),
      holdoutPercent('2.5'),
      holdoutPercent('100'),
      holdoutPercent(undefined),
    ]).toEqual([0, 2.5, 100, 10]);
    expect(lines).toEqual([]);
  });

  it('says, once per value, that one it cannot use was replaced by 10', () => {
    const lines = errorsLogged();
    expect(holdoutPercent('5%')).toBe(10);
    expect(holdoutPercent('5%')).toBe(10);
    expect(holdoutPercent('150')).toBe(10);
    expect(lines).toEqual([
      'HOLDOUT_PERCENT "5%" is not a number 0 to 100; 10 applies',
      'HOLDOUT_PERCENT "150" is not a number 0 to 100; 10 applies',
    ]);
  });
});

describe('DECISION_BUDGET_MS', () => {
  it('takes 0 to 1000 ms, and 50 when unset, without a word', () => {
    const lines = errorsLogged();
    expect([budget('0'), budget('80'), budget('1000'), budget(undefined)]).toEqual([0, 80, 1000, 50]);
    expect(lines).toEqual([]);
  });

  it('says, once per value, that one it cannot use was replaced: an empty one is not a 0 ms budget', () => {
    const lines = errorsLogged();
    expect(budget('')).toBe(50);
    expect(budget('')).toBe(50);
    expect(budget('50ms')).toBe(50);
    expect(budget('5000')).toBe(1000);
    expect(lines).toEqual([
      'DECISION_BUDGET_MS "" is not 0 to 1000 ms; 50 ms apply',
      'DECISION_BUDGET_MS "50ms" is not 0 to 1000 ms; 50 ms apply',
      'DECISION_BUDGET_MS "5000" is not 0 to 1000 ms; 1000 ms apply',
    ]);
  });
});

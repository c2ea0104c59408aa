/**
 * When the consent banner opens: after "delete my data" (its ask-again flag) and when the
 * visitor has not chosen under the current policy; never merely because the shop's choice
 * cookie is gone (Safari expires script-written cookies after 7 days).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ASK_AGAIN_KEY,
  askConsentAgain,
  askingConsentAgain,
  rememberChoice,
  shouldAskForConsent,
} from './consent-client.ts';

/** localStorage and document.cookie in memory (the unit tests run without a browser). */
function browserStorage() {
  const items = new Map<string, string>();
  vi.stubGlobal('localStorage', {
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => void items.set(k, v),
    removeItem: (k: string) => void items.delete(k),
  });
  vi.stubGlobal('document', { cookie: '' });
  return items;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the consent banner', () => {
  it('does not ask again a visitor the SDK holds a choice for, when the choice cookie is gone (Safari, after 7 days)', () => {
    expect(
      shouldAskForConsent({ decided: true, chosen: undefined, askAgain: false, policyVersion: '2' }),
    ).toBe(false);
  });

  it('asks after "delete my data", although the SDK holds the erasure’s withdrawal', () => {
    expect(shouldAskForConsent({ decided: true, chosen: '2', askAgain: true, policyVersion: '2' })).toBe(
      true,
    );
  });

  it('asks a visitor who has not chosen under the current policy, and not one whose refusal the cookie remembers', () => {
    expect(
      shouldAskForConsent({ decided: false, chosen: undefined, askAgain: false, policyVersion: '2' }),
    ).toBe(true);
    expect(shouldAskForConsent({ decided: false, chosen: '1', askAgain: false, policyVersion: '2' })).toBe(
      true,
    );
    expect(shouldAskForConsent({ decided: false, chosen: '2', askAgain: false, policyVersion: '2' })).toBe(
      false,
    );
  });

  it('stops asking once the next visitor chose; the flag holds no identifier', () => {
    const items = browserStorage();
    askConsentAgain();
    expect(askingConsentAgain()).toBe(true);
    expect(items.get(ASK_AGAIN_KEY)).toBe('1');
    rememberChoice('2');
    expect(askingConsentAgain()).toBe(false);
    expect(
      shouldAskForConsent({
        decided: true,
        chosen: undefined,
        askAgain: askingConsentAgain(),
        policyVersion: '2',
      }),
    ).toBe(false);
  });

  it('never throws when storage is blocked', () => {
    expect(() => askConsentAgain()).not.toThrow();
    expect(askingConsentAgain()).toBe(false);
  });
});

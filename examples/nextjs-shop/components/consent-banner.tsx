'use client';
/**
 * The consent banner: offers exactly the categories the site's configuration enables
 * (a category a marketer disables in Directus disappears here), asks again when the
 * policy version changes or after "delete my data" (lib/consent-client.ts), and
 * hands the choice to the SDK, which gates every event on it. It closes once the visitor has
 * chosen anywhere: here, on the preferences page beneath it, or in another tab.
 */
import type { ConsentSnapshot } from '@attune/browser-sdk';
import type { ConsentConfig } from '@attune/shared-schema/constants';
import { useEffect, useState } from 'react';
import {
  askingConsentAgain,
  choosable,
  chosenPolicyVersion,
  rememberChoice,
  shouldAskForConsent,
} from '@/lib/consent-client';
import { useAttune } from './attune';

export function ConsentBanner() {
  const attune = useAttune();
  const [config, setConfig] = useState<ConsentConfig | undefined>(undefined);
  const [open, setOpen] = useState(false);
  const [details, setDetails] = useState(false);
  const [picked, setPicked] = useState<Record<string, boolean>>({});

  useEffect(() => {
    if (attune === undefined) return;
    let live = true;
    let policyVersion: string | undefined;
    // Whether to ask, from a consent state the SDK checked against the policy in force:
    // asked again when the policy changed, and after "delete my data" (its flag: the SDK holds
    // the erasure's withdrawal, and the next visitor chooses for themselves).
    const asking = (snapshot: ConsentSnapshot, policy: string) =>
      shouldAskForConsent({
        decided: snapshot.decided && snapshot.policyVersion === policy,
        chosen: chosenPolicyVersion(),
        askAgain: askingConsentAgain(),
        policyVersion: policy,
      });
    // A choice made elsewhere (the preferences form, another tab) closes the banner; a change
    // never opens it (the page's own check above does that).
    const unsubscribe = attune.consent.onChange((snapshot) => {
      if (live && policyVersion !== undefined && !asking(snapshot, policyVersion)) setOpen(false);
    });
    // The SDK's read, and no other: it reads /v1/config once per page for every caller (the
    // preferences form too). Once it answers, the SDK has checked a stored choice against the
    // policy in force (so `decided` below is the checked one, not the stored one), and a choice
    // made here is recorded at once under that policy's version.
    void attune.consent.config().then((c) => {
      if (!live) return;
      policyVersion = c.policyVersion;
      setConfig(c);
      setPicked(Object.fromEntries(choosable(c).map((cat) => [cat.key, cat.default])));
      setOpen(asking(attune.consent.get(), c.policyVersion));
    });
    return () => {
      live = false;
      unsubscribe();
    };
  }, [attune]);

  if (!open || config === undefined) return null;
  const offered = choosable(config);

  const decide = (choice: Record<string, boolean>) => {
    attune?.consent.set(choice, 'banner');
    rememberChoice(config.policyVersion);
    setOpen(false);
  };
  const all = (value: boolean) => Object.fromEntries(offered.map((c) => [c.key, value]));

  return (
    <aside className="consent-banner" aria-label="Cookie and privacy choices" data-testid="consent-banner">
      <div>
        <strong>Your privacy, your choice.</strong> We use these only with your permission:
        <ul className="consent-list">
          {offered.map((c) => (
            <li key={c.key} data-consent-category={c.key}>
              {details ? (
                <label>
                  <input
                    type="checkbox"
                    name={c.key}
                    checked={picked[c.key] === true}
                    onChange={(e) => setPicked({ ...picked, [c.key]: e.target.checked })}
                  />{' '}
                  <b>{c.label}</b> — {c.description}
                </label>
              ) : (
                <span>
                  <b>{c.label}</b> — {c.description}
                </span>
              )}
            </li>
          ))}
        </ul>
      </div>
      <div className="consent-actions">
        {details ? (
          <button type="button" onClick={() => decide(picked)} data-testid="consent-save">
            Save my choice
          </button>
        ) : (
          <button type="button" onClick={() => setDetails(true)} data-testid="consent-choose">
            Choose
          </button>
        )}
        <button type="button" onClick={() => decide(all(false))} data-testid="consent-reject">
          Reject all
        </button>
        <button
          type="button"
          className="primary"
          onClick={() => decide(all(true))}
          data-testid="consent-accept"
        >
          Accept all
        </button>
      </div>
    </aside>
  );
}

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
import { useEffect, useRef, useState } from 'react';
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
  const banner = useRef<HTMLElement>(null);

  // "Choose" shows the checkboxes in place of the list: the first one takes the focus, or a
  // keyboard or screen-reader user is left on a button that changed its label under them.
  useEffect(() => {
    if (details) banner.current?.querySelector('input')?.focus();
  }, [details]);

  // Fixed over the page's bottom, the open banner would hide the footer's "Privacy
  // preferences" and "Delete my data" links, and the focus on them: the page makes room.
  useEffect(() => {
    const element = banner.current;
    if (!open || element === null) return;
    const room = () => {
      document.body.style.paddingBottom = `${element.offsetHeight + 32}px`;
    };
    room();
    const observer = new ResizeObserver(room);
    observer.observe(element);
    return () => {
      observer.disconnect();
      document.body.style.paddingBottom = '';
    };
  }, [open]);

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
      // Nothing ticked: consent to a purpose is the visitor's act, whatever a category's
      // default says (the Worker ignores a purpose's default too).
      setPicked(Object.fromEntries(choosable(c).map((cat) => [cat.key, false])));
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
    <aside
      ref={banner}
      className="consent-banner"
      aria-labelledby="consent-title"
      aria-describedby="consent-what"
      data-testid="consent-banner"
    >
      <div>
        <h2 id="consent-title" className="consent-title">
          Your privacy, your choice.
        </h2>{' '}
        <span id="consent-what">We use these only with your permission:</span>
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
                  <Described label={c.label} description={c.description} />
                </label>
              ) : (
                <Described label={c.label} description={c.description} />
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

/** A category's label, and its description when it has one (the built-ins have none). */
function Described({ label, description }: { label: string; description: string }) {
  return (
    <span>
      <b>{label}</b>
      {description === '' ? null : ` — ${description}`}
    </span>
  );
}

'use client';
/**
 * The privacy preferences page's form: the same categories as the banner, with the
 * visitor's current state from the SDK; saving updates the SDK (which sends
 * `consent.updated` when a purpose allows it, and always tells the Worker).
 */
import type { ConsentConfig } from '@attune/shared-schema/constants';
import { useEffect, useState } from 'react';
import { choosable, rememberChoice } from '@/lib/consent-client';
import { useAttune } from './attune';

export function ConsentPreferences() {
  const attune = useAttune();
  const [config, setConfig] = useState<ConsentConfig | undefined>(undefined);
  const [picked, setPicked] = useState<Record<string, boolean>>({});
  const [saved, setSaved] = useState(false);

  useEffect(() => {
    if (attune === undefined) return;
    let live = true;
    // The SDK's read (the one the banner awaits too: one /v1/config request per page), so the
    // current state below is the checked one and a choice saved here is recorded at once under
    // the policy in force.
    void attune.consent.config().then((c) => {
      if (!live) return;
      const current = attune.consent.get().categories;
      setConfig(c);
      setPicked(Object.fromEntries(choosable(c).map((cat) => [cat.key, current[cat.key] === true])));
    });
    return () => {
      live = false;
    };
  }, [attune]);

  if (config === undefined) return <p>Loading your choices…</p>;

  return (
    <form
      className="preferences"
      onSubmit={(e) => {
        e.preventDefault();
        // Remembered first: the SDK tells the banner (its onChange) within set(), and the
        // banner, asked to close, reads whether the "ask again" flag is still there.
        rememberChoice(config.policyVersion);
        attune?.consent.set(picked, 'preferences');
        setSaved(true);
      }}
    >
      <p className="muted">Policy version {config.policyVersion}</p>
      {config.categories
        .filter((c) => c.enabled)
        .map((c) => (
          <label key={c.key} className="preference" data-consent-category={c.key}>
            <input
              type="checkbox"
              name={c.key}
              disabled={c.required}
              checked={c.required || picked[c.key] === true}
              onChange={(e) => {
                setSaved(false);
                setPicked({ ...picked, [c.key]: e.target.checked });
              }}
            />
            <span>
              <b>{c.label}</b>
              {c.required ? ' (always on)' : ''}
              <br />
              <span className="muted">{c.description}</span>
            </span>
          </label>
        ))}
      <button type="submit" className="primary">
        Save preferences
      </button>
      {saved ? <p role="status">Saved.</p> : null}
    </form>
  );
}

'use client';
/**
 * "Delete my data": asks the shop's server to erase this visitor everywhere Attune keeps
 * them (the Worker deletes the profile and sends the erasure downstream to Directus),
 * then resets the SDK so this browser starts over as a stranger.
 */
import { useState } from 'react';
import { forgetChoice } from '@/lib/consent-client';
import { sendQueuedEvents } from '@/lib/sign-out';
import { useAttune } from './attune';

export function DeleteMyData() {
  const attune = useAttune();
  const [state, setState] = useState<'idle' | 'busy' | 'done' | 'failed'>('idle');
  const [erased, setErased] = useState<string[]>([]);

  return (
    <div>
      <button
        type="button"
        className="danger"
        data-testid="delete-my-data"
        disabled={state === 'busy'}
        onClick={() => {
          setState('busy');
          void (async () => {
            // Bounded, and never failing: a send that fails or hangs must not keep anyone from erasure.
            await sendQueuedEvents(attune);
            const res = await fetch('/api/erase', { method: 'POST' });
            const body = (await res.json()) as { erased?: string[] };
            if (!res.ok) {
              setState('failed');
              return;
            }
            attune?.reset();
            forgetChoice();
            setErased(body.erased ?? []);
            setState('done');
          })().catch(() => setState('failed'));
        }}
      >
        Delete my data
      </button>
      {state === 'done' ? (
        <p role="status" data-testid="erased">
          Done: {erased.length} profile(s) erased. You are signed out and start over as a new visitor.
        </p>
      ) : null}
      {state === 'failed' ? (
        <p role="alert">Could not delete your data right now; please try again.</p>
      ) : null}
    </div>
  );
}

'use client';
/**
 * "Delete my data": asks the shop's server to erase this visitor everywhere Attune keeps
 * them (the Worker deletes the profile and sends the erasure downstream to Directus),
 * naming this browser's anonymous id; then, only once that succeeded, resets the SDK so
 * this browser starts over as a stranger (lib/delete-my-data.ts).
 */
import { useState } from 'react';
import { forgetChoice } from '@/lib/consent-client';
import { deleteMyData, type ErasureResult } from '@/lib/delete-my-data';
import { useAttune } from './attune';

export function DeleteMyData() {
  const attune = useAttune();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ErasureResult | undefined>(undefined);

  return (
    <div>
      <button
        type="button"
        className="danger"
        data-testid="delete-my-data"
        // Until the SDK has started there is no anonymous id to name.
        disabled={busy || attune === undefined}
        onClick={() => {
          setBusy(true);
          setResult(undefined);
          void deleteMyData(attune)
            .then((r) => {
              if (r.kind === 'erased') forgetChoice();
              setResult(r);
            })
            .finally(() => setBusy(false));
        }}
      >
        Delete my data
      </button>
      {result?.kind === 'erased' ? (
        <p role="status" data-testid="erased">
          Done: {result.erased.length} profile(s) erased. You are signed out and start over as a new visitor.
          {result.references.length > 0 ? (
            <>
              {' '}
              Your reference: <span data-testid="erasure-reference">{result.references.join(', ')}</span> (the
              shop can show the proof of this erasure by it).
            </>
          ) : null}
        </p>
      ) : null}
      {result?.kind === 'nothing' ? (
        <p role="status" data-testid="nothing-erased">
          We found nothing to erase for this browser. Nothing was changed.
        </p>
      ) : null}
      {result?.kind === 'failed' ? (
        <p role="alert" data-testid="erase-failed">
          {result.message}
        </p>
      ) : null}
    </div>
  );
}

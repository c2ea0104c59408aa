'use client';
/**
 * The one place the shop creates Attune's browser SDK (by npm import) and shares it with
 * client components. The endpoint is first-party (`/attune` on the page's own origin):
 * through the Worker in edge-proxy mode the Worker serves it, straight from the shop the
 * shop's `/attune/*` route forwards it, so ad-blockers and third-party cookie rules never
 * come into it.
 */
import { type Attune, createAttune } from '@attune/browser-sdk';
import { createContext, type ReactNode, useContext, useEffect, useState } from 'react';

export type { Attune };

const AttuneContext = createContext<Attune | undefined>(undefined);

let instance: Attune | undefined;

function getAttune(writeKey: string): Attune {
  if (instance === undefined) {
    // Through the Worker, its first-party collect keeps the `attune_aid` / `attune_consent`
    // cookies the edge personalizes pages by in step with the SDK: nothing to do here.
    const attune = createAttune({ writeKey, endpoint: `${window.location.origin}/attune` });
    instance = attune;
    // Exposed for the console and the end-to-end tests (e.g. `await attune.flush()`).
    (window as unknown as { attune: Attune }).attune = attune;
  }
  return instance;
}

export function AttuneProvider({ writeKey, children }: { writeKey: string; children: ReactNode }) {
  const [attune, setAttune] = useState<Attune | undefined>(undefined);
  useEffect(() => {
    setAttune(getAttune(writeKey));
  }, [writeKey]);
  return <AttuneContext.Provider value={attune}>{children}</AttuneContext.Provider>;
}

/** The SDK once it has started in the browser; undefined during server rendering. */
export function useAttune(): Attune | undefined {
  return useContext(AttuneContext);
}

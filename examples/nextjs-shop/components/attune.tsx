'use client';
/**
 * The one place the shop creates Attune's browser SDK (by npm import) and shares it with
 * client components. The endpoint is first-party (`/attune` on the page's own origin):
 * through the Worker in edge-proxy mode the Worker serves it, straight from the shop the
 * shop's `/attune/*` route forwards it, so ad-blockers and third-party cookie rules never
 * come into it. Before components get it, its identity is brought in step with the shop's
 * session (lib/shop-identity.ts).
 */
import { type Attune, createAttune } from '@attune/browser-sdk';
import { createContext, type ReactNode, useContext, useEffect, useState } from 'react';
import { type SessionIdentity, settleIdentity } from '@/lib/shop-identity';

export type { Attune };

const AttuneContext = createContext<Attune | undefined>(undefined);

let instance: Attune | undefined;
/** The page's identity check (once per page load): true when the SDK may be used and the page was tracked. */
let settled: Promise<boolean> | undefined;

function getAttune(writeKey: string): Attune {
  if (instance === undefined) {
    // Through the Worker, its first-party collect keeps the `attune_aid` / `attune_consent`
    // cookies the edge personalizes pages by in step with the SDK: nothing to do here.
    // The page view waits for the identity check (settle below), so it never goes out as
    // a person whose session has ended.
    const attune = createAttune({
      writeKey,
      endpoint: `${window.location.origin}/attune`,
      autoPageView: false,
    });
    instance = attune;
    // Exposed for the console and the end-to-end tests (e.g. `await attune.flush()`).
    (window as unknown as { attune: Attune }).attune = attune;
  }
  return instance;
}

/**
 * Brings the SDK's identity in step with the shop's session (lib/shop-identity.ts), then
 * tracks the page; when the previous person was signed out here, loads the page again
 * instead, as the edge rendered this one for them.
 */
function settle(attune: Attune, session: SessionIdentity | undefined): Promise<boolean> {
  settled ??= settleIdentity(attune, session).then((outcome) => {
    if (outcome === 'signed-out') {
      window.location.reload();
      return false;
    }
    attune.page();
    return true;
  });
  return settled;
}

export function AttuneProvider({
  writeKey,
  session,
  children,
}: {
  writeKey: string;
  /** The signed-in person, from the shop's session (server-rendered on every page). */
  session: SessionIdentity | undefined;
  children: ReactNode;
}) {
  const [attune, setAttune] = useState<Attune | undefined>(undefined);
  const userId = session?.userId;
  const signature = session?.signature;
  useEffect(() => {
    const sdk = getAttune(writeKey);
    let live = true;
    // Components get the SDK only once it no longer names someone who left.
    void settle(
      sdk,
      userId !== undefined && signature !== undefined ? { userId, signature } : undefined,
    ).then((ready) => {
      if (ready && live) setAttune(sdk);
    });
    return () => {
      live = false;
    };
  }, [writeKey, userId, signature]);
  return <AttuneContext.Provider value={attune}>{children}</AttuneContext.Provider>;
}

/** The SDK once it has started in the browser; undefined during server rendering. */
export function useAttune(): Attune | undefined {
  return useContext(AttuneContext);
}

'use client';
/**
 * Demo sign-in: the visitor picks a demo customer; the shop's server sets its session and
 * returns the userId signed with the site's identity secret, which the SDK passes to
 * `identify` so the Worker merges this browser's anonymous history into the person.
 */
import { useState } from 'react';
import type { DemoUser } from '@/lib/demo-users';
import { useAttune } from './attune';

export function SignIn({
  users,
  signedInAs,
}: {
  users: readonly DemoUser[];
  signedInAs: string | undefined;
}) {
  const attune = useAttune();
  const [error, setError] = useState<string | undefined>(undefined);

  if (signedInAs !== undefined) {
    return (
      <div>
        <p data-testid="signed-in-as">Signed in as {signedInAs}.</p>
        <button
          type="button"
          onClick={() => {
            void (async () => {
              // Events still queued carry the id merged into this person, and the Worker's
              // collect answer writes `attune_aid` from them: they go first, then the SDK
              // forgets the person, then the shop expires the cookie.
              await attune?.flush();
              attune?.reset();
              await fetch('/api/signout', { method: 'POST' });
              window.location.assign('/');
            })().catch(() => undefined);
          }}
        >
          Sign out
        </button>
      </div>
    );
  }

  const signIn = async (userId: string) => {
    setError(undefined);
    const res = await fetch('/api/signin', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId }),
    });
    const body = (await res.json()) as {
      userId?: string;
      signature?: string;
      traits?: Record<string, string>;
      error?: string;
    };
    if (!res.ok || body.userId === undefined || body.signature === undefined) {
      setError(body.error ?? 'Sign-in failed');
      return;
    }
    if (attune) {
      attune.identify(body.userId, body.traits ?? {}, { signature: body.signature });
      attune.track('user.signed_in', { method: 'demo' });
      await attune.flush();
    }
    window.location.assign('/');
  };

  return (
    <div className="signin">
      <p>Pick a demo customer (no password needed in the demo):</p>
      {users.map((u) => (
        <button
          type="button"
          key={u.userId}
          data-testid={`signin-${u.userId}`}
          onClick={() => void signIn(u.userId)}
        >
          {u.name} <span className="muted">{u.email}</span>
        </button>
      ))}
      {error ? <p role="alert">{error}</p> : null}
    </div>
  );
}

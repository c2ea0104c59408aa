'use client';
/**
 * Demo sign-in: the visitor picks a demo customer; the shop's server sets its session and
 * returns the userId signed with the site's identity secret, which the SDK passes to
 * `identify` so the Worker merges this browser's anonymous history into the person.
 * What the SDK is told is lib/sign-in.ts; signing out is lib/sign-out.ts.
 */
import { useState } from 'react';
import type { DemoUser } from '@/lib/demo-users';
import { identifySignedIn, requestSignIn } from '@/lib/sign-in';
import { signOut } from '@/lib/sign-out';
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
  const [signingOut, setSigningOut] = useState(false);

  if (signedInAs !== undefined) {
    return (
      <div>
        <p data-testid="signed-in-as">Signed in as {signedInAs}.</p>
        <button
          type="button"
          disabled={signingOut}
          onClick={() => {
            setError(undefined);
            setSigningOut(true);
            void signOut(attune).then((done) => {
              if (done) {
                window.location.assign('/');
                return;
              }
              setSigningOut(false);
              setError('Could not sign you out right now: check your connection and try again.');
            });
          }}
        >
          Sign out
        </button>
        {error ? <p role="alert">{error}</p> : null}
      </div>
    );
  }

  const signIn = async (userId: string) => {
    setError(undefined);
    // Never rejects: a network error or an answer that is not JSON is shown, not swallowed.
    const answer = await requestSignIn(userId);
    if (!answer.ok) {
      setError(answer.error);
      return;
    }
    // The session is set: a send that hangs must not keep the person here (bounded, lib/sign-in.ts).
    await identifySignedIn(attune, answer.person);
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

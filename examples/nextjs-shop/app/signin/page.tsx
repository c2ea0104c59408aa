/** Sign-in with the demo customers. */
import { cookies } from 'next/headers';
import { SignIn } from '@/components/sign-in';
import { DEMO_USERS, findDemoUser } from '@/lib/demo-users';
import { shopEnv } from '@/lib/env';
import { readSession, SESSION_COOKIE } from '@/lib/identity';

export const dynamic = 'force-dynamic';

export default async function SignInPage() {
  const jar = await cookies();
  const userId = readSession(shopEnv().identitySecret, jar.get(SESSION_COOKIE)?.value);
  const user = userId === undefined ? undefined : findDemoUser(userId);
  return (
    <>
      <h1>Sign in</h1>
      <SignIn users={DEMO_USERS} signedInAs={user?.name} />
    </>
  );
}

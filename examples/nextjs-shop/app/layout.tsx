/**
 * The shop's frame: header with categories, search and the visitor's session, the
 * Attune SDK provider (told the signed-in person on every page), and the consent banner.
 */
import type { Metadata } from 'next';
import { cookies } from 'next/headers';
import type { ReactNode } from 'react';
import { AttuneProvider } from '@/components/attune';
import { ConsentBanner } from '@/components/consent-banner';
import { listCategories } from '@/lib/catalog';
import { findDemoUser } from '@/lib/demo-users';
import { shopEnv } from '@/lib/env';
import { identitySignature, readSession, SESSION_COOKIE } from '@/lib/identity';
import './globals.css';

export const metadata: Metadata = {
  title: 'Attune Outfitters — a demo shop personalized at the edge',
  description: 'A Next.js shop that uses Attune for consent-first, real-time personalization.',
};

export const dynamic = 'force-dynamic';

export default async function RootLayout({ children }: { children: ReactNode }) {
  const env = shopEnv();
  const jar = await cookies();
  const userId = readSession(env.identitySecret, jar.get(SESSION_COOKIE)?.value);
  const user = userId === undefined ? undefined : findDemoUser(userId);
  // Every page tells the SDK who is signed in (signed, as the Worker requires), so a browser
  // that ended a session without Sign-out, or signed in before choosing consent, is set right.
  const session =
    user === undefined
      ? undefined
      : { userId: user.userId, signature: identitySignature(env.identitySecret, user.userId) };
  const categories = await listCategories().catch(() => []);
  return (
    <html lang="en">
      <body>
        <AttuneProvider writeKey={env.writeKey} session={session}>
          {/* First in the page (shown fixed at its bottom): the first thing the keyboard reaches. */}
          <ConsentBanner />
          <header className="site-header">
            <a className="logo" href="/">
              Attune Outfitters
            </a>
            <nav aria-label="Categories">
              {categories.map((c) => (
                <a key={c} href={`/category/${encodeURIComponent(c)}`}>
                  {c}
                </a>
              ))}
            </nav>
            <form action="/search" className="search">
              <input type="search" name="q" placeholder="Search" aria-label="Search products" />
            </form>
            <nav aria-label="Account" className="account">
              <a href="/cart">Cart</a>
              <a href="/signin" data-testid="account-link">
                {user ? user.name : 'Sign in'}
              </a>
            </nav>
          </header>
          <main>{children}</main>
          <footer className="site-footer">
            <a href="/privacy">Privacy preferences</a>
            <a href="/delete-my-data">Delete my data</a>
            <span className="muted">Demo shop — payments are fake.</span>
          </footer>
        </AttuneProvider>
      </body>
    </html>
  );
}

/**
 * Privacy preferences: the consent categories the site offers, from the Worker's /v1/config as
 * the tag read it (components/consent-preferences.tsx).
 */
import { ConsentPreferences } from '@/components/consent-preferences';

export const dynamic = 'force-dynamic';

export default function PrivacyPage() {
  return (
    <>
      <h1>Privacy preferences</h1>
      <p>
        Choose what Attune may do with your visits. You can change this at any time;{' '}
        <a href="/delete-my-data">or delete your data</a>.
      </p>
      <ConsentPreferences />
    </>
  );
}

'use client';
/**
 * Shown when a page cannot be rendered. A catalog that cannot be read is not this page's:
 * the pages that read it say so themselves (components/catalog-unavailable.tsx), because
 * production Next.js hands this page a generic message instead of the server's. The
 * `catalog:` branch is for a read this misses, seen under `next dev` only.
 */
export default function ShopError({ error }: { error: Error }) {
  return (
    <div className="error">
      <h1>The shop is not ready</h1>
      <p>
        {error.message.startsWith('catalog:') ? error.message : 'Something went wrong rendering this page.'}
      </p>
    </div>
  );
}

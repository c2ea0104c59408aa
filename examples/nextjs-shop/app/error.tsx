'use client';
/** Shown when a page cannot be rendered, most often because Directus (the catalog) is not running. */
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

/**
 * What a page that reads the catalog shows when Directus cannot be read: the catalog's own
 * message (where Directus was looked for, and `./attune up`). Rendered by the page itself,
 * not app/error.tsx: production Next.js (`next start`, as `./attune up` runs the shop)
 * replaces a Server Component's error message before the error page sees it.
 */
export function CatalogUnavailable({ message }: { message: string }) {
  return (
    <div className="error" data-testid="catalog-unavailable">
      <h1>The shop is not ready</h1>
      <p>{message}</p>
    </div>
  );
}

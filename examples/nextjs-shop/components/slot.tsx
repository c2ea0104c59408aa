/**
 * A personalization slot: an element marked `data-attune-slot` holding the shop's default
 * content. Through the Worker (edge-proxy mode) its inner HTML is replaced by the content
 * chosen for this person, in the HTML response itself; without the Worker, or without
 * consent, the default stays.
 */
export function Slot({
  name,
  html,
  context,
}: {
  name: 'hero' | 'recommendations' | 'promo';
  html: string;
  /** What the page is about, so the edge can decide in context (e.g. the product shown). */
  context?: { productId?: string; category?: string };
}) {
  return (
    <section
      className={`slot slot-${name}`}
      data-attune-slot={name}
      data-attune-product={context?.productId}
      data-attune-category={context?.category}
      // biome-ignore lint/security/noDangerouslySetInnerHtml: server-made, escaped HTML that the edge may replace (see lib/slot-html.ts)
      dangerouslySetInnerHTML={{ __html: html }}
      suppressHydrationWarning
    />
  );
}

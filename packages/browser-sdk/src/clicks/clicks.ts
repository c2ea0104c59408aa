/**
 * Declarative click tracking: a click on (or inside) an element with
 * `data-attune-track="cart.item.added"` tracks that event, with a property for each
 * `data-attune-prop-*` attribute (`data-attune-prop-product-id="p1"` → `productId: "p1"`).
 */

/** The event a click on `target` describes, or undefined when it is not inside a tracked element. */
export function clickEvent(target: EventTarget | null): [string, Record<string, string>] | undefined {
  const element = (target as Element | null)?.closest?.<HTMLElement>('[data-attune-track]');
  if (!element) return undefined;
  const properties: Record<string, string> = {};
  for (const [key, value = ''] of Object.entries(element.dataset)) {
    const name = key.replace(/^attuneProp([A-Z])/, (_, first: string) => first.toLowerCase());
    if (name !== key) properties[name] = value;
  }
  return [element.dataset.attuneTrack as string, properties];
}

/** Tracks declarative clicks anywhere in the document (one capturing listener). */
export function watchClicks(track: (name: string, properties: Record<string, string>) => void): void {
  document.addEventListener(
    'click',
    (event) => {
      const found = clickEvent(event.target);
      if (found) track(...found);
    },
    true,
  );
}

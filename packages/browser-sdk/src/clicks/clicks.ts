/**
 * Declarative click tracking: a click on (or inside) an element with
 * `data-attune-track="cart.item.added"` tracks that event, with a property for each
 * `data-attune-prop-*` attribute (`data-attune-prop-product-id="p1"` → `productId: "p1"`).
 */

/** Tracks declarative clicks anywhere in the document (one capturing listener). */
export function watchClicks(track: (name: string, properties: Record<string, string>) => void): void {
  /** The tracked element clicked in this task. */
  let last: Element | undefined;
  // Capturing at the window: before any handler on the page can stop the click.
  addEventListener(
    'click',
    ({ target }) => {
      // The target may be the document itself, which has no closest().
      const element = (target as Element).closest?.<HTMLElement>('[data-attune-track]');
      // A click on a label clicks its control as well, in the same task: one click of the
      // person, counted once. (The first is counted: the control's click does not always
      // follow, as when it is disabled or the page prevents the label's default.)
      if (element && element !== last) {
        last = element;
        setTimeout(() => {
          last = undefined;
        });
        const properties: Record<string, string> = {};
        for (const [key, value] of Object.entries(element.dataset as Record<string, string>)) {
          const name = key.replace(/^attuneProp([A-Z])/, (_, first: string) => first.toLowerCase());
          if (name !== key) properties[name] = value;
        }
        track(element.dataset.attuneTrack as string, properties);
      }
    },
    true,
  );
}

/**
 * Declarative click tracking: a click on (or inside, shadow roots included) an element with
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
    (event) => {
      // The click's path, not its target: a click inside a web component's (open) shadow root
      // reaches the window retargeted to the component, so a tracked element in there is found
      // only in the path. (The shadow root, the document and the window in it have no dataset; an
      // empty data-attune-track names no event, so it is no tracked element: 13 B less than matches().)
      const element = event.composedPath().find((node) => (node as HTMLElement).dataset?.attuneTrack) as
        | HTMLElement
        | undefined;
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

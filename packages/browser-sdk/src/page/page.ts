/**
 * Where an event happened: the page context (URL, path, referrer, title, locale, timezone,
 * library) and, on request, page views for single-page apps on history changes, with the
 * previous page as referrer. No screen size: the Worker keeps none of it. No query or utm_*
 * campaign either: the URL holds both, and the Worker reads them from it (withPageFacts).
 */
import { clipText, type EventContext, LIMITS } from '@attune/shared-schema/constants';

/** This tracker's version, sent in every event's `context.library`. */
export const VERSION = '0.1.0';

// Building a DateTimeFormat costs tens of µs: once per page is enough.
const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** An event's context, where the page is always known. */
type PageContext = EventContext & { page: Record<'url' | 'path' | 'referrer' | 'title', string> };

let lastKey: string | undefined;
let lastContext: PageContext;

/**
 * The context of an event on the current page; `referrer` is the previous page in a
 * single-page app. Reading `location` costs microseconds, on every `track()`: the context
 * is rebuilt only when the URL, referrer or title changed since the last event (measured:
 * `track()` ~1.3× slower in Chromium without this).
 */
export function pageContext(referrer: string): PageContext {
  // Read as member expressions, not destructured: spelled as the tag spells them elsewhere
  // (watchHistory's location.href), they gzip 9 B smaller.
  const href = location.href;
  const title = document.title;
  const key = `${href} ${referrer} ${title}`;
  if (key !== lastKey) {
    lastKey = key;
    lastContext = {
      // Cut to what the wire accepts (never inside an emoji of a title): one long URL must not
      // get every event of the page refused.
      page: {
        url: clipText(href, LIMITS.maxUrlLength),
        path: clipText(location.pathname, LIMITS.maxUrlLength),
        referrer: clipText(referrer, LIMITS.maxUrlLength),
        title: clipText(title, 256),
      },
      locale: navigator.language,
      timezone,
      library: { name: 'attune', version: VERSION },
    };
  }
  return lastContext;
}

/**
 * Calls `onPage(previousUrl)` whenever the URL (without its hash) changes through
 * history.pushState or back/forward navigation, or its path through replaceState (a query
 * taken out of the URL after load, such as utm_* or fbclid, is the same page view). Hash-only
 * changes are not page views (`#section` links), so hash routers get none.
 */
export function watchHistory(onPage: (previousUrl: string) => void): void {
  let current = location.href;
  /** Whether a pushState or back/forward navigation is among the changes not looked at yet. */
  let moved: unknown;
  // Looked at in a task of its own: routers set the new page's title after pushState, and
  // often follow it with a replaceState (a query added) that is the same page view. Events
  // tracked in the task of the change come before its page view.
  const check = (navigated?: unknown) => {
    moved ||= navigated;
    setTimeout(() => {
      const previous = current;
      // What tells two pages apart: the path, and after a push or back/forward the query too.
      const pageKey = (url: string) => (moved ? url.split('#')[0] : new URL(url).pathname);
      current = location.href;
      if (pageKey(previous) !== pageKey(current)) onPage(previous);
      moved = 0;
    });
  };
  for (const method of ['pushState', 'replaceState'] as const) {
    const original = history[method];
    history[method] = (...args: Parameters<History['pushState']>) => {
      original.apply(history, args);
      check(method < 'r'); // pushState
    };
  }
  // (Its event is the truthy `navigated`.)
  addEventListener('popstate', check);
}

/**
 * Where an event happened: the page context (URL, path, referrer, title, campaign) and,
 * on request, page views for single-page apps on history changes, with the previous
 * page as referrer.
 */
import { LIMITS } from '@attune/shared-schema/constants';
import type { EventContext } from '@attune/shared-schema/constants';

const clip = (text: string, max: number = LIMITS.maxUrlLength) => text.slice(0, max);

/** The context of an event on the current page; `referrer` overrides document.referrer (SPA). */
export function pageContext(referrer: string = document.referrer): EventContext {
  const params = new URLSearchParams(location.search);
  const campaign: Record<string, string> = {};
  for (const key of ['source', 'medium', 'name', 'term', 'content']) {
    const value = params.get(`utm_${key === 'name' ? 'campaign' : key}`);
    if (value) campaign[key] = clip(value, 256);
  }
  return {
    page: {
      url: clip(location.href),
      path: clip(location.pathname),
      referrer: clip(referrer),
      title: clip(document.title, 256),
      search: clip(location.search),
    },
    locale: navigator.language,
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    screen: { width: screen.width, height: screen.height, density: devicePixelRatio },
    ...(Object.keys(campaign).length ? { campaign } : {}),
  };
}

/**
 * Calls `onPage(previousUrl)` whenever the URL's path or query changes through
 * history.pushState / replaceState or back/forward navigation.
 */
export function watchHistory(onPage: (previousUrl: string) => void): void {
  let current = location.href;
  const check = () => {
    const previous = current;
    current = location.href;
    if (previous.split('#')[0] !== current.split('#')[0]) onPage(previous);
  };
  for (const method of ['pushState', 'replaceState'] as const) {
    const original = history[method];
    history[method] = function (this: History, ...args: Parameters<History['pushState']>) {
      original.apply(this, args);
      check();
    };
  }
  addEventListener('popstate', check);
}

/**
 * The Worker's HTTP surface, composed from one sub-app per capability. Each folder
 * owns its routes; this file only mounts them (and the first-party `/attune/*` aliases).
 */
import { errorBody } from '@attune/shared-schema';
import { Hono } from 'hono';
import { adminRoutes } from './admin/routes.ts';
import { configRoutes } from './config/routes.ts';
import { browserApiCors } from './cors/index.ts';
import { decideRoutes } from './decide/routes.ts';
import { hookRoutes } from './hooks/routes.ts';
import { ingestRoutes } from './ingest/routes.ts';
import { log } from './observability/index.ts';
import { mountEdgeProxy } from './proxy/index.ts';
import { replayRoutes } from './replay/index.ts';

export type AppEnv = { Bindings: Env };

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // Error answers of the browser API are readable cross-origin too (the SDK reads status and Retry-After).
  for (const path of ['/v1/collect', '/v1/config', '/v1/decide']) app.use(path, browserApiCors);
  app.route('/', ingestRoutes);
  app.route('/', adminRoutes);
  app.route('/', decideRoutes);
  app.route('/', configRoutes);
  app.route('/', hookRoutes);
  app.route('/', replayRoutes);
  // Edge-proxy mode: first-party /attune/* and the origin catch-all. Keep it LAST.
  mountEdgeProxy(app);
  // Bad input is answered by each route with a 4xx; reaching here is our fault, so 500, logged without personal data.
  app.onError((err, c) => {
    // The route pattern, not the path: a path can carry a person id (/v1/people/user:…).
    log('error', 'unhandled', { error: err.name, route: c.req.routePath });
    return c.json({ error: { code: 'internal', message: 'internal error; retry later' } }, 500);
  });
  // Its own code, not `not_found`: that one means "nothing is held about this person", and a
  // client with a wrong base URL (…/v1/v1/people/…) must not take this 404 for that answer.
  app.notFound((c) => {
    const { pathname } = new URL(c.req.url);
    const allowed = methodsRoutedFor(app, pathname);
    if (allowed.length > 0) {
      return c.json(
        errorBody(
          'method_not_allowed',
          `${c.req.method} is not answered on ${pathname}; use ${allowed.join(' or ')}`,
        ),
        405,
        { Allow: allowed.join(', ') },
      );
    }
    return c.json(errorBody('no_route', `no route for ${c.req.method} ${pathname}`), 404);
  });
  return app;
}

const ROUTED_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * The methods some route answers on `path` (HEAD with GET, as Hono serves it), asked of the
 * app's own router so no list of paths can drift from the routes. Middleware (`app.use`) and
 * the edge proxy's catch-all are registered for every method and are not routes of a path.
 */
function methodsRoutedFor(app: Hono<AppEnv>, path: string): string[] {
  const allowed = ROUTED_METHODS.filter((method) =>
    app.router.match(method, path)[0].some(([[, route]]) => route.method !== 'ALL'),
  );
  return allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed;
}

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
  app.notFound((c) =>
    c.json(errorBody('no_route', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`), 404),
  );
  return app;
}

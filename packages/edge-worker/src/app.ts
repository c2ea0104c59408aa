/**
 * The Worker's HTTP surface, composed from one sub-app per capability. Each folder
 * owns its routes; this file only mounts them (and the first-party `/attune/*` aliases).
 */
import { Hono } from 'hono';
import { ingestRoutes } from './ingest/routes.ts';

export type AppEnv = { Bindings: Env };

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.route('/', ingestRoutes);
  app.notFound((c) =>
    c.json(
      {
        error: { code: 'not_found', message: `no route for ${c.req.method} ${new URL(c.req.url).pathname}` },
      },
      404,
    ),
  );
  return app;
}

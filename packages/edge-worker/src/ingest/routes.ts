/** Ingest routes: POST /v1/collect and the Segment-compatible HTTP Tracking API. */
import { Hono } from 'hono';
import type { AppEnv } from '../app.ts';

export const ingestRoutes = new Hono<AppEnv>();

ingestRoutes.get('/healthz', (c) => c.json({ ok: true }));

// The baseline for ingest benchmarks: a Hono Worker that answers 204 to everything,
// under the same `wrangler dev` (local workerd) as the real Worker.
import { Hono } from 'hono';

const app = new Hono();
app.all('*', (c) => c.body(null, 204));

export default app;

/**
 * Attune's edge Worker: the fetch handler (ingest, decide, config, hooks, edge proxy),
 * the queue consumer (Directus sync) and the scheduled jobs (retention, lift reports, the cache check).
 */
import type { QueueMessage } from '@attune/shared-schema';
import { createApp } from './app.ts';
import { scheduled } from './schedule/index.ts';
import { queue } from './sync/index.ts';

export { CovisitationDO } from './decide/covisitation-do.ts';
export { HookReceiptsDO } from './hooks/receipts-do.ts';
export { RateLimiterDO } from './ingest/rate-limiter-do.ts';
export { ProfileDO } from './profile/profile-do.ts';

const app = createApp();

export default {
  fetch: app.fetch,
  queue,
  scheduled,
} satisfies ExportedHandler<Env, QueueMessage>;

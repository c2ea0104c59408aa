/**
 * Loopback servers for the real-browser tests: a site that serves a test page and the
 * built dist/attune.js, and a collector that speaks the `/v1/collect` wire protocol,
 * validates every body with the shared schema, and can be told to fail or go away.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type CustomerAction, parseCollectBody } from '@attune/shared-schema';

export interface CollectRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  events: CustomerAction[];
}

export interface Collector {
  url: string;
  /** Every request, in arrival order (preflights and config fetches included). */
  requests: CollectRequest[];
  /** Every accepted event, in arrival order, each id once (the Worker dedupes by id too). */
  events: CustomerAction[];
  /** Events received again with an id already accepted (answered as `duplicates`, like the Worker). */
  duplicates: CustomerAction[];
  /** Bodies that failed validation (must stay empty). */
  invalid: string[];
  /**
   * What `GET /v1/config` answers (the site's consent categories and policy version), as the
   * Worker does; while undefined it answers 404, and the tag keeps its built-in categories.
   */
  consentConfig: unknown;
  /** Answer the next `count` collect requests with `status` (and Retry-After when given). */
  fail(count: number, status?: number, retryAfter?: string): void;
  reset(): void;
  /**
   * Resolves once no request is in flight and nothing has connected for `quietMs`: a page
   * closed at the end of a test may still be delivering its last events by beacon, and they
   * must land before the next test resets the collector, not after.
   */
  settled(quietMs?: number): Promise<void>;
  close(): Promise<void>;
}

const listen = (server: Server, port: number) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

const readBody = async (request: IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

export async function startCollector(port: number): Promise<Collector> {
  let failures: { status: number; retryAfter?: string }[] = [];
  const seen = new Set<string>();
  let inFlight = 0;
  let lastActivity = 0;
  const collector: Collector = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    events: [],
    duplicates: [],
    invalid: [],
    consentConfig: undefined,
    fail(count, status = 503, retryAfter) {
      failures.push(...Array.from({ length: count }, () => ({ status, retryAfter })));
    },
    reset() {
      collector.requests.length = 0;
      collector.events.length = 0;
      collector.duplicates.length = 0;
      collector.invalid.length = 0;
      seen.clear();
      failures = [];
      collector.consentConfig = undefined;
    },
    async settled(quietMs = 300) {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (inFlight > 0 || Date.now() - lastActivity < quietMs))
        await new Promise((resolve) => setTimeout(resolve, 50));
    },
    close: () => close(server),
  };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    inFlight++;
    lastActivity = Date.now();
    response.once('close', () => {
      inFlight--;
      lastActivity = Date.now();
    });
    void handle(request, response);
  });
  server.on('connection', () => {
    lastActivity = Date.now();
  });
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const record: CollectRequest = {
      method: request.method ?? '',
      path,
      contentType: request.headers['content-type'],
      events: [],
    };
    collector.requests.push(record);
    response.setHeader('access-control-allow-origin', request.headers.origin ?? '*');
    response.setHeader('access-control-allow-credentials', 'true');
    response.setHeader('access-control-expose-headers', 'retry-after');
    response.setHeader('content-type', 'application/json');
    if (request.method === 'GET' && path === '/v1/config' && collector.consentConfig !== undefined) {
      response.end(JSON.stringify(collector.consentConfig));
      return;
    }
    if (request.method !== 'POST' || path !== '/v1/collect') {
      response.statusCode = 404;
      response.end('{"error":{"code":"not_found","message":"not found"}}');
      return;
    }
    const text = await readBody(request);
    const failure = failures.shift();
    if (failure) {
      response.statusCode = failure.status;
      if (failure.retryAfter) response.setHeader('retry-after', failure.retryAfter);
      response.end('{"error":{"code":"rate_limited","message":"try later"}}');
      return;
    }
    const parsed = parseCollectBody(text);
    if (!parsed.ok || parsed.rejected.length > 0) {
      collector.invalid.push(text);
      response.statusCode = parsed.ok ? 207 : parsed.status;
      response.end(
        JSON.stringify(
          parsed.ok ? { accepted: parsed.events.length, rejected: parsed.rejected } : parsed.body,
        ),
      );
      return;
    }
    record.events = parsed.events.map((e) => e.event);
    const fresh = record.events.filter((e) => !seen.has(e.id));
    for (const e of record.events) seen.add(e.id);
    collector.events.push(...fresh);
    collector.duplicates.push(...record.events.filter((e) => !fresh.includes(e)));
    const duplicates = record.events.length - fresh.length;
    response.end(JSON.stringify({ accepted: fresh.length, duplicates, rejected: [] }));
  };
  await listen(server, port);
  return collector;
}

export interface Site {
  url: string;
  close(): Promise<void>;
}

/** The inline stub snippet, exactly as the README documents it. */
export const STUB_SNIPPET =
  '!function(w){if((w.attune||0).consent)return;var q=[],a=w.attune={q:q,consent:{}},f=function(o,m,n){o[m]=function(){q.push([n||m,[].slice.call(arguments)])}};"page track identify flush reset decide".split(" ").forEach(function(m){f(a,m)});"set onChange".split(" ").forEach(function(m){f(a.consent,m,"consent."+m)})}(window);';

/**
 * Serves /attune.js (the built tag) and test pages: `/page/...?data-flush-at=5&stub=…`
 * puts every `data-*` query parameter on the script tag; `stub` is inline script run
 * after the stub snippet and before the tag loads; `head` is HTML put before both, `body`
 * HTML after the page's button.
 */
export async function startSite(port: number, collectorUrl: string, distFile: string): Promise<Site> {
  const server = createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', `http://127.0.0.1:${port}`);
    if (url.pathname === '/attune.js') {
      response.setHeader('content-type', 'text/javascript');
      response.setHeader('cache-control', 'no-store');
      response.end(await readFile(distFile));
      return;
    }
    if (url.pathname === '/favicon.ico') {
      response.statusCode = 204;
      response.end();
      return;
    }
    const attributes = [...url.searchParams]
      .filter(([key]) => key.startsWith('data-'))
      .map(([key, value]) => ` ${key}="${value.replace(/"/g, '&quot;')}"`)
      .join('');
    const stub = url.searchParams.get('stub');
    const inline = stub === null ? '' : `<script>${STUB_SNIPPET}\n${stub}</script>`;
    response.setHeader('content-type', 'text/html; charset=utf-8');
    response.setHeader('cache-control', 'no-store');
    response.end(`<!doctype html><html><head><meta charset="utf-8"><title>Test ${url.pathname}</title>${url.searchParams.get('head') ?? ''}${inline}
<script async src="/attune.js" data-endpoint="${collectorUrl}" data-write-key="pk_test"${attributes}></script>
</head><body><h1>${url.pathname}</h1>
<button id="add" data-attune-track="cart.item.added" data-attune-prop-product-id="p-7" data-attune-prop-name="Trail jacket"><span>Add to cart</span></button>
${url.searchParams.get('body') ?? ''}
</body></html>`);
  });
  await listen(server, port);
  return { url: `http://127.0.0.1:${port}`, close: () => close(server) };
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 45_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

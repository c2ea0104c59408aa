/**
 * `/attune/*` when the shop is visited directly (not through the Worker): forwards the
 * SDK's first-party calls to the Worker so the same page works both ways. Through the
 * Worker in edge-proxy mode these paths never reach the shop.
 */
import { shopEnv } from '@/lib/env';

const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'cookie', 'user-agent', 'sec-gpc', 'origin'];
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'cache-control', 'retry-after', 'set-cookie'];

async function forward(req: Request, path: string[]): Promise<Response> {
  const url = new URL(req.url);
  const target = `${shopEnv().workerUrl}/attune/${path.map(encodeURIComponent).join('/')}${url.search}`;
  const headers = new Headers();
  for (const h of FORWARDED_REQUEST_HEADERS) {
    const v = req.headers.get(h);
    if (v !== null) headers.set(h, v);
  }
  try {
    const res = await fetch(target, {
      method: req.method,
      headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : await req.arrayBuffer(),
      signal: AbortSignal.timeout(10_000),
    });
    const out = new Headers();
    for (const h of FORWARDED_RESPONSE_HEADERS) {
      const v = res.headers.get(h);
      if (v !== null) out.set(h, v);
    }
    return new Response(res.body, { status: res.status, headers: out });
  } catch {
    return Response.json(
      { error: { code: 'worker_unreachable', message: 'the Attune Worker is not reachable' } },
      { status: 503 },
    );
  }
}

type Ctx = { params: Promise<{ path: string[] }> };
export async function GET(req: Request, ctx: Ctx) {
  return forward(req, (await ctx.params).path);
}
export async function POST(req: Request, ctx: Ctx) {
  return forward(req, (await ctx.params).path);
}

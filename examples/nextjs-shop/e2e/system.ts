/**
 * What the end-to-end tests know about the running system, and small clients for its
 * parts: the Worker's admin API and Directus's REST API (as the admin a marketer would be).
 */
import { inject } from 'vitest';

export interface SystemInfo {
  urls: { shop: string; worker: string; directus: string };
  secrets: {
    identitySecret: string;
    adminToken: string;
    privacyToken: string;
    /** The Worker's attune-sync token. */
    directusToken: string;
    /** The token the shop's server reads Directus with (DIRECTUS_TOKEN of the shop). */
    shopDirectusToken: string;
    directusAdminEmail: string;
    directusAdminPassword: string;
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    system: SystemInfo;
  }
}

export function system(): SystemInfo {
  return inject('system');
}

/** Waits until `probe` returns a value other than undefined, or fails with `what`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

let directusToken: string | undefined;

/** Directus REST as the admin (a marketer or analyst in the Directus app). */
export async function directus<T>(method: string, path: string, body?: unknown): Promise<T> {
  const s = system();
  if (directusToken === undefined) {
    const login = await fetch(`${s.urls.directus}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        email: s.secrets.directusAdminEmail,
        password: s.secrets.directusAdminPassword,
      }),
    });
    if (!login.ok) throw new Error(`Directus admin login failed: ${login.status}`);
    directusToken = ((await login.json()) as { data: { access_token: string } }).data.access_token;
  }
  const res = await fetch(`${s.urls.directus}${path}`, {
    method,
    headers: { authorization: `Bearer ${directusToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Directus ${method} ${path} → ${res.status}: ${text.slice(0, 300)}`);
  return (text ? (JSON.parse(text) as { data: T }).data : undefined) as T;
}

/** The Worker's admin API (`/v1/people/:id` and friends). */
export async function workerAdmin(method: string, path: string): Promise<Response> {
  const s = system();
  return fetch(`${s.urls.worker}${path}`, {
    method,
    headers: { authorization: `Bearer ${s.secrets.adminToken}` },
  });
}

export interface CatalogProduct {
  id: string;
  slug: string;
  title: string;
  category: string;
  tags: string[];
}

export async function catalog(): Promise<CatalogProduct[]> {
  return directus<CatalogProduct[]>('GET', '/items/products?limit=-1&fields=id,slug,title,category,tags');
}

// The floor under ingest's Durable Object call: a Worker that reads the request body and
// answers 204 (`/none`), after one JS RPC call to a SQLite-backed Durable Object chosen
// by name among `people` (`/call`), or after a call that also writes one row (`/write`).
import { DurableObject } from 'cloudflare:workers';

export class Person extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL)');
  }

  call(body) {
    return { bytes: body.length };
  }

  write(body) {
    this.sql.exec('INSERT OR REPLACE INTO seen (id, at) VALUES (?, ?)', crypto.randomUUID(), Date.now());
    return { bytes: body.length };
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const body = await request.text();
    if (url.pathname === '/none') return new Response(null, { status: 204 });
    const people = Number(url.searchParams.get('people') ?? 500);
    const person = env.PERSON.get(env.PERSON.idFromName(`p${Math.floor(Math.random() * people)}`));
    if (url.pathname === '/call') await person.call(body);
    else if (url.pathname === '/write') await person.write(body);
    else return new Response('not found', { status: 404 });
    return new Response(null, { status: 204 });
  },
};

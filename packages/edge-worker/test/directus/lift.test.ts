/**
 * Lift against a real Directus: decisions and conversions written through the real sync,
 * `POST /v1/admin/lift` and the daily cron measure them and keep the report in
 * `lift_reports`, which a marketer may read while the event log stays closed to them.
 * Other tests' rows share site `demo`: the decisions here belong to an experiment of this
 * test's own, so its report counts this test's people alone.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from 'cloudflare:test';
import type { EventMessage } from '@attune/shared-schema';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LiftReportRow, SiteLift } from '../../src/decide/lift-report.ts';
import worker from '../../src/index.ts';
import { RETENTION_CRON } from '../../src/schedule/index.ts';
import { DIRECTUS_TEST } from './constants.mjs';
import { admin, consume, deliveries, env, eventMessage, rows, SITE, ulid, uniqueId } from './support.ts';

const EXPERIMENT = uniqueId('lift-test');

async function call(path: string, init: RequestInit = {}, target: Env = env()): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://attune.test${path}`, init), target, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const lift = (query: string, target?: Env) =>
  call(
    `/v1/admin/lift?${query}`,
    { method: 'POST', headers: { authorization: `Bearer ${DIRECTUS_TEST.adminToken}` } },
    target,
  );

/** A decision.served as decide sends it (src/decide/decide.ts, servedEvent), `minutesAgo`. */
function decision(person: string, holdout: boolean, minutesAgo: number): EventMessage {
  const at = new Date(Date.now() - minutesAgo * 60_000).toISOString();
  const id = ulid();
  return {
    kind: 'event',
    siteId: SITE,
    personId: person,
    event: {
      id,
      type: 'track',
      name: 'decision.served',
      timestamp: at,
      anonymousId: person.slice(5),
      properties: {
        decisionId: id,
        slot: 'hero',
        variant: 'v-hero',
        holdout,
        experiment: EXPERIMENT,
        personalized: !holdout,
        eligible: true,
        items: ['p-wok'],
      },
      schemaVersion: 1,
    },
    enrichment: { receivedAt: at, correctedTimestamp: at },
    purposes: ['analytics'],
  };
}

const conversion = (person: string, name: 'order.completed' | 'cart.item.added', minutesAgo: number) =>
  eventMessage(person, {
    name,
    receivedAt: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
    properties: { productId: 'p-wok', total: 42 },
  });

const treated = Array.from({ length: 4 }, () => `anon:${uniqueId('lift-treated')}`);
const heldOut = Array.from({ length: 4 }, () => `anon:${uniqueId('lift-held')}`);

/** What the seeded people add up to: treated 2 of 4 converted (3 conversions), held out 1 of 4. */
const EXPECTED = {
  experiment: EXPERIMENT,
  treatment_people: 4,
  treatment_converters: 2,
  treatment_conversions: 3,
  treatment_rate: 0.5,
  holdout_people: 4,
  holdout_converters: 1,
  holdout_conversions: 1,
  holdout_rate: 0.25,
  lift: 1,
  truncated: false,
};

/**
 * A person with the role bootstrap made under this name, and their static token: one
 * another test invited (given a new token), else one invited here, whose user id is
 * answered to delete once done. Directus without a licence has few seats for people with
 * app access, and least-privilege.test.ts needs two of them, before or after this file.
 */
async function personWithRole(roleName: string): Promise<{ token: string; invitedId?: string }> {
  const [role] = await admin<{ id: string }[]>(
    'GET',
    `/roles?filter[name][_eq]=${encodeURIComponent(roleName)}&fields=id`,
  );
  if (role === undefined) throw new Error(`bootstrap made no role ${roleName}`);
  const token = `${uniqueId('person-token')}-0123456789abcdef`;
  const [existing] = await admin<{ id: string }[]>(
    'GET',
    `/users?filter[role][_eq]=${role.id}&filter[status][_eq]=active&fields=id&limit=1`,
  );
  if (existing !== undefined) {
    await admin('PATCH', `/users/${existing.id}`, { token });
    return { token };
  }
  const user = await admin<{ id: string }>('POST', '/users', {
    email: `${uniqueId('person')}@example.com`.toLowerCase(),
    role: role.id,
    token,
    status: 'active',
  });
  return { token, invitedId: user.id };
}

async function as(token: string, path: string): Promise<number> {
  const res = await fetch(`${DIRECTUS_TEST.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  await res.body?.cancel();
  return res.status;
}

beforeAll(async () => {
  const [t0 = '', t1 = '', t2 = '', t3 = ''] = treated;
  const [h0 = '', h1 = '', h2 = '', h3 = ''] = heldOut;
  const result = await consume(
    deliveries([
      ...[t0, t1, t2, t3].map((p) => decision(p, false, 60)),
      ...[h0, h1, h2, h3].map((p) => decision(p, true, 60)),
      conversion(t0, 'cart.item.added', 50),
      conversion(t0, 'order.completed', 40),
      conversion(t1, 'order.completed', 30),
      conversion(h0, 'order.completed', 30),
      // Before any decision: attributed to none.
      conversion(t2, 'order.completed', 90),
    ]),
  );
  expect(result.retryMessages).toEqual([]);
});

describe('POST /v1/admin/lift', () => {
  it("answers the site's report and keeps it in lift_reports", async () => {
    const res = await lift(`site=${SITE}&days=1`);
    expect(res.status).toBe(200);
    const answer = (await res.json()) as SiteLift;
    expect(answer).toMatchObject({ siteId: SITE, days: 1, truncated: false });
    const mine = answer.reports.find((r) => r.experiment === EXPERIMENT);
    expect(mine).toMatchObject(EXPECTED);
    // Every event seeded here was read (other tests' events of the day too).
    expect(answer.eventsRead).toBeGreaterThanOrEqual(13);

    const day = answer.windowEnd.slice(0, 10);
    const [row] = await rows<LiftReportRow>('lift_reports', {
      id: { _eq: `${SITE}:${EXPERIMENT}:1d:${day}` },
    });
    expect(row).toMatchObject({ ...EXPECTED, site_id: SITE, events_read: answer.eventsRead });
    expect(Date.parse(String(row?.window_end)) - Date.parse(String(row?.window_start))).toBe(24 * 3_600_000);
    // Counts only: no person of the seeded ones in the row.
    const text = JSON.stringify(row);
    for (const person of [...treated, ...heldOut]) expect(text).not.toContain(person.slice(5));
  });

  it('refuses days outside 1–90 and an unknown site', async () => {
    for (const days of ['0', '91', '1.5', 'x'])
      expect((await lift(`site=${SITE}&days=${days}`)).status).toBe(400);
    expect((await lift('site=no-such-site')).status).toBe(400);
    const unauthorized = await call(`/v1/admin/lift?site=${SITE}`, { method: 'POST' });
    expect(unauthorized.status).toBe(401);
  });

  it('answers 502 directus_unavailable when Directus cannot be reached', async () => {
    const res = await lift(`site=${SITE}`, {
      ...env(),
      DIRECTUS_URL: 'http://127.0.0.1:9',
    } as unknown as Env);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('directus_unavailable');
  });
});

describe('the daily cron', () => {
  it("writes every site's report after retention", async () => {
    const before = new Date().toISOString();
    // A retention period long enough that retention deletes no other test's rows.
    const target = { ...env(), EVENT_RETENTION_DAYS: '36500' } as unknown as Env;
    await worker.scheduled(
      createScheduledController({ scheduledTime: Date.now(), cron: RETENTION_CRON }),
      target,
    );
    const mine = await rows<LiftReportRow>('lift_reports', {
      _and: [{ experiment: { _eq: EXPERIMENT } }, { computed_at: { _gte: before } }],
    });
    expect(mine).toHaveLength(1);
    // The 28-day window holds the same people.
    expect(mine[0]).toMatchObject(EXPECTED);
  });
});

describe('the marketer', () => {
  it('reads lift reports, and still no event', async () => {
    const { token: marketer, invitedId } = await personWithRole('Attune marketer');
    try {
      expect(await as(marketer, `/items/lift_reports?filter[experiment][_eq]=${EXPERIMENT}`)).toBe(200);
      const res = await fetch(
        `${DIRECTUS_TEST.url}/items/lift_reports?filter[experiment][_eq]=${EXPERIMENT}`,
        {
          headers: { authorization: `Bearer ${marketer}` },
        },
      );
      expect(((await res.json()) as { data: unknown[] }).data.length).toBeGreaterThan(0);
      expect(await as(marketer, '/items/events?limit=1')).toBe(403);
      expect(await as(marketer, '/items/people?limit=1')).toBe(403);
    } finally {
      if (invitedId !== undefined) await admin('DELETE', `/users/${invitedId}`);
    }
  });
});

/**
 * Property tests: every event the contract allows is accepted as sent, and survives a
 * trip through JSON text unchanged; the same holds for whole collect bodies.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { collectRequest, customerAction, NOW } from './event.arbitraries.ts';
import { validateEvent } from './event.ts';
import { parseCollectBody } from './wire.ts';

describe('validateEvent on generated valid events', () => {
  it('accepts every valid event and returns it unchanged', () => {
    fc.assert(
      fc.property(customerAction, (event) => {
        const result = validateEvent(event, { now: NOW });
        if (!result.ok) throw new Error(`rejected: ${JSON.stringify(result.errors)}`);
        expect(result.event).toStrictEqual(event);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips through JSON.stringify / JSON.parse unchanged', () => {
    fc.assert(
      fc.property(customerAction, (event) => {
        const wire: unknown = JSON.parse(JSON.stringify(event));
        const result = validateEvent(wire, { now: NOW });
        if (!result.ok) throw new Error(`rejected: ${JSON.stringify(result.errors)}`);
        expect(result.event).toStrictEqual(event);
        expect(JSON.parse(JSON.stringify(result.event))).toStrictEqual(event);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseCollectBody on generated valid bodies', () => {
  it('accepts every event of a valid body, in order, unchanged', () => {
    fc.assert(
      fc.property(collectRequest, (request) => {
        const parsed = parseCollectBody(JSON.stringify(request), { now: NOW });
        if (!parsed.ok) throw new Error(`rejected body: ${JSON.stringify(parsed.body)}`);
        expect(parsed.rejected).toEqual([]);
        expect(parsed.writeKey).toBe(request.writeKey);
        expect(parsed.sentAt).toBe(request.sentAt);
        expect(parsed.events.map((e) => e.index)).toEqual(request.batch.map((_, i) => i));
        expect(parsed.events.map((e) => e.event)).toStrictEqual(request.batch);
      }),
      { numRuns: 100 },
    );
  });

  it('accepts the valid events and reports each invalid one by index (partial success)', () => {
    const broken = fc.constantFrom(
      { patch: { id: 'not-a-ulid' }, path: 'id' },
      { patch: { timestamp: 'yesterday' }, path: 'timestamp' },
      { patch: { schemaVersion: 7 }, path: 'schemaVersion' },
      { patch: { type: 'alias' }, path: 'type' },
    );
    fc.assert(
      fc.property(
        collectRequest,
        fc.array(fc.tuple(fc.nat(), broken), { minLength: 1, maxLength: 3 }),
        (request, breaks) => {
          const bad = new Map<number, string>();
          const batch: unknown[] = [...request.batch];
          for (const [at, { patch, path }] of breaks) {
            const index = at % batch.length;
            if (bad.has(index)) continue; // one defect per event, so its path is the one reported
            batch[index] = { ...(batch[index] as object), ...patch };
            bad.set(index, path);
          }
          const parsed = parseCollectBody(JSON.stringify({ ...request, batch }), { now: NOW });
          if (!parsed.ok) throw new Error(`rejected body: ${JSON.stringify(parsed.body)}`);
          expect(parsed.rejected.map((r) => r.index).sort()).toEqual([...bad.keys()].sort());
          for (const r of parsed.rejected) {
            expect(r.errors.map((e) => e.path)).toContain(`batch[${r.index}].${bad.get(r.index)}`);
          }
          expect(parsed.events.length + parsed.rejected.length).toBe(batch.length);
        },
      ),
      { numRuns: 100 },
    );
  });
});

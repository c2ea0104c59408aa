/**
 * A recording stand-in for the browser's storage (localStorage and the IndexedDB outbox),
 * for the tracker's unit tests: what was saved, stored, forgotten and wiped, in order. The
 * tab lock and the back/forward cache are exercised in Chromium (test/browser.test.ts).
 */
import type { QueuedEvent } from '../queue/queue.ts';
import type { Persistence, VisitorRecord } from './store.ts';

export interface StorageLog {
  /** `save`, `store`, `forget` and `wipe`, in call order. */
  writes: string[];
  /** Every visitor record saved, oldest first. */
  saved: VisitorRecord[];
  /** The outbox as IndexedDB would hold it: event id → JSON. */
  storedEvents: Map<string, string>;
  /** Events closed tabs left behind: the next `adopt()` takes them. */
  orphans: QueuedEvent[];
}

export const emptyStorageLog = (): StorageLog => ({
  writes: [],
  saved: [],
  storedEvents: new Map(),
  orphans: [],
});

/** Storage that records into `log`; `initial` is the visitor record an earlier page left. */
export function recordingPersistence(log: StorageLog, initial?: VisitorRecord): Persistence {
  return {
    // What this page saved last (as localStorage would give it back), else the record it started with.
    load: () => log.saved.at(-1) ?? initial,
    save: (record) => {
      log.writes.push('save');
      log.saved.push(structuredClone(record));
    },
    store: async (events) => {
      log.writes.push('store');
      for (const e of events) log.storedEvents.set(e.id, e.json);
      return true;
    },
    forget: (ids) => {
      log.writes.push('forget');
      for (const id of ids) log.storedEvents.delete(id);
    },
    adopt: async () => {
      const adopted = log.orphans.splice(0);
      for (const e of adopted) log.storedEvents.set(e.id, e.json);
      return adopted;
    },
    wipe: () => {
      log.writes.push('wipe');
      log.storedEvents.clear();
    },
    leave: () => {},
    rejoin: async () => [...log.storedEvents.keys()],
  };
}

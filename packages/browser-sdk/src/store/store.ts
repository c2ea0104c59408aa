/**
 * Persistence, used only once consent allows it: the visitor record (ids, session,
 * consent choice) in localStorage, and unsent events in IndexedDB (idb-keyval's store),
 * keyed by event id so they replay in order.
 *
 * Several tabs share one IndexedDB outbox but never send the same event twice: every
 * stored event names the tab that owns it, each tab holds a Web Lock named after itself
 * for as long as it lives, and a tab adopts only events whose owner holds no lock (a
 * closed tab) — under one exclusive lock, so two tabs cannot adopt the same orphan.
 */
import type { ConsentState } from '@attune/shared-schema/constants';
import { createStore, promisifyRequest } from 'idb-keyval';
import { utf8Bytes } from '../batching/batching.ts';
import type { QueuedEvent } from '../queue/queue.ts';
import type { Session } from '../session/session.ts';

/** What is remembered about the visitor between pages. */
export interface VisitorRecord {
  /** Absent when only a refusal is remembered. */
  anonymousId?: string;
  userId?: string;
  userIdSignature?: string;
  session?: Session;
  consent?: ConsentState;
}

/** The storage the tracker writes to; a recording fake in unit tests. */
export interface Persistence {
  load(): VisitorRecord | undefined;
  save(record: VisitorRecord): void;
  /** Stores events this tab owns. */
  store(events: readonly QueuedEvent[]): void;
  /** Deletes events that were delivered or dropped. */
  forget(ids: readonly string[]): void;
  /** Takes ownership of the events of closed tabs and returns them. */
  adopt(): Promise<QueuedEvent[]>;
  /** Forgets everything: the visitor record and every stored event. */
  wipe(): void;
}

/** An event as IndexedDB keeps it, with the tab that owns it. */
interface StoredEvent {
  id: string;
  json: string;
  tab: string;
}

const RECORD_KEY = 'attune';
const TAB_LOCK = 'attune:tab:';

/** localStorage + IndexedDB persistence for the tab `tab`. */
export function browserPersistence(tab: string): Persistence {
  let idb: ReturnType<typeof createStore> | undefined;
  /** Runs `write` on the outbox in one transaction (the database opens on first use, never before consent). */
  const outbox = <T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => T): Promise<T> => {
    idb ??= createStore('attune', 'outbox');
    return idb(mode, async (store) => {
      const result = work(store);
      // Commit now rather than when the requests' callbacks have run: a page that is unloading
      // (a beacon just sent these events) may never run them, and the delete must still land.
      store.transaction.commit?.();
      await promisifyRequest(store.transaction);
      return result;
    });
  };
  const put = (events: readonly Omit<QueuedEvent, 'bytes'>[]) =>
    outbox('readwrite', (store) => {
      for (const { id, json } of events) store.put({ id, json, tab } satisfies StoredEvent, id);
    });
  const ignore = () => {};
  const locks = navigator.locks;
  let holdsTabLock = false;

  /** Re-owns the stored events whose owner is gone and returns them. */
  const adoptWhere = async (gone: (owner: string) => boolean): Promise<QueuedEvent[]> => {
    const stored = await outbox('readonly', (store) => store.getAll() as IDBRequest<StoredEvent[]>);
    const orphans = stored.result.filter((e) => e.tab !== tab && gone(e.tab));
    await put(orphans);
    return orphans.map(({ id, json }) => ({ id, json, bytes: utf8Bytes(json) }));
  };

  return {
    load() {
      try {
        return JSON.parse(localStorage[RECORD_KEY]);
      } catch {}
    },
    save(record) {
      try {
        localStorage[RECORD_KEY] = JSON.stringify(record);
      } catch {
        // Storage full or blocked: events still flow from memory.
      }
    },
    store: (events) => void put(events).catch(ignore),
    forget: (ids) => void outbox('readwrite', (store) => ids.map((id) => store.delete(id))).catch(ignore),
    async adopt() {
      try {
        if (!locks) return await adoptWhere(() => true);
        // This tab's lock lives as long as the tab; a pending request already counts as alive.
        if (!holdsTabLock) void locks.request(TAB_LOCK + tab, () => new Promise(ignore)).catch(ignore);
        holdsTabLock = true;
        return await locks.request('attune:adopt', async () => {
          const { held = [], pending = [] } = await locks.query();
          const alive = new Set([...held, ...pending].map((lock) => lock.name));
          return adoptWhere((owner) => !alive.has(TAB_LOCK + owner));
        });
      } catch {
        return [];
      }
    },
    wipe() {
      try {
        localStorage.removeItem(RECORD_KEY);
      } catch {}
      void outbox('readwrite', (store) => store.clear()).catch(ignore);
    },
  };
}

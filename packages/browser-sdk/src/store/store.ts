/**
 * Persistence, used only once consent allows it: the visitor record (ids, session,
 * consent choice) in localStorage, and unsent events in IndexedDB (idb-keyval's store),
 * keyed by event id so they replay in order.
 *
 * Several tabs share one IndexedDB outbox but never send the same event twice: every
 * stored event names the tab that owns it, each tab holds a Web Lock named after itself
 * for as long as it lives, and a tab adopts only events whose owner holds no lock (a
 * closed tab) — under one exclusive lock, so two tabs cannot adopt the same orphan.
 *
 * A page in the back/forward cache must hold no lock: Chromium evicts such a page as soon
 * as another tab queries the locks (as adopting does). So a tab lets go of its lock when
 * it is hidden away (`pagehide`), its events become orphans other tabs may send, and on
 * restore it takes the lock back and keeps only the stored events it still owns.
 */
import type { ConsentState } from '@attune/shared-schema/constants';
import { promisifyRequest } from 'idb-keyval';
import type { QueuedEvent } from '../queue/queue.ts';
import type { Session } from '../session/session.ts';
import { ignore, safely } from '../transport/transport.ts';

/** What is remembered about the visitor between pages. */
export interface VisitorRecord {
  /** Absent when only a refusal is remembered. */
  anonymousId?: string;
  userId?: string;
  userIdSignature?: string;
  session?: Session;
  consent?: ConsentState;
  /**
   * A refusal's proofs (`consent.updated`) not delivered yet: after a refusal IndexedDB keeps
   * nothing, so they wait here for the next page (a withdrawal made offline must still reach
   * the Worker, whose record would otherwise keep the grant). Kept without the user id and
   * its signature; any page here may send them, and the one that delivers them drops them.
   */
  proofs?: QueuedEvent[];
}

/** The storage the tracker writes to; a recording fake in unit tests. */
export interface Persistence {
  load(): VisitorRecord | undefined;
  save(record: VisitorRecord): void;
  /** Stores events this tab owns; resolves to something truthy once written, undefined when it failed. */
  store(events: readonly QueuedEvent[]): Promise<unknown>;
  /** Deletes events that were delivered or dropped. */
  forget(ids: readonly string[]): void;
  /** Takes ownership of the events of closed tabs and returns them. */
  adopt(): Promise<QueuedEvent[]>;
  /** Forgets everything: the visitor record and every stored event. */
  wipe(): void;
  /** Lets go of this tab's lock (the page is hidden away, maybe into the back/forward cache). */
  leave(): void;
  /**
   * Takes the lock back after a restore from the back/forward cache; resolves to the ids of
   * the stored events this tab still owns (the rest were adopted by other tabs), or
   * undefined when nothing was stored.
   */
  rejoin(): Promise<string[] | undefined>;
}

/** An event as IndexedDB keeps it, with the tab that owns it. */
interface StoredEvent extends QueuedEvent {
  tab: string;
}

const RECORD_KEY = 'attune';
const TAB_LOCK = 'attune:tab:';

/** localStorage + IndexedDB persistence for the tab `tab`. */
export function browserPersistence(tab: string): Persistence {
  let database: Promise<IDBDatabase> | undefined;
  /**
   * Runs `work` on the outbox in one read-write transaction; resolves once it is committed,
   * or to undefined when IndexedDB failed (events then still flow from memory).
   */
  const outbox = async <T>(work: (store: IDBObjectStore) => T): Promise<T | undefined> => {
    try {
      // Opened on first use, never before consent (the database and store idb-keyval's createStore makes).
      if (!database) {
        const open = indexedDB.open('attune');
        open.onupgradeneeded = () => open.result.createObjectStore('outbox');
        database = promisifyRequest(open);
      }
      const transaction = (await database).transaction('outbox', 'readwrite');
      const result = work(transaction.objectStore('outbox'));
      // Commit now rather than when the requests' callbacks have run: a page that is unloading
      // (a beacon just sent these events) may never run them, and the delete must still land.
      transaction.commit?.();
      await promisifyRequest(transaction);
      return result;
    } catch {}
  };
  const put = (events: readonly QueuedEvent[]) =>
    // Resolves to the requests (truthy, even for no events) once written, undefined when IndexedDB failed.
    outbox((store) =>
      events.map(({ id, json, bytes }) => store.put({ id, json, bytes, tab } satisfies StoredEvent, id)),
    );
  // (Member expressions, not destructuring, here and in the tracker: the tag gzips smaller.)
  const locks = navigator.locks;
  let release: () => void = ignore;
  // This tab's lock lives as long as the tab is shown, so a tab that holds no lock is closed or cached.
  const hold = () =>
    locks
      ?.request(
        TAB_LOCK + tab,
        () =>
          new Promise<void>((resolve) => {
            release = resolve;
          }),
      )
      .catch(ignore);
  hold();
  /** Runs `work` under the lock that lets one tab at a time take events over; fails by rejecting, never by throwing. */
  const exclusively = async <T>(work: () => Promise<T>) =>
    locks ? locks.request('attune:adopt', work) : work();

  /** Every stored event, of every tab; undefined when IndexedDB failed. */
  const stored = () =>
    outbox((store) => store.getAll() as IDBRequest<StoredEvent[]>).then((read) => read?.result);

  return {
    // localStorage may be full or blocked: events still flow from memory then.
    load: () => safely(() => JSON.parse(localStorage[RECORD_KEY])),
    save: (record) => safely(() => (localStorage[RECORD_KEY] = JSON.stringify(record))),
    store: put,
    forget: (ids) => void outbox((store) => ids.map((id) => store.delete(id))),
    adopt: () =>
      // One tab at a time: two tabs cannot adopt the same orphan. Held and pending locks
      // alike count as alive: a tab just opened may still wait for its own.
      exclusively(async () => {
        const alive = Object.values({ ...(await locks?.query()) }).flat();
        // Re-owns the stored events of tabs that are gone and returns them.
        // (IndexedDB failed: no list, and the catch below adopts nothing; so do the locks failing.)
        const orphans = ((await stored()) as StoredEvent[]).filter(
          (e) => e.tab !== tab && !alive.some((lock) => lock.name === TAB_LOCK + e.tab),
        );
        // Only events this tab now owns are sent by it: another tab may take them otherwise.
        return (await put(orphans)) ? orphans : [];
      }).catch(() => []),
    wipe() {
      safely(() => delete localStorage[RECORD_KEY]);
      void outbox((store) => store.clear());
    },
    leave() {
      // After the writes this page just started (a beacon's deletes), never before them: once the
      // lock is gone another tab may adopt what is still stored. Also when IndexedDB could not be
      // opened (a private mode): nothing is stored then, and a lock kept gets the page evicted from
      // the back/forward cache as soon as another page of the site looks for closed tabs' events.
      const letGo = () => release();
      if (database) void database.then(letGo, letGo);
      else letGo();
    },
    async rejoin() {
      hold();
      // Nothing stored when the database was never opened.
      return database && (await exclusively(stored))?.filter((e) => e.tab === tab).map((e) => e.id);
    },
  };
}

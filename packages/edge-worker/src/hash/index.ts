/**
 * A small, fast, non-cryptographic 32-bit hash for keys the edge derives from ids: holdout
 * groups, co-visitation shards, the "viewed next" pairs a person has counted. Its values are
 * part of stored and shared state (a changed hash reshuffles the holdout group and moves
 * every co-visitation shard), so they are pinned by tests.
 */

/** 32-bit FNV-1a over UTF-16 code units, then the murmur3 finalizer to spread similar ids. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

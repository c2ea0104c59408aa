/** Test support: the shop's identity marker held in memory (the shop's own is localStorage). */
import type { IdentityMarker } from './identity-marker.ts';

/** A marker held in memory, its value readable by the test. */
export function memoryMarker(initial?: string): IdentityMarker & { value: string | undefined } {
  const m = {
    value: initial,
    read: () => m.value,
    write: (userId: string) => {
      m.value = userId;
    },
    clear: () => {
      m.value = undefined;
    },
  };
  return m;
}

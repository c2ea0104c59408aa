'use client';
/** Records one `search.performed` per search page load. */
import { useEffect, useRef } from 'react';
import { useAttune } from './attune';

export function TrackSearch({ query, results }: { query: string; results: number }) {
  const attune = useAttune();
  const sent = useRef(false);
  useEffect(() => {
    if (attune === undefined || sent.current) return;
    sent.current = true;
    attune.track('search.performed', { query, results });
  }, [attune, query, results]);
  return null;
}

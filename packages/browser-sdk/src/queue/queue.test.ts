import { describe, expect, it } from 'vitest';
import { enqueue } from './queue.ts';

describe('enqueue', () => {
  it('keeps every item while under the limit', () => {
    const queue: number[] = [];
    for (let i = 0; i < 3; i++) expect(enqueue(queue, i, 3)).toEqual([]);
    expect(queue).toEqual([0, 1, 2]);
  });

  it('drops the oldest items beyond the limit and returns them', () => {
    const queue = [1, 2, 3];
    expect(enqueue(queue, 4, 3)).toEqual([1]);
    expect(queue).toEqual([2, 3, 4]);
  });

  it('trims a queue that was over its limit (e.g. after adopting stored events)', () => {
    const queue = [1, 2, 3, 4, 5];
    expect(enqueue(queue, 6, 2)).toEqual([1, 2, 3, 4]);
    expect(queue).toEqual([5, 6]);
  });
});

import { describe, expect, it } from 'vitest';
import { Deque } from '../src/deque.js';

describe('Deque', () => {
  it('keeps FIFO order through wrap-around, growth and unshift', () => {
    const deque = new Deque<number>();
    const model: number[] = [];
    let next = 0;
    // Mixed operations across several growths and many wraps of the mask.
    for (let step = 0; step < 5_000; step++) {
      const op = (step * 7919) % 10;
      if (op < 5) {
        deque.push(next);
        model.push(next++);
      } else if (op < 7) {
        deque.unshift(next);
        model.unshift(next++);
      } else {
        expect(deque.shift()).toBe(model.shift());
      }
      expect(deque.length).toBe(model.length);
    }
    expect([...deque]).toEqual(model);
    while (model.length > 0) expect(deque.shift()).toBe(model.shift());
    expect(deque.shift()).toBeUndefined();
    deque.clear();
    deque.unshift(1);
    deque.push(2);
    expect([...deque]).toEqual([1, 2]);
  });
});

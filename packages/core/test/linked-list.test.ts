import { describe, expect, it } from 'vitest';
import { LinkedList, ListNode } from '../src/linked-list.js';

class Item extends ListNode {
  constructor(readonly n: number) {
    super();
  }
}

const numbers = (list: LinkedList<Item>) => [...list].map((item) => item.n);

describe('LinkedList', () => {
  it('keeps the order of adding, each item once, through deletes anywhere', () => {
    const list = new LinkedList<Item>();
    const items = [1, 2, 3, 4, 5].map((n) => new Item(n));
    for (const item of items) expect(list.add(item)).toBe(true);
    expect(list.add(items[0] as Item)).toBe(false);
    expect(list.delete(items[2] as Item)).toBe(true);
    expect(list.delete(items[2] as Item)).toBe(false);
    expect(list.delete(items[0] as Item)).toBe(true);
    expect(list.delete(items[4] as Item)).toBe(true);
    expect(numbers(list)).toEqual([2, 4]);
    expect(list.size).toBe(2);
    expect(list.first()?.n).toBe(2);
    // Back in, at the end.
    list.add(items[0] as Item);
    expect(numbers(list)).toEqual([2, 4, 1]);
    expect(list.has(items[2] as Item)).toBe(false);
  });

  it('lets the loop delete the item it is on', () => {
    const list = new LinkedList<Item>();
    for (const n of [1, 2, 3, 4]) list.add(new Item(n));
    for (const item of list) if (item.n % 2 === 0) list.delete(item);
    expect(numbers(list)).toEqual([1, 3]);
    for (const item of list) list.delete(item);
    expect(list.size).toBe(0);
    expect(list.first()).toBeUndefined();
  });

  it('drains in order, leaving every item free to join a list again', () => {
    const list = new LinkedList<Item>();
    const items = [1, 2, 3].map((n) => new Item(n));
    for (const item of items) list.add(item);
    list.delete(items[1] as Item);
    expect(list.drain().map((item) => item.n)).toEqual([1, 3]);
    expect(list.size).toBe(0);
    expect(list.first()).toBeUndefined();
    expect(list.has(items[0] as Item)).toBe(false);
    expect(list.add(items[2] as Item)).toBe(true);
    expect(numbers(list)).toEqual([3]);
  });
});

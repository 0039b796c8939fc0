// Array helpers that stay safe at any size. `target.push(...items)` and `Math.max(...items)` pass every
// element as a call argument, which overflows the stack somewhere above ~100k elements: input of a
// million objects must only ever be walked by loops.

/** Append every item to `target` (push(...items) without the argument-count limit). */
export function appendAll<T>(target: T[], items: Iterable<T>): void {
  for (const item of items) target.push(item);
}

/** The largest of `values`, or `fallback` when there are none (Math.max(...values) without the limit). */
export function maxOf(values: Iterable<number>, fallback = -Infinity): number {
  let max = fallback;
  for (const v of values) if (v > max) max = v;
  return max;
}

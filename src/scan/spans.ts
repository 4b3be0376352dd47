/**
 * Sorted spans of a text, searched and joined: the findings, quotations, code blocks and
 * override runs the injection scan checks a match against, and the inert phrases of the cue
 * scanner. Pure.
 */

/**
 * The first index in [0, length) at which `before(i)` is false, for a `before` that is true up
 * to some index and false after it (a binary search).
 */
export function partitionPoint(length: number, before: (i: number) => boolean): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `spans` sorted by start (in place) and joined where they touch or overlap, as new pairs. */
export function mergeSpans(spans: [number, number][]): [number, number][] {
  spans.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of spans) {
    const last = out[out.length - 1];
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

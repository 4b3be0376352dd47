/**
 * Maximal runs of characters from one ASCII class, at least `minLength` long, found by skipping:
 * when the character `minLength - 1` ahead of a candidate start is not in the class, no run long
 * enough can start anywhere before it, so most of ordinary text is never read. (A regex such as
 * `[A-Za-z0-9+/_-]{16,}` is tried at every position; this reads about one character in
 * `minLength` where runs are short, and each character at most twice where they are long.)
 */

/** A class as a 128-entry table: 1 for the ASCII codes in it. Non-ASCII characters are never in a class. */
export type ClassTable = Uint8Array;

/** The table of the characters in `chars` (ranges written out: the caller lists them). */
export function classTable(chars: string): ClassTable {
  const t = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) {
    const c = chars.charCodeAt(i);
    if (c >= 128) throw new Error("class tables hold ASCII only");
    t[c] = 1;
  }
  return t;
}

/**
 * Calls `visit(start, end)` for every maximal run of class characters in `text` of at least
 * `minLength` (>= 1), left to right; `end` is exclusive.
 */
export function forEachClassRun(text: string, members: ClassTable, minLength: number, visit: (start: number, end: number) => void): void {
  const n = text.length;
  const last = minLength - 1;
  // Invariant: `start` is 0 or follows a character outside the class, so a run found from it is maximal.
  let start = 0;
  while (start + minLength <= n) {
    const probe = start + last;
    const c = text.charCodeAt(probe);
    if (c >= 128 || members[c] === 0) {
      start = probe + 1;
      continue;
    }
    let k = probe - 1;
    while (k >= start) {
      const b = text.charCodeAt(k);
      if (b >= 128 || members[b] === 0) break;
      k--;
    }
    if (k >= start) {
      // Too short: the run from k + 1 reaches `probe` only; a long one must reach k + minLength.
      start = k + 1;
      continue;
    }
    let end = probe + 1;
    while (end < n) {
      const b = text.charCodeAt(end);
      if (b >= 128 || members[b] === 0) break;
      end++;
    }
    visit(start, end);
    start = end + 1;
  }
}

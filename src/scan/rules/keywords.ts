/**
 * The keyword prefilter: every keyword of every rule found in ONE pass over the text, with the
 * positions of its first occurrences. An Aho-Corasick automaton (Aho & Corasick, CACM 1975),
 * completed into a DFA over a small alphabet: the characters that occur in keywords, upper-case
 * ASCII letters folded onto lower case, everything else one class that leads back to the root.
 * One table lookup per character, no lower-cased copy of the text, no per-keyword pass (173
 * `includes` calls over 1 MiB cost more than every rule's regex together).
 */
import { isAscii, wideRuns } from "../ascii.ts";
import { cachedAutomaton, type AutomatonData } from "../automata-store.ts";

export interface KeywordHits {
  /** Occurrences of keyword k in the last scan. */
  readonly counts: Int32Array;
  /** The keywords that occur (counts[k] > 0): `found[0 .. foundCount)`. */
  readonly found: Int32Array;
  readonly foundCount: number;
  /**
   * Start offsets of every occurrence of keyword k, ascending:
   * `positions[offsets[k] .. offsets[k] + counts[k])` (only meaningful when counts[k] > 0).
   */
  readonly positions: Int32Array;
  readonly offsets: Int32Array;
}

export interface KeywordMatcher {
  readonly keywords: readonly string[];
  /** Scans `text`; the returned arrays are reused by the next call (read them before scanning again). */
  scan(text: string): KeywordHits;
}

/**
 * A keyword written with `\b` in front (`\bnc `) counts only where it starts a word: not right
 * after a letter, digit or `_`, as a regular expression's `\b` reads it, and the rule's pattern
 * must then put one before it in every match. Short command names are inside everyday words
 * (`nc ` in every `async `): the rule would otherwise run around each.
 */
export const WORD_START = "\\b";

/** A keyword as the automaton reads it (without WORD_START), and whether it must start a word. */
export function keywordText(keyword: string): { text: string; wordStart: boolean } {
  return keyword.startsWith(WORD_START) ? { text: keyword.slice(WORD_START.length), wordStart: true } : { text: keyword, wordStart: false };
}

/** An ASCII letter, digit or `_`: a word character as a regular expression's `\w` reads it. */
export const isWordUnit = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95;

/**
 * Builds the matcher. Keywords are lower-case and printable (the rule schema checks). Keywords
 * beyond ASCII (injection rules in Russian, Chinese, ...) get an automaton of their own, run only
 * on text that has a non-ASCII character: in one table, their few hundred letters would widen
 * every row of the ASCII keywords' (megabytes, for nothing in English text).
 */
export function compileKeywords(written: readonly string[]): KeywordMatcher {
  const parsed = written.map(keywordText);
  const keywords = parsed.map((k) => k.text);
  const wordStart = Uint8Array.from(parsed, (k) => (k.wordStart ? 1 : 0));
  for (const k of keywords) {
    if (k.length === 0 || /[\x00-\x1f\x7f]/.test(k) || k !== k.toLowerCase()) throw new Error(`keyword ${JSON.stringify(k)} must be non-empty, lower-case and printable`);
  }
  const ascii: number[] = [];
  const wide: number[] = [];
  keywords.forEach((k, i) => (/[^\x00-\x7f]/.test(k) ? wide : ascii).push(i));
  const parts = [ascii, wide]
    .filter((ids) => ids.length > 0)
    .map((ids) => ({ wide: ids === wide, reach: Math.max(...ids.map((i) => keywords[i]!.length)) - 1, run: buildAutomaton(ids.map((i) => keywords[i]!), Int32Array.from(ids), wordStart) }));
  const tables = new Tables(keywords);
  let positions = new Int32Array(64);
  const offsets = new Int32Array(keywords.length);
  const hits = { counts: tables.counts, found: tables.found, foundCount: 0, positions, offsets };

  return {
    keywords: written,
    scan(text: string): KeywordHits {
      tables.reset();
      let nonAscii: boolean | null = null;
      for (const part of parts) {
        if (!part.wide) part.run(text, tables, 0, text.length);
        else if ((nonAscii ??= !isAscii(text))) {
          // Each of these keywords has a character beyond ASCII: only the stretches within
          // `reach` (the longest less one) of the text's runs beyond ASCII (wideRuns, when they
          // are few) can hold one, so only those are read, merged where they touch, each from
          // the automaton's start.
          const runs = wideRuns(text);
          if (runs === null) part.run(text, tables, 0, text.length);
          else {
            for (let r = 0; r < runs.length; ) {
              const from = Math.max(0, runs[r]! - part.reach);
              let to = Math.min(text.length, runs[r + 1]! + part.reach);
              for (r += 2; r < runs.length && runs[r]! - part.reach <= to; r += 2) to = Math.min(text.length, runs[r + 1]! + part.reach);
              part.run(text, tables, from, to);
            }
          }
        }
      }
      // Every hit to its keyword's slice of `positions` (each automaton records in text order,
      // and no keyword is in both).
      const { counts, found, foundCount } = tables;
      const total = tables.hits.count;
      if (positions.length < total) hits.positions = positions = new Int32Array(Math.max(total, 2 * positions.length));
      let at = 0;
      for (let i = 0; i < foundCount; i++) {
        const k = found[i]!;
        offsets[k] = at;
        at += counts[k]!;
      }
      const cursor = tables.cursor;
      for (let i = 0; i < foundCount; i++) cursor[found[i]!] = offsets[found[i]!]!;
      const h = tables.hits;
      for (let i = 0; i < h.count; i++) {
        const k = h.keys[i]!;
        positions[cursor[k]!++] = h.starts[i]!;
      }
      hits.foundCount = foundCount;
      return hits;
    },
  };
}

/** Hits of a scan, in text order: keyword id and start offset. */
class HitList {
  keys = new Int32Array(64);
  starts = new Int32Array(64);
  count = 0;

  push(k: number, start: number): void {
    if (this.count === this.keys.length) {
      const keys = new Int32Array(2 * this.count);
      const starts = new Int32Array(2 * this.count);
      keys.set(this.keys);
      starts.set(this.starts);
      this.keys = keys;
      this.starts = starts;
    }
    this.keys[this.count] = k;
    this.starts[this.count++] = start;
  }
}

/** Where automata record their hits, by keyword id (shared by the automata of one matcher). */
class Tables {
  readonly lengths: Int32Array;
  readonly counts: Int32Array;
  readonly found: Int32Array;
  foundCount = 0;
  readonly cursor: Int32Array;
  readonly hits = new HitList();

  constructor(keywords: readonly string[]) {
    this.lengths = Int32Array.from(keywords, (k) => k.length);
    this.counts = new Int32Array(keywords.length);
    this.found = new Int32Array(keywords.length);
    this.cursor = new Int32Array(keywords.length);
  }

  reset(): void {
    // Only what the last scan found is non-zero: reset that, not the whole table.
    for (let i = 0; i < this.foundCount; i++) this.counts[this.found[i]!] = 0;
    this.foundCount = 0;
    this.hits.count = 0;
  }

  /** Records keyword k ending at `last` (inclusive). */
  add(k: number, last: number): void {
    if (this.counts[k]!++ === 0) this.found[this.foundCount++] = k;
    this.hits.push(k, last + 1 - this.lengths[k]!);
  }
}

/**
 * An Aho-Corasick automaton over `keywords` as a complete DFA. `delta[row + classOf(c)]` is the
 * next state's row offset (state * width), negated when that state ends a keyword; the keywords
 * (indices into `keywords`) a state at row r ends are `outList[outAt[r / width] + 1 ..]`, their
 * number at `outList[outAt[r / width]]`. Shared by the keyword prefilter and the injection cue
 * matcher (scan/injection/cues.ts).
 */
export interface Dfa {
  /** Character class of an ASCII code; 0 for a character no keyword uses. */
  readonly classOf: Uint16Array;
  /** Character class of a non-ASCII code unit (its upper case included). */
  readonly wide: Map<number, number>;
  readonly width: number;
  readonly delta: Int32Array;
  readonly outAt: Int32Array;
  readonly outList: Int32Array;
}

/** A Dfa as plain data and back (scan/automata-store.ts). */
export const DFA_CODEC = {
  toData: (d: Dfa): AutomatonData => ({ classOf: d.classOf, wide: d.wide, width: d.width, delta: d.delta, outAt: d.outAt, outList: d.outList }),
  fromData: (d: AutomatonData): Dfa => ({ classOf: d.classOf as Uint16Array, wide: d.wide as Map<number, number>, width: d.width as number, delta: d.delta as Int32Array, outAt: d.outAt as Int32Array, outList: d.outList as Int32Array }),
};

/** buildDfa, or the same automaton prebuilt (scan/automata-store.ts). */
export function cachedDfa(kind: string, keywords: readonly string[]): Dfa {
  return cachedAutomaton(kind, keywords, () => buildDfa(keywords), DFA_CODEC);
}

export function buildDfa(keywords: readonly string[]): Dfa {
  // Alphabet: class 0 for any character no keyword uses; A-Z share the class of a-z, and so does
  // the upper case of a non-ASCII letter (when it is one UTF-16 unit).
  const classOf = new Uint16Array(128);
  const wide = new Map<number, number>();
  let width = 1;
  const classFor = (c: number): number => (c < 128 ? classOf[c]! : (wide.get(c) ?? 0));
  for (const k of keywords) {
    for (let i = 0; i < k.length; i++) {
      const c = k.charCodeAt(i);
      if (classFor(c) !== 0) continue;
      const cls = width++;
      if (c < 128) classOf[c] = cls;
      else {
        wide.set(c, cls);
        const upper = String.fromCharCode(c).toUpperCase();
        if (upper.length === 1 && upper.charCodeAt(0) !== c && upper.charCodeAt(0) >= 128) wide.set(upper.charCodeAt(0), cls);
      }
    }
  }
  for (let c = 65; c <= 90; c++) classOf[c] = classOf[c + 32]!;

  // Trie, straight into the transition table (no Map or array per state: thousands of phrases
  // make tens of thousands of states). 0 is "no edge": no edge leads back to the root.
  let size = 1;
  for (const k of keywords) size += k.length;
  let table = new Int32Array(size * width);
  let states = 1;
  // A keyword's id is listed at the state it ends: the first one there, then a chain.
  const ownFirst = new Int32Array(size).fill(-1);
  const ownNext = new Int32Array(keywords.length).fill(-1);
  keywords.forEach((k, id) => {
    let s = 0;
    for (let i = 0; i < k.length; i++) {
      const at = s * width + classFor(k.charCodeAt(i));
      if (table[at] === 0) table[at] = states++;
      s = table[at]!;
    }
    ownNext[id] = ownFirst[s]!;
    ownFirst[s] = id;
  });
  if (states < size) table = table.slice(0, states * width);

  // Breadth first: failure links, and the table completed into a DFA (a missing edge takes the
  // failure state's); a state ends what it ends itself and what its failure state ends.
  const fail = new Int32Array(states);
  const outCount = new Int32Array(states);
  const queue = new Int32Array(states);
  let tail = 0;
  for (let cls = 0; cls < width; cls++) if (table[cls] !== 0) queue[tail++] = table[cls]!;
  for (let head = 0; head < tail; head++) {
    const s = queue[head]!;
    for (let id = ownFirst[s]!; id >= 0; id = ownNext[id]!) outCount[s]!++;
    outCount[s]! += outCount[fail[s]!]!;
    for (let cls = 0; cls < width; cls++) {
      const t = table[s * width + cls]!;
      if (t === 0) table[s * width + cls] = table[fail[s]! * width + cls]!;
      else {
        fail[t] = table[fail[s]! * width + cls]!;
        queue[tail++] = t;
      }
    }
  }
  // Outputs: [count, ids...] per state that ends something; the others share the root's empty entry.
  let total = 1;
  for (let s = 1; s < states; s++) if (outCount[s]! > 0) total += 1 + outCount[s]!;
  const outList = new Int32Array(total);
  const outAt = new Int32Array(states);
  let pos = 1;
  for (let s = 1; s < states; s++) {
    if (outCount[s] === 0) continue;
    outAt[s] = pos;
    outList[pos++] = outCount[s]!;
    for (let f = s; f !== 0; f = fail[f]!) for (let id = ownFirst[f]!; id >= 0; id = ownNext[id]!) outList[pos++] = id;
  }
  // States renumbered breadth first, so the shallow states a scan spends most of its time in have
  // neighbouring rows (a table of tens of thousands of rows does not fit in a cache); row offsets
  // (state * width) stored so the scan loop does no multiplication, negated for states that end
  // a keyword so one load tells both (the root, 0, ends none).
  const rank = new Int32Array(states);
  for (let i = 0; i < tail; i++) rank[queue[i]!] = i + 1;
  const delta = new Int32Array(states * width);
  const outAtRanked = new Int32Array(states);
  for (let o = 0; o < states; o++) {
    const n = rank[o]!;
    outAtRanked[n] = outAt[o]!;
    for (let cls = 0; cls < width; cls++) {
      const t = table[o * width + cls]!;
      delta[n * width + cls] = outCount[t]! > 0 ? -rank[t]! * width : rank[t]! * width;
    }
  }
  return { classOf, wide, width, delta, outAt: outAtRanked, outList };
}

/** Texts shorter than this are read by one chain: splitting them saves nothing. */
const CHAINS_MIN = 1024;

/** Where chains 1 to 3 found hits (row, place) while the one before them was still reading. */
const held = [new Int32Array(256), new Int32Array(256), new Int32Array(256)];

/**
 * Walks the complete DFA `delta` (buildDfa's shape: row offsets, negative for a state
 * that ends something) over `text`, character classes from `classes`, and calls `hit(row, i)`
 * for every such state reached at i, in order of i.
 *
 * A DFA step is a load whose address depends on the previous step's load, so one chain of them
 * runs at the speed of the cache's latency, not its throughput. A long text is read as four
 * chains interleaved in one loop, a quarter each, which lets the processor overlap their loads:
 * two were about 1.7x the speed of one (bench:scan), and four read the injection cues' table of
 * megabytes 1.3x as fast as two (in isolation: 35 ms for the bench's 10 MiB as one chain, 24 as
 * two, 18 as four; eight, 20: the loop runs out of registers). Chain c starts at `warm(q_c)`, far
 * enough before its quarter q_c that every match ending there is whole, and reports only what
 * ends in its quarter (held back until the chains before it are done); each reads on alone to
 * its quarter's end.
 */
export function walkChains(text: string, delta: Int32Array, classes: Uint16Array, warm: (at: number) => number, hit: (row: number, i: number) => void): void {
  const n = text.length;
  if (n < CHAINS_MIN) {
    for (let i = 0, s = 0; i < n; i++) {
      s = delta[s + classes[text.charCodeAt(i)]!]!;
      if (s < 0) hit((s = -s), i);
    }
    return;
  }
  const q1 = n >> 2;
  const q2 = n >> 1;
  const q3 = q1 + q2;
  let i0 = 0;
  let i1 = warm(q1);
  let i2 = warm(q2);
  let i3 = warm(q3);
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const count = [0, 0, 0];
  const hold = (chain: number, row: number, i: number) => {
    let list = held[chain]!;
    const k = count[chain]!;
    if (k + 2 > list.length) {
      const more = new Int32Array(2 * list.length);
      more.set(list);
      held[chain] = list = more;
    }
    list[k] = row;
    list[k + 1] = i;
    count[chain] = k + 2;
  };
  // In step while each has its quarter ahead (the first's is the shortest).
  for (; i0 < q1; i0++, i1++, i2++, i3++) {
    a = delta[a + classes[text.charCodeAt(i0)]!]!;
    b = delta[b + classes[text.charCodeAt(i1)]!]!;
    c = delta[c + classes[text.charCodeAt(i2)]!]!;
    d = delta[d + classes[text.charCodeAt(i3)]!]!;
    if ((a | b | c | d) >= 0) continue;
    if (a < 0) hit((a = -a), i0);
    if (b < 0) {
      b = -b;
      if (i1 >= q1) hold(0, b, i1);
    }
    if (c < 0) {
      c = -c;
      if (i2 >= q2) hold(1, c, i2);
    }
    if (d < 0) {
      d = -d;
      if (i3 >= q3) hold(2, d, i3);
    }
  }
  // Each chain on alone to its quarter's end, after what it held back.
  const rest = (chain: number, s: number, i: number, end: number) => {
    const list = held[chain]!;
    for (let k = 0, m = count[chain]!; k < m; k += 2) hit(list[k]!, list[k + 1]!);
    for (; i < end; i++) {
      s = delta[s + classes[text.charCodeAt(i)]!]!;
      if (s < 0) hit((s = -s), i);
    }
  };
  rest(0, b, i1, q2);
  rest(1, c, i2, q3);
  rest(2, d, i3, n);
}

/**
 * One automaton over `keywords`, whose ids in the shared tables are `ids`. Returns its scan,
 * which records hits in the tables (walkChains: each chain from maxLength - 1 before its quarter).
 */
function buildAutomaton(keywords: readonly string[], ids: Int32Array, wordStart: Uint8Array): (text: string, t: Tables, from: number, to: number) => void {
  const { classOf, wide, width, delta, outAt, outList } = cachedDfa("keyword-dfa", keywords);
  // Every UTF-16 code unit's class in one table (128 KiB): no branch on ASCII in the loop, and an
  // ASCII text only ever reads its first 256 bytes.
  const classes = new Uint16Array(65536);
  classes.set(classOf);
  for (const [c, cls] of wide) classes[c] = cls;
  const maxLength = Math.max(...keywords.map((k) => k.length));
  const warm = (at: number) => Math.max(0, at - maxLength + 1);
  return (text: string, t: Tables, from: number, to: number): void => {
    const hit = (row: number, last: number) => {
      const o = outAt[(row / width) | 0]!;
      for (let j = o + 1, end = o + 1 + outList[o]!; j < end; j++) {
        const k = ids[outList[j]!]!;
        const start = last + 1 - t.lengths[k]!;
        if (wordStart[k] === 1 && start > 0 && isWordUnit(text.charCodeAt(start - 1))) continue;
        t.add(k, last);
      }
    };
    if (from === 0 && to === text.length) walkChains(text, delta, classes, warm, hit);
    else {
      // A stretch (the wide keywords'): one chain, from the root at `from`.
      for (let i = from, s = 0; i < to; i++) {
        s = delta[s + classes[text.charCodeAt(i)]!]!;
        if (s < 0) hit((s = -s), i);
      }
    }
  };
}

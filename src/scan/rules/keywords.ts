/**
 * The keyword prefilter: every keyword of every rule found in ONE pass over the text, with the
 * positions of its first occurrences. An Aho-Corasick automaton (Aho & Corasick, CACM 1975),
 * completed into a DFA over a small alphabet: the characters that occur in keywords, upper-case
 * ASCII letters folded onto lower case, everything else one class that leads back to the root.
 * One table lookup per character, no lower-cased copy of the text, no per-keyword pass (173
 * `includes` calls over 1 MiB cost more than every rule's regex together).
 */

/** Positions kept per keyword and scan; past this the keyword is only counted. */
export const MAX_POSITIONS = 32;

export interface KeywordHits {
  /** Occurrences of keyword k in the last scan (all of them, not capped). */
  readonly counts: Int32Array;
  /** The keywords that occur (counts[k] > 0), in order of first occurrence: `found[0 .. foundCount)`. */
  readonly found: Int32Array;
  readonly foundCount: number;
  /** Start offsets of the first MAX_POSITIONS occurrences of keyword k: `positions[k * MAX_POSITIONS + i]`. */
  readonly positions: Int32Array;
}

export interface KeywordMatcher {
  readonly keywords: readonly string[];
  /** Scans `text`; the returned arrays are reused by the next call (read them before scanning again). */
  scan(text: string): KeywordHits;
}

/**
 * Builds the matcher. Keywords are lower-case and printable (the rule schema checks). Keywords
 * beyond ASCII (injection rules in Russian, Chinese, ...) get an automaton of their own, run only
 * on text that has a non-ASCII character: in one table, their few hundred letters would widen
 * every row of the ASCII keywords' (megabytes, for nothing in English text).
 */
export function compileKeywords(keywords: readonly string[]): KeywordMatcher {
  for (const k of keywords) {
    if (k.length === 0 || /[\x00-\x1f\x7f]/.test(k) || k !== k.toLowerCase()) throw new Error(`keyword ${JSON.stringify(k)} must be non-empty, lower-case and printable`);
  }
  const ascii: number[] = [];
  const wide: number[] = [];
  keywords.forEach((k, i) => (/[^\x00-\x7f]/.test(k) ? wide : ascii).push(i));
  const parts = [ascii, wide]
    .filter((ids) => ids.length > 0)
    .map((ids) => ({ wide: ids === wide, run: buildAutomaton(ids.map((i) => keywords[i]!), Int32Array.from(ids)) }));
  const tables: Tables = {
    lengths: Int32Array.from(keywords, (k) => k.length),
    counts: new Int32Array(keywords.length),
    positions: new Int32Array(keywords.length * MAX_POSITIONS),
    found: new Int32Array(keywords.length),
  };
  const hits = { counts: tables.counts, positions: tables.positions, found: tables.found, foundCount: 0 };

  return {
    keywords,
    scan(text: string): KeywordHits {
      // Only what the last scan found is non-zero: reset that, not the whole table.
      for (let i = 0; i < hits.foundCount; i++) tables.counts[tables.found[i]!] = 0;
      let foundCount = 0;
      let nonAscii: boolean | null = null;
      for (const part of parts) {
        if (part.wide && !(nonAscii ??= Buffer.byteLength(text, "utf8") !== text.length)) continue;
        foundCount = part.run(text, tables, foundCount);
      }
      hits.foundCount = foundCount;
      return hits;
    },
  };
}

/** Where automata record their hits, by keyword id (shared by the automata of one matcher). */
interface Tables {
  readonly lengths: Int32Array;
  readonly counts: Int32Array;
  readonly positions: Int32Array;
  readonly found: Int32Array;
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

/**
 * One automaton over `keywords`, whose ids in the shared tables are `ids`. Returns its scan,
 * which records hits in the tables and returns the new count of keywords found.
 */
function buildAutomaton(keywords: readonly string[], ids: Int32Array): (text: string, t: Tables, foundCount: number) => number {
  const { classOf, wide, width, delta, outAt, outList } = buildDfa(keywords);
  const asciiOnly = wide.size === 0;
  return (text: string, t: Tables, foundCount: number): number => {
    const { lengths, counts, positions, found } = t;
    let row = 0;
    for (let i = 0, n = text.length; i < n; i++) {
      const c = text.charCodeAt(i);
      row = delta[row + (c < 128 ? classOf[c]! : asciiOnly ? 0 : (wide.get(c) ?? 0))]!;
      if (row >= 0) continue;
      row = -row;
      // A hit is rare: the state is its row offset divided by the width.
      const o = outAt[(row / width) | 0]!;
      for (let j = o + 1, end = o + 1 + outList[o]!; j < end; j++) {
        const k = ids[outList[j]!]!;
        const seen = counts[k]!;
        if (seen === 0) found[foundCount++] = k;
        if (seen < MAX_POSITIONS) positions[k * MAX_POSITIONS + seen] = i + 1 - lengths[k]!;
        counts[k] = seen + 1;
      }
    }
    return foundCount;
  };
}


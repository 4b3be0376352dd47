import { BASE32_RUN, decodeBase32Run } from "./base32.ts";
import { decodeBase64CandidateRange } from "./base64.ts";
import { decodeHexRange, decodeHexRun, HEX_RUN } from "./hex.ts";
import { classRuns, classTable } from "../class-runs.ts";

/**
 * A run of the base64 alphabets (both, RFC 4648 §4-5) and up to six `=`. Every base64, base32
 * (§6, padding up to six) and plain or dash-separated hex run is inside one, so a single pass
 * over the text finds the candidates of all three decoders: three regex passes over every body
 * cost three times one.
 */
// Found by skipping (class-runs.ts), as `[A-Za-z0-9+/_-]{16,}` maximal runs; the padding is
// counted after each.
const ALPHABET = classTable("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-");
const MIN_RUN = 16;
const MAX_PAD = 6;
/** Hex pairs separated by `:` or a space: the separators are outside the base64 alphabet (hex.ts). */
const SPACED_HEX = /[0-9A-Fa-f]{2}([: ])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){6,}/g;
/** Eight or more bytes written as `\xNN` escapes. */
const ESCAPED_HEX = /(?:\\x[0-9A-Fa-f]{2}){8,}/g;
/** One byte written as a `\xNN` escape; printable ones are decoded alone when a text has this many. */
const ESCAPED_BYTE = /\\x([0-9A-Fa-f]{2})/g;
const MIN_SINGLE_ESCAPES = 4;
/** What a SPACED_HEX match is made of, and its shortest length (8 pairs, 7 separators). */
const SPACED_HEX_CHARS = classTable("0123456789ABCDEFabcdef: ");
const SPACED_HEX_MIN = 23;
/** Both classes' runs come from the process's class-run index (SIMD, class-runs.ts). */
const ALPHABET_RUNS = classRuns.register({ members: ALPHABET, minLength: MIN_RUN });
const SPACED_HEX_RUNS = classRuns.register({ members: SPACED_HEX_CHARS, minLength: SPACED_HEX_MIN });
/** Narrowest line width taken for wrapped base64 (PEM uses 64, MIME and `base64` 76). */
const MIN_WRAP_WIDTH = 40;

/**
 * What each character of a run is, so one pass over a run tells which decoders can use it
 * (most runs, identifiers, paths and ids, reach no decoder's regex): bits for a hex digit of
 * either case, a base32 character of either case (RFC 4648 §6, case kept apart: mixed case is a
 * word), and what makes a run not hex-shaped.
 */
const HEX = 1;
const B32_UPPER = 2;
const B32_LOWER = 4;
const HEX_LOWER_LETTER = 8;
const HEX_UPPER_LETTER = 16;
const NOT_HEX = 32;
const DASH = 64;
const SHAPE = (() => {
  const t = new Uint8Array(128);
  for (let c = 0; c < 128; c++) {
    const ch = String.fromCharCode(c);
    if (/[0-9A-Fa-f]/.test(ch)) t[c]! |= HEX;
    if (/[A-Z2-7]/.test(ch)) t[c]! |= B32_UPPER;
    if (/[a-z2-7]/.test(ch)) t[c]! |= B32_LOWER;
    if (/[a-f]/.test(ch)) t[c]! |= HEX_LOWER_LETTER;
    if (/[A-F]/.test(ch)) t[c]! |= HEX_UPPER_LETTER;
    if (/[G-Zg-z+/_=]/.test(ch)) t[c]! |= NOT_HEX;
    if (ch === "-") t[c]! |= DASH;
  }
  return t;
})();

export interface RunViews {
  base64: string | null;
  /** The base64 view with each wrapped block (fixed-width lines) decoded as one run; null when there is none. */
  base64Wrapped: string | null;
  base32: string | null;
  hex: string | null;
}

type Span = readonly [start: number, end: number, text: string];

/** True when `text[from, to)` holds two hex pairs and dashes, `de-ad-`: a dash-separated hex run may start there (hex.ts). */
function hasDashedPairs(text: string, from: number, to: number): boolean {
  const hex = (i: number) => (SHAPE[text.charCodeAt(i)]! & HEX) !== 0;
  for (let i = from; i + 6 <= to; i++) {
    if (text.charCodeAt(i + 2) === 45 && text.charCodeAt(i + 5) === 45 && hex(i) && hex(i + 1) && hex(i + 3) && hex(i + 4)) return true;
  }
  return false;
}

/** Shortest stretch of hex or base32 characters that a decoder takes (hex.ts, base32.ts). */
const STRETCH = 16;

/**
 * Which of HEX, B32_UPPER and B32_LOWER have a stretch of STRETCH characters in `text[from, to)`,
 * as those bits, and DASH when it has a dash. Without a branch on each character: in random data
 * (an image) every such branch would be a coin toss.
 */
function stretches(text: string, from: number, to: number): number {
  let hexRun = 0;
  let upperRun = 0;
  let lowerRun = 0;
  let found = 0;
  for (let i = from; i < to; i++) {
    const k = SHAPE[text.charCodeAt(i)]!;
    found |= k & DASH;
    hexRun = (hexRun + 1) * (k & HEX);
    upperRun = (upperRun + 1) * ((k & B32_UPPER) >> 1);
    lowerRun = (lowerRun + 1) * ((k & B32_LOWER) >> 2);
    if ((hexRun | upperRun | lowerRun) >= STRETCH) {
      if (hexRun >= STRETCH) found |= HEX;
      if (upperRun >= STRETCH) found |= B32_UPPER;
      if (lowerRun >= STRETCH) found |= B32_LOWER;
    }
  }
  return found;
}

/** `text` with the spans (sorted, non-overlapping) replaced, or null when there are none. */
function splice(text: string, spans: readonly Span[]): string | null {
  if (spans.length === 0) return null;
  let out = "";
  let last = 0;
  for (const [start, end, replacement] of spans) {
    out += text.slice(last, start) + replacement;
    last = end;
  }
  return out + text.slice(last);
}

/** Pushes the decodable matches of `re` inside `run` (at `at` in the text) as spans; returns the budget left. */
function decodeWithin(run: string, at: number, re: RegExp, decode: (run: string, maxOut: number) => string | null, left: number, out: Span[]): number {
  re.lastIndex = 0;
  for (let m = re.exec(run); m !== null; m = re.exec(run)) {
    const d = decode(m[0], left);
    if (d === null || d === m[0]) continue;
    left -= d.length;
    out.push([at + m.index, at + m.index + m[0].length, d]);
  }
  return left;
}

/**
 * The base64, base32 and hex views of `text` (each as base64Decode, base32Decode and hexDecode
 * would produce it), from one pass over the text. Each decoder may decode up to `maxOut`. Hex
 * pairs spaced by `:` or blanks are found by a second pass; where such a run touches another hex
 * run (`..:65:66736b5f..`), the one found first is decoded and the other left as written, where
 * hexDecode's single leftmost scan might split them differently.
 */
export function decodeRunViews(text: string, maxOut: number): RunViews {
  const b64: Span[] = [];
  const b32: Span[] = [];
  const hex: Span[] = [];
  const b64Budget = { left: maxOut };
  let b32Left = maxOut;
  let hexLeft = maxOut;
  // Base64 wrapped at a fixed width (76 by `base64` and MIME, 64 by PEM): lines of one length,
  // a multiple of 4, one line break between them. A secret across a wrap is in neither line.
  // The block being read is [blockStart, blockEnd), lines of blockWidth (0: none).
  const wrapped: Span[] = [];
  let blockStart = 0;
  let blockEnd = 0;
  let blockWidth = 0;
  let lastLineLength = 0;
  let lines = 0;
  const closeBlock = (start: number, end: number) => {
    const d = decodeBase64CandidateRange(text, start, end, b64Budget, false, true);
    if (d !== null) wrapped.push([start, end, d]);
  };
  const alphabetRuns = classRuns.runs(text, ALPHABET_RUNS);
  // One loop over the runs, without a call per run: JavaScriptCore keeps the loop's state in
  // registers, where a closure's captured variables live in memory.
  for (let r = 0; r < alphabetRuns.length; r += 2) {
    const at = alphabetRuns[r]!;
    const end = alphabetRuns[r + 1]!;
    let pad = 0;
    while (pad < MAX_PAD && text.charCodeAt(end + pad) === 61) pad++;
    const length = end + pad - at;
    const gap = blockWidth === 0 ? -1 : at - blockEnd;
    const afterBreak = gap === 1 ? text.charCodeAt(at - 1) === 0x0a : gap === 2 && text.charCodeAt(at - 2) === 0x0d && text.charCodeAt(at - 1) === 0x0a;
    if (afterBreak && lastLineLength === blockWidth && length <= blockWidth) {
      lines = lines === 0 ? 2 : lines + 1;
      blockEnd = at + length;
      lastLineLength = length;
    } else {
      if (blockWidth > 0 && lines >= 2) closeBlock(blockStart, blockEnd);
      blockWidth = 0;
      if (length >= MIN_WRAP_WIDTH && length % 4 === 0) {
        blockStart = at;
        blockEnd = at + length;
        blockWidth = lastLineLength = length;
        lines = 0;
      }
    }
    // What the run is made of, read until it is surely not hex (an identifier: a letter or two).
    let kinds = pad > 0 ? NOT_HEX : 0;
    for (let i = at; i < end && (kinds & NOT_HEX) === 0; i++) kinds |= SHAPE[text.charCodeAt(i)]!;
    // Nothing is cut out of the text unless a decoder needs it as a string (a slice is a lazy
    // copy in JavaScriptCore, made on first read: most runs are refused without one).
    // Hex of one case, maybe with dashes (UUIDs, digests): never plausible as base64 (base64.ts).
    const hexShaped = (kinds & NOT_HEX) === 0 && (kinds & (HEX_LOWER_LETTER | HEX_UPPER_LETTER)) !== (HEX_LOWER_LETTER | HEX_UPPER_LETTER);
    if (hexShaped) {
      // A digest or an id: only hex can hold text here. A run of digits alone is one hex run.
      if ((kinds & DASH) !== 0) {
        if ((stretches(text, at, end) & HEX) !== 0 || hasDashedPairs(text, at, end)) hexLeft = decodeWithin(text.slice(at, end), at, HEX_RUN, decodeHexRun, hexLeft, hex);
      } else {
        const d = decodeHexRange(text, at, end, hexLeft);
        if (d !== null) {
          hexLeft -= d.length;
          hex.push([at, end, d]);
        }
      }
      continue;
    }
    const base64End = pad > 2 ? end + 2 : end + pad;
    const d64 = decodeBase64CandidateRange(text, at, base64End, b64Budget, true);
    if (d64 !== null) b64.push([at, base64End, d64]);
    const found = stretches(text, at, end);
    if ((found & (B32_UPPER | B32_LOWER)) !== 0) b32Left = decodeWithin(text.slice(at, end + pad), at, BASE32_RUN, decodeBase32Run, b32Left, b32);
    if ((found & DASH) !== 0) {
      if ((found & HEX) !== 0 || hasDashedPairs(text, at, end)) hexLeft = decodeWithin(text.slice(at, end + pad), at, HEX_RUN, decodeHexRun, hexLeft, hex);
    } else if ((found & HEX) !== 0) {
      // Without a dash, HEX_RUN's matches are the stretches of 16 or more hex digits: decoded in place.
      for (let i = at; i < end; ) {
        if ((SHAPE[text.charCodeAt(i)]! & HEX) === 0) {
          i++;
          continue;
        }
        let j = i + 1;
        while (j < end && (SHAPE[text.charCodeAt(j)]! & HEX) !== 0) j++;
        const d = j - i >= STRETCH ? decodeHexRange(text, i, j, hexLeft) : null;
        if (d !== null) {
          hexLeft -= d.length;
          hex.push([i, j, d]);
        }
        i = j;
      }
    }
  }
  if (blockWidth > 0 && lines >= 2) closeBlock(blockStart, blockEnd);
  // A decoded block replaces the lines it is made of, in a view of its own: lines that only look
  // like a block (two long values on adjacent lines, a digest above a path) keep their own
  // decodings in the base64 view.
  let base64Wrapped: string | null = null;
  if (wrapped.length > 0) {
    const inBlock = (span: Span) => wrapped.some(([from, to]) => span[0] < to && span[1] > from);
    base64Wrapped = splice(text, [...b64.filter((span) => !inBlock(span)), ...wrapped].sort((a, b) => a[0] - b[0]));
  }
  {
    // A match is a run of its characters, so only such runs are searched.
    const spaced: Span[] = [];
    const spacedHexRuns = classRuns.runs(text, SPACED_HEX_RUNS);
    for (let i = 0; i < spacedHexRuns.length; i += 2) {
      const from = spacedHexRuns[i]!;
      const to = spacedHexRuns[i + 1]!;
      const region = text.slice(from, to);
      SPACED_HEX.lastIndex = 0;
      for (let m = SPACED_HEX.exec(region); m !== null; m = SPACED_HEX.exec(region)) {
        const d = decodeHexRun(m[0], hexLeft);
        if (d === null) continue;
        hexLeft -= d.length;
        spaced.push([from + m.index, from + m.index + m[0].length, d]);
      }
    }
    // Escaped bytes as in C, Python or JavaScript strings: `\x49\x67\x6e...`, decoded as runs;
    // and, when a text has several, printable ones standing alone (`\x49gnore \x79our ...`).
    if (text.includes("\\x")) {
      const runs: Span[] = [];
      ESCAPED_HEX.lastIndex = 0;
      for (let m = ESCAPED_HEX.exec(text); m !== null; m = ESCAPED_HEX.exec(text)) {
        const d = decodeHexRun(m[0].replaceAll("\\x", ""), hexLeft);
        if (d === null) continue;
        hexLeft -= d.length;
        runs.push([m.index, m.index + m[0].length, d]);
      }
      const single: Span[] = [];
      ESCAPED_BYTE.lastIndex = 0;
      for (let m = ESCAPED_BYTE.exec(text); m !== null; m = ESCAPED_BYTE.exec(text)) {
        const at = m.index;
        const b = parseInt(m[1]!, 16);
        if (b < 0x20 || b > 0x7e || runs.some(([from, to]) => at >= from && at < to)) continue;
        single.push([at, at + 4, String.fromCharCode(b)]);
      }
      spaced.push(...runs);
      if (single.length >= MIN_SINGLE_ESCAPES && hexLeft >= single.length) {
        hexLeft -= single.length;
        spaced.push(...single);
      }
    }
    if (spaced.length > 0) {
      // Merge by position; a spaced run overlapping a run already replaced is dropped.
      const merged = [...hex, ...spaced].sort((a, b) => a[0] - b[0]);
      hex.length = 0;
      for (const span of merged) if (hex.length === 0 || span[0] >= hex[hex.length - 1]![1]) hex.push(span);
    }
  }
  return { base64: splice(text, b64), base64Wrapped, base32: splice(text, b32), hex: splice(text, hex) };
}

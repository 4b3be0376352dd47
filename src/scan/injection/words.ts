/**
 * A learned word model: logistic regression over the words and word pairs of a short window of
 * text (WINDOW words, every STRIDE), hashed into 2^BITS weights. It is trained on the tuning sets
 * of the injection corpus (scripts/words-model.ts: the attack instructions as written and the
 * texts the engine reads around findings in attacks, against the benign texts, carrier pages and
 * the texts read around findings in them), so it knows the vocabulary of attacks that no phrase
 * of the lexicons names, in every language the corpus has, and of the documents that quote them.
 *
 * The engine uses it three ways. Around the rules' findings: when they scored something short of
 * the threshold, the window there the model finds most like an attack adds the weight of the
 * first of WORD_RULE's tiers its probability reaches; and a response that cue intents alone took
 * over the threshold is blocked only when a window there confirms it (engine.ts). And whole: a
 * prose window of what a person sees that the model is all but certain of blocks alone
 * (WORD_RULE.shown), and a likely one in a hidden carrier adds to the carrier's weight
 * (WORD_RULE.hidden).
 *
 * Tokens: NFKC, lower case; runs of letters, marks, digits and apostrophes are words (cut at
 * MAX_WORD), runs of path and template punctuation (`~/.`, `<|`, `{{`) are words of their own,
 * and scripts written without spaces (Han, kana, Hangul) give a word per pair of characters.
 * Pure: no files, no clock.
 */

import { isAscii, testBeyondAscii } from "../ascii.ts";
import { byWideStretches } from "../decode/normalise.ts";

const BITS = 20;
const SIZE = 1 << BITS;
const MASK = SIZE - 1;
export const WINDOW = 24;
const STRIDE = 12;
/** Reading, windows start more often than in training: an attack is seen whole wherever the text around it puts it. */
export const READ_STRIDE = 4;
const MAX_WORD = 24;
/** The longest text read (characters from its start): a window's words are local, a megabyte of them no more telling. */
const MAX_TEXT = 256 * 1024;

/**
 * The engine's rule for the model: what it adds when a window reaches a probability, the surest
 * tier (and the most it adds) first: a window the model is all but certain of beside one weak
 * finding blocks; a likely one needs the rules to have found more.
 */
export const WORD_RULE = {
  id: "inj.learned-words",
  tiers: [
    { probability: 0.999, weight: 40 },
    { probability: 0.998, weight: 20 },
  ],
  /**
   * What a person sees, read whole (not only around findings): a window of sentences (`prose`:
   * that share of its words after a space at least) this sure blocks alone. An instruction in
   * words no lexicon has leaves the rules nothing to read around.
   */
  shown: { probability: 0.998, weight: 50, prose: 0.5 },
  /**
   * Each code block (a fenced block, `<pre>`, `<code>`), read on its own as well as in the whole
   * reading, with the weight of `shown`: a window of `probability` blocks (the rules count code
   * half; 0.99: 345 more benign texts of the read sets, 0.993: 3, 0.995: none and 6 more
   * attacks). In writing about attacks, where the whole reading leaves code out as a security
   * article's examples, only one of `discussed` (0.998: 12 more benign texts; 0.9999: 29 of 313
   * attacks fenced after a sentence about attacks blocked; README).
   */
  code: { probability: 0.995, discussed: 0.9995, prose: 0.5 },
  /** Each hidden carrier, read whole: a window this sure counts, and the carrier's weight with it. */
  hidden: { probability: 0.9, weight: 20 },
  /**
   * Each obfuscated paragraph of shown text (zero-width characters inside words, override runs,
   * leetspeak), read as a person reads it: a window this sure counts, and the obfuscation's 20
   * with it, which together reach the threshold: text disguised from the reader that reads as an
   * order is the attack, as hidden text is (20 until 2026-11-29: README).
   */
  obfuscated: { probability: 0.9, weight: 30 },
} as const;

/** A model is not changed once read: strongestWindow keeps a table made from its weights (boundsOf). */
export interface WordModel {
  readonly weights: Float32Array;
  readonly bias: number;
}

/** The window of `text` most like an attack: its probability and where it lies (in the normalised text `normal`). */
export interface WordWindow {
  readonly probability: number;
  readonly normal: string;
  readonly start: number;
  readonly end: number;
}

const WORD = /[\p{L}\p{M}\p{N}_'’]+|[~/.$<>|[\]#{}]+/gu;
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const UNSPACED_RUN = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]+/gu;

/** The words of `normal` (already normalised) with where each starts and ends. */
function wordsOf(normal: string): { words: string[]; at: number[] } {
  const words: string[] = [];
  const at: number[] = [];
  const push = (w: string, s: number, e: number) => {
    words.push(w.length > MAX_WORD ? w.slice(0, MAX_WORD) : w);
    at.push(s, e);
  };
  WORD.lastIndex = 0;
  for (let m = WORD.exec(normal); m !== null; m = WORD.exec(normal)) {
    const w = m[0];
    if (!UNSPACED.test(w)) {
      push(w, m.index, m.index + w.length);
      continue;
    }
    // Runs of an unspaced script as pairs of characters (a lone one as itself), the rest as words.
    let from = 0;
    UNSPACED_RUN.lastIndex = 0;
    for (let r = UNSPACED_RUN.exec(w); r !== null; r = UNSPACED_RUN.exec(w)) {
      if (r.index > from) push(w.slice(from, r.index), m.index + from, m.index + r.index);
      const chars = [...r[0]];
      let off = m.index + r.index;
      for (let i = 0; i < chars.length; i++) {
        const c = chars[i]!;
        const n = chars[i + 1];
        push(n !== undefined ? c + n : c, off, off + c.length + (n?.length ?? 0));
        off += c.length;
      }
      from = r.index + r[0].length;
    }
    if (from < w.length) push(w.slice(from), m.index + from, m.index + w.length);
  }
  return { words, at };
}

/** NFKC of `part`, soft hyphens out (normalise). */
const shownNfkc = (part: string): string => part.normalize("NFKC").replaceAll("\u00ad", "");

export const normalise = (text: string): string => {
  const t = text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) : text;
  // NFKC leaves ASCII as it is. A soft hyphen shows as nothing (a hyphen only where a line
  // breaks): the word is read whole, as a person reads it.
  const normal = (isAscii(t) ? t : byWideStretches(t, shownNfkc)).toLowerCase();
  return maskAddresses(normal);
};

const isSchemeChar = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 46 || c === 45;
const isLabelChar = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45;
const isMailboxChar = (c: number): boolean => isLabelChar(c) || c === 46 || c === 43;
const isLetter = (c: number): boolean => c >= 97 && c <= 122;
const isWordChar = (c: number): boolean => isLabelChar(c) && c !== 45;
/** Where a URL ends: white space, quotes, brackets and angle brackets (1 for an ASCII one). */
const URL_END = new Uint8Array(128);
for (let c = 0; c < 128; c++) URL_END[c] = /[\s"'<>()[\]{}`]/.test(String.fromCharCode(c)) ? 1 : 0;
const endsUrl = (c: number): boolean => (c < 128 ? URL_END[c] === 1 : isSpace(c));
/**
 * White space as a regular expression's `\s` reads it: where an address ends (endsUrl) and where
 * a part may start (nextPart), one definition for both, so a part never starts inside a URL.
 */
const isSpace = (c: number): boolean =>
  c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;

/**
 * `text` (lower case) with its URLs (`scheme://...`, up to white space, a quote or a bracket;
 * and `data:...;base64,...`) and mail addresses (`box@host.tld`) as the words `url` and
 * `email`, padded to their length so offsets stay: the model judges what a text asks, not where
 * to. Read as words, the few collection hosts of the corpus it is trained on would be learned as
 * signs of an attack, and an attack that names any other host would lose them. Found from each
 * `://` and `@`, not by a regular expression tried at every character.
 */
function maskAddresses(text: string): string {
  // A data: URI's payload (an inline image's base64) is no words either: read as one URL.
  const normal = text.includes(";base64,") ? text.replace(DATA_URI, (uri) => "url".padEnd(uri.length, " ")) : text;
  let url = normal.indexOf("://");
  let at = normal.indexOf("@");
  if (url < 0 && at < 0) return normal;
  const n = normal.length;
  const parts: string[] = [];
  let done = 0;
  let scanned = 0;
  const mask = (start: number, end: number, word: string) => {
    parts.push(normal.slice(done, start), word.padEnd(end - start, " "));
    done = end;
  };
  while (url >= 0 || at >= 0) {
    if (url >= 0 && (at < 0 || url < at)) {
      // A scheme of a letter and up to 15 more before it; the URL up to where it ends.
      let start = url;
      while (start > done && url - start < 16 && isSchemeChar(normal.charCodeAt(start - 1))) start--;
      // It starts at a letter that starts a word.
      while (start < url && !(isLetter(normal.charCodeAt(start)) && (start === 0 || !isWordChar(normal.charCodeAt(start - 1))))) start++;
      // Where a URL from here would end: where the last one looked ended, if it got this far
      // (text of many `://` and no space is read once, not once per `://`).
      let end = Math.max(url + 3, scanned);
      while (end < n && !endsUrl(normal.charCodeAt(end))) end++;
      scanned = end;
      if (start < url && end > url + 3) mask(start, end, "url");
      url = normal.indexOf("://", Math.max(done, url + 3));
    } else {
      // A mailbox before it; a host of two labels or more after it.
      let start = at;
      while (start > done && isMailboxChar(normal.charCodeAt(start - 1))) start--;
      let end = at + 1;
      let labels = 0;
      for (;;) {
        let e = end;
        while (e < n && isLabelChar(normal.charCodeAt(e))) e++;
        if (e === end) break;
        labels++;
        end = e;
        if (end + 1 < n && normal.charCodeAt(end) === 46 && isLabelChar(normal.charCodeAt(end + 1))) end++;
        else break;
      }
      if (start < at && labels >= 2) mask(start, end, "email");
      at = normal.indexOf("@", Math.max(done, at + 1));
    }
    if (url >= 0 && url < done) url = normal.indexOf("://", done);
  }
  if (parts.length === 0) return normal;
  parts.push(normal.slice(done));
  return parts.join("");
}

/** A data: URI with a base64 payload (lower case: `normal`), up to where a URL ends. */
const DATA_URI = /(?<![a-z0-9])data:[a-z0-9.+/-]{0,64}(?:;[a-z0-9.+=-]{1,64}){0,4};base64,[^\s"'<>()[\]{}`]*/g;

/** FNV-1a over `s`, on from state `h` (32 bits, unmasked). */
function fnv(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/**
 * The feature of each word (`word[i]`) and of each word with the next (`pair[i]`, the hash of
 * "a b", computed on from the first word's hash without building the string).
 */
function hashesOf(words: readonly string[]): { word: Uint32Array; pair: Uint32Array } {
  const word = new Uint32Array(words.length);
  const pair = new Uint32Array(words.length);
  for (let i = 0; i < words.length; i++) {
    const h = fnv(words[i]!);
    word[i] = h & MASK;
    if (i + 1 < words.length) pair[i] = fnv(words[i + 1]!, fnv(" ", h)) & MASK;
  }
  return { word, pair };
}

/**
 * The features of words [from, to) into `out`, each once, in order of first occurrence (each
 * word, then its pair with the next inside the window); returns how many.
 */
function windowFeatures(h: { word: Uint32Array; pair: Uint32Array }, from: number, to: number, out: Uint32Array): number {
  // A feature is in the window already when its stamp is this window's.
  if (++generation === 0x7fffffff) {
    stamps.fill(0);
    generation = 1;
  }
  let n = 0;
  for (let i = from; i < to; i++) {
    const w = h.word[i]!;
    if (stamps[w] !== generation) {
      stamps[w] = generation;
      out[n++] = w;
    }
    if (i + 1 < to) {
      const p = h.pair[i]!;
      if (stamps[p] !== generation) {
        stamps[p] = generation;
        out[n++] = p;
      }
    }
  }
  return n;
}
const stamps = new Int32Array(SIZE);
let generation = 0;

/** The hashed features of words [from, to): each word and each pair of neighbours, once. */
function features(words: readonly string[], from: number, to: number): Uint32Array {
  const out = new Uint32Array(2 * (to - from));
  return out.slice(0, windowFeatures(hashesOf(words.slice(from, to)), 0, to - from, out));
}

/** The hashed features of all of `text` read as one window (tests build models from them). */
export function textFeatures(text: string): Uint32Array {
  const { words } = wordsOf(normalise(text));
  return features(words, 0, words.length);
}

/** The windows [from, to) of word indices over n words, every STRIDE words (training; reading slides its own). */
function windows(n: number): [number, number][] {
  if (n <= WINDOW) return n > 0 ? [[0, n]] : [];
  const out: [number, number][] = [];
  for (let i = 0; ; i += STRIDE) {
    out.push([i, Math.min(n, i + WINDOW)]);
    if (i + WINDOW >= n) break;
  }
  return out;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** A text read for the model: each word's feature, each word-and-next's, and where the words lie in it. */
export interface Tokens {
  readonly count: number;
  readonly word: Uint32Array;
  readonly pair: Uint32Array;
  /** Start and end of word i at [2i], [2i + 1]. */
  readonly at: Int32Array;
}

/** ASCII characters of words (1: letters, digits, `_`, `'`) and of punctuation words (2), as WORD reads them. */
const ASCII_KIND = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  ASCII_KIND[c] = /[\p{L}\p{N}_']/u.test(ch) ? 1 : /[~/.$<>|[\]#{}]/.test(ch) ? 2 : 0;
}

/** tokensBy's arrays, reused from text to text (grown to the longest). */
let scratch = { word: new Uint32Array(0), pair: new Uint32Array(0), at: new Int32Array(0) };

/**
 * What each code unit of the Basic Multilingual Plane is to WORD and UNSPACED (0: neither, 1: a
 * word's, 2: a punctuation word's, 3: a word's, of a script written without spaces), made the
 * first time a text beyond ASCII is read. Surrogates are 0 (a text with any is read by wordsOf).
 */
let unitKinds: Uint8Array | null = null;
function kindsOfUnits(): Uint8Array {
  if (unitKinds !== null) return unitKinds;
  const kinds = new Uint8Array(65536);
  const word = /^[\p{L}\p{M}\p{N}_'’]$/u;
  const punctuation = /^[~/.$<>|[\]#{}]$/u;
  for (let c = 0; c < 65536; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const ch = String.fromCharCode(c);
    kinds[c] = word.test(ch) ? (UNSPACED.test(ch) ? 3 : 1) : punctuation.test(ch) ? 2 : 0;
  }
  return (unitKinds = kinds);
}
const SURROGATE = /[\ud800-\udfff]/;

/**
 * The words of a text with no surrogates, hashed as they are found, by `kinds` (ASCII_KIND for
 * ASCII, kindsOfUnits for the rest): no string, no regular expression, and one pass over each word
 * for both its hash and its pair's (FNV-1a of the previous word, a space and this word, run on from
 * the previous word's hash). A run of one kind is a word, but a script written without spaces is
 * read in pairs of characters (the last of a run alone). The same features as wordsOf and hashesOf
 * give (a test holds them to it), several times faster: the engine reads whole responses.
 */
function tokensBy(normal: string, kinds: Uint8Array): Tokens {
  const n = normal.length;
  if (scratch.word.length < n) scratch = { word: new Uint32Array(n), pair: new Uint32Array(n), at: new Int32Array(2 * n) };
  const { word, pair, at } = scratch;
  let count = 0;
  // The pair's hash so far: FNV-1a of the previous word and a space.
  let pairState = 0;
  for (let i = 0; i < n; ) {
    const kind = kinds[normal.charCodeAt(i)]!;
    if (kind === 0) {
      i++;
      continue;
    }
    const start = i;
    let end: number;
    let h = 0x811c9dc5;
    let p = pairState;
    if (kind === 3) {
      // A character of a script written without spaces: with the next one if it is one too.
      end = i + 1 < n && kinds[normal.charCodeAt(i + 1)] === 3 ? i + 2 : i + 1;
      for (let k = i; k < end; k++) {
        const c = normal.charCodeAt(k);
        h = Math.imul(h ^ c, 16777619);
        p = Math.imul(p ^ c, 16777619);
      }
      i++;
    } else {
      // A word (or punctuation word) up to a character of another kind, hashed as it is read.
      const last = start + MAX_WORD;
      for (; i < n; i++) {
        const c = normal.charCodeAt(i);
        if (kinds[c] !== kind) break;
        if (i < last) {
          h = Math.imul(h ^ c, 16777619);
          p = Math.imul(p ^ c, 16777619);
        }
      }
      end = i;
    }
    word[count] = (h >>> 0) & MASK;
    if (count > 0) pair[count - 1] = (p >>> 0) & MASK;
    at[2 * count] = start;
    at[2 * count + 1] = end;
    pairState = Math.imul(h ^ 32, 16777619);
    count++;
  }
  if (count > 0) pair[count - 1] = 0;
  return { count, word, pair, at };
}

/**
 * The tokens of a normalised text: by hand (ASCII, and text beyond it with no surrogates),
 * anything else by wordsOf (`general`: always by wordsOf; tests compare them). Tokens read by
 * hand are valid until the next text's.
 */
export function tokensOf(normal: string, general = false): Tokens {
  if (!general && isAscii(normal)) return tokensBy(normal, ASCII_KIND);
  if (!general && !testBeyondAscii(normal, SURROGATE)) return tokensBy(normal, kindsOfUnits());
  const { words, at } = wordsOf(normal);
  const { word, pair } = hashesOf(words);
  return { count: words.length, word, pair, at: Int32Array.from(at) };
}

/** The most the engine has the model read at once: a longer text is read in parts (nextPart). */
export const PART = 64 * 1024;

/**
 * Where the part of `text` after the one at `at` (PART long) starts: so far back that the part's
 * last OVERLAP_WORDS words, as the model reads them, are read again. Then every run of
 * WINDOW - READ_STRIDE words lies whole in one part, where a window (READ_STRIDE apart) holds it.
 * The start is a stretch's start (after white space) or, inside a stretch of a script written
 * without spaces that holds no address, a character of it: there the model reads the text
 * from it as it reads it in the whole text. The words are counted by the model's own reader, on
 * the stretches before the part's last one (which its end may cut); found by doubling, then
 * halving, the stretches read back. Never less than half a part on: words spread wider than
 * that are read in two windows.
 */
export function nextPart(text: string, at: number): number {
  const floor = at + (PART >> 1);
  const end = Math.min(text.length, at + PART);
  // The part's last stretch may be cut by its end: its words are not counted, but for those
  // before its last character of a script without spaces (text of such a script has no spaces to
  // stop at), when it holds no address.
  let last = end;
  while (last > floor && !isSpace(text.charCodeAt(last - 1)) && !isBoundaryUnit(text.charCodeAt(last - 1))) last--;
  if (last > floor && isBoundaryUnit(text.charCodeAt(last - 1))) {
    let a = last;
    let address = false;
    for (; a > floor && !isSpace(text.charCodeAt(a - 1)); a--) if (text.charCodeAt(a - 1) === 64 || (text.charCodeAt(a - 1) === 58 && text.startsWith("//", a))) address = true;
    for (let z = last; z < end && !address; z++) if (text.charCodeAt(z) === 64 || (text.charCodeAt(z) === 58 && text.startsWith("//", z + 1))) address = true;
    last = address ? a : last - 1;
  }
  const starts: number[] = [];
  let j = last;
  /** Finds stretch starts back from j until `starts` holds `want` of them (or the floor is reached). */
  const collect = (want: number) => {
    while (starts.length < want && j > floor) {
      while (j > floor && isSpace(text.charCodeAt(j - 1))) j--;
      let a = j;
      let address = false;
      while (a > floor && !isSpace(text.charCodeAt(a - 1))) {
        const c = text.charCodeAt(a - 1);
        if (c === 64 || (c === 58 && text.startsWith("//", a))) address = true;
        a--;
      }
      // A stretch the floor cuts is no start.
      const whole = a > 0 && isSpace(text.charCodeAt(a - 1));
      if (!address) for (let k = j - 1; k > a; k--) if (isBoundaryUnit(text.charCodeAt(k))) starts.push(k);
      if (whole || a === 0) starts.push(a);
      j = a;
    }
  };
  const enough = (k: number) => tokensOf(normalise(text.slice(starts[k]!, last))).count >= OVERLAP_WORDS;
  // Doubling: the first k (a power of two, less one) whose start has enough words after it.
  let lo = -1;
  let hi = -1;
  for (let want = 8; ; want *= 2) {
    collect(want);
    if (starts.length === 0) return floor;
    const k = Math.min(want, starts.length) - 1;
    if (enough(k)) {
      hi = k;
      break;
    }
    if (starts.length < want) return starts[starts.length - 1]!;
    lo = k;
  }
  // Halving between: the nearest start that has enough.
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (enough(mid)) hi = mid;
    else lo = mid;
  }
  return starts[hi]!;
}
/** Words of a part's end that the next part reads again: WINDOW, and two more for a word each end may cut. */
const OVERLAP_WORDS = WINDOW + 2;
/**
 * Characters of scripts written without spaces that nothing before them joins with (NFKC
 * composes neither across them nor into them): Han, Hiragana, Katakana (not half-width, not the
 * voicing marks), Hangul syllables (not jamo).
 */
const isBoundaryUnit = (c: number): boolean =>
  (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x3041 && c <= 0x3096) || (c >= 0x30a1 && c <= 0x30fa) || (c >= 0xac00 && c <= 0xd7a3);

/**
 * The window of `text` the model finds most like an attack, or null for a text without words.
 * With `prose`, only windows in which at least that share of the words follows a space (or a
 * quotation mark, a parenthesis, a mark beyond ASCII that is no letter or digit, markdown
 * emphasis after one of those, or is written in a script without spaces) count: sentences, not
 * paths, URLs, identifiers or encoded data, which the model was not trained to tell apart. With
 * `floor` (a probability), null unless a window reaches it.
 *
 * A window's features are its words and the pairs of neighbours in it, each counted once. Most
 * windows are never scored: the bias plus the window's positive weights bounds its score from
 * above, and a window whose bound cannot beat the best so far, or reach `floor`, is passed over.
 * The bound is read from the model's positive weights rounded up to bytes (boundsOf: a quarter of
 * the weights' memory, so far fewer of its loads miss the processor's cache), summed as a
 * difference of two prefix sums; the weights themselves are loaded only for the windows scored,
 * feature by feature, each counted once through a small table that stays in the cache (a window
 * has at most 2 WINDOW - 1 features). A looser bound only scores more windows: the strongest is
 * the same.
 */
export function strongestWindow(model: WordModel, text: string, prose = 0, floor = 0): WordWindow | null {
  const normal = normalise(text);
  const { count, word, pair, at } = tokensOf(normal);
  if (count === 0) return null;
  const { weights, bias } = model;
  const { bytes, scale } = boundsOf(model);
  // Feature k: word k/2 (even k), or its pair with the next (odd k).
  const n = 2 * count;
  if (weight_.length < n) {
    weight_ = new Float64Array(n);
    above_ = new Int32Array(n + 1);
  }
  const weight = weight_;
  const above = above_;
  // above[k]: the bounds of features before k, in a loop of independent loads.
  above[0] = 0;
  for (let i = 0, sum = 0; i < count; i++) {
    above[2 * i + 1] = sum += bytes[word[i]!]!;
    above[2 * i + 2] = sum += bytes[pair[i]!]!;
  }
  // (Under the floor's score by a little: a probability that rounds up to the floor counts.)
  const zFloor = floor > 0 ? Math.min(MAX_Z, Math.log(floor / (1 - floor))) - 1e-6 : -Infinity;
  let best: WordWindow | null = null;
  let bestZ = -Infinity;
  // The weights are loaded up to `loaded` (windows only move on).
  let loaded = 0;
  for (let start = 0; ; start += READ_STRIDE) {
    const end = Math.min(count, start + WINDOW);
    // The window's features [first, last): words start .. end - 1 and the pairs among them.
    const first = 2 * start;
    const last = 2 * end - 1;
    // Integers summed exactly, divided once; BOUND_SLACK for the rounding of the score's sum.
    const bound = bias + (above[last]! - above[first]!) / scale + BOUND_SLACK;
    if (bound > bestZ && bound >= zFloor && (prose === 0 || spacedWords(normal, at, start, end) >= prose * (end - start))) {
      for (let k = Math.max(loaded, first); k < last; k++) weight[k] = weights[k & 1 ? pair[k >> 1]! : word[k >> 1]!]!;
      loaded = Math.max(loaded, last);
      const z = windowScore(bias, weight, word, pair, first, last);
      if (z > bestZ) {
        const p = sigmoid(z);
        if (p >= floor && (best === null || p > best.probability)) {
          best = { probability: p, normal, start: at[first]!, end: at[2 * end - 1]! };
          bestZ = z;
        }
      }
    }
    if (end >= count) break;
  }
  return best;
}

/**
 * A model's positive weights as bytes, rounded up (each at least the weight times `scale`, none
 * over 255): what strongestWindow bounds windows with. Made once per model.
 */
function boundsOf(model: WordModel): { bytes: Uint8Array; scale: number } {
  let b = bounds.get(model);
  if (b === undefined) {
    let most = 0;
    for (const w of model.weights) if (w > most) most = w;
    // 254, not 255: the product may round up past the last integer. (Rounding the product down
    // by an ulp is within BOUND_SLACK.)
    const scale = most > 0 ? 254 / most : 1;
    const bytes = new Uint8Array(model.weights.length);
    for (let i = 0; i < bytes.length; i++) {
      const w = model.weights[i]!;
      if (w > 0) bytes[i] = Math.ceil(w * scale);
    }
    bounds.set(model, (b = { bytes, scale }));
  }
  return b;
}
const bounds = new WeakMap<WordModel, { bytes: Uint8Array; scale: number }>();
/** What the bound adds for the rounding of a window's score (weights are at most MAX_WEIGHT, a window has under 2 WINDOW of them). */
const BOUND_SLACK = 1e-6;

/** Where the floor's score is capped (a floor of 1 has none): only a filter, `p >= floor` decides. */
const MAX_Z = 36;

/** The score of features [first, last): the bias and the weight of each distinct feature. */
function windowScore(bias: number, weight: Float64Array, word: Uint32Array, pair: Uint32Array, first: number, last: number): number {
  if (++scored === 0x7fffffff) {
    scoredIn.fill(0);
    scored = 1;
  }
  let z = bias;
  for (let k = first; k < last; k++) {
    const f = k & 1 ? pair[k >> 1]! : word[k >> 1]!;
    let slot = Math.imul(f, 0x9e3779b1) >>> (32 - SEEN_BITS);
    while (scoredIn[slot] === scored && seen[slot] !== f) slot = (slot + 1) & (SEEN_SIZE - 1);
    if (scoredIn[slot] === scored) continue;
    scoredIn[slot] = scored;
    seen[slot] = f;
    z += weight[k]!;
  }
  return z;
}
/** The features of the window being scored (at most 2 WINDOW - 1 in a table of SEEN_SIZE), marked with the window's number (`scored`). */
const SEEN_BITS = 7;
const SEEN_SIZE = 1 << SEEN_BITS;
const seen = new Int32Array(SEEN_SIZE);
const scoredIn = new Int32Array(SEEN_SIZE);
let scored = 0;

/** How many of words [start, end) follow a space (or what stands for one: strongestWindow's `prose`). */
function spacedWords(normal: string, at: Int32Array, start: number, end: number): number {
  let spaced = 0;
  for (let i = start; i < end; i++) {
    const s = at[2 * i]!;
    // Markdown's emphasis before a word (`**list** **every**`) is skipped.
    let b = s;
    while (b > 0 && s - b < 4 && EMPHASIS.has(normal.charCodeAt(b - 1))) b--;
    const c = b > 0 ? normal.charCodeAt(b - 1) : 32;
    // Any mark beyond ASCII that is no letter or digit parts words too (a braille blank, a dot).
    const follows = c === 32 || c === 10 || c === 9 || c === 13 || c === 34 || c === 39 || c === 40 || (c >= 128 && !LETTER_OR_DIGIT.test(String.fromCharCode(c)));
    if (follows || (c >= 128 && UNSPACED.test(normal.slice(s, at[2 * i + 1]!)))) spaced++;
  }
  return spaced;
}
const EMPHASIS = new Set([..."*_~`"].map((c) => c.charCodeAt(0)));
const LETTER_OR_DIGIT = /[\p{L}\p{N}\p{M}]/u;

/** strongestWindow's arrays, reused from text to text (grown to the longest). */
let weight_ = new Float64Array(0);
let above_ = new Int32Array(0);

/** A training example: a text, and whether it is an attack. */
export interface WordExample {
  readonly text: string;
  readonly attack: boolean;
}

/**
 * Trains a model on `examples` (deterministic: the same examples give the same weights). Every
 * window of an attack is a positive, every distinct window of a benign text a negative; the two
 * classes weigh the same in total, but for the hard negatives (HARD_WEIGHT times from pass
 * HARD_FROM on). Stochastic gradient descent on the log loss, EPOCHS passes,
 * the step shrinking each pass and scaled by the window's feature count; a descent's weights are
 * their average over the last AVERAGED passes, and the model the average of ORDERS descents.
 * Each pass takes the windows in an order
 * drawn from their own words (a hash of each window's text, label and the pass), not from their
 * places in the list: one example more or less moves the others' order by no more than its own
 * windows. Both matter: the last weights of plain SGD hung on the order (four orders gave
 * 273 to 367 false positives over holdout5 to holdout10; averaged, 257 to 262), and a shuffle of
 * the list made every small change of the corpus or the engine a new draw of the order.
 */
export function trainWordModel(examples: readonly WordExample[]): WordModel {
  const X: Uint32Array[] = [];
  const y: number[] = [];
  const keys: number[] = [];
  for (const e of examples) {
    const { words } = wordsOf(normalise(e.text));
    const seen = new Set<string>();
    for (const [from, to] of windows(words.length)) {
      const key = words.slice(from, to).join(" ");
      if (seen.has(key)) continue;
      seen.add(key);
      X.push(features(words, from, to));
      y.push(e.attack ? 1 : 0);
      keys.push(fnv(key, e.attack ? 0x811c9dc5 : 0x050c5d1f));
    }
  }
  const n = X.length;
  const positives = y.reduce((a, b) => a + b, 0);
  if (positives === 0 || positives === n) throw new Error("training a word model needs attacks and benign texts");
  if (n >= 2 ** 21) throw new Error(`training a word model on ${n} windows, more than ${2 ** 21}`);
  // The average of ORDERS descents, each taking the windows in orders of its own.
  const weights = new Float32Array(SIZE);
  let bias = 0;
  for (let o = 0; o < ORDERS; o++) {
    const m = descend(X, y, keys, o);
    for (let i = 0; i < SIZE; i++) weights[i] = weights[i]! + m.weights[i]! / ORDERS;
    bias += m.bias / ORDERS;
  }
  return { weights, bias };
}

/** One run of averaged SGD over windows `X` (labels `y`), each pass in an order drawn from `keys`, the pass and `salt`. */
function descend(X: readonly Uint32Array[], y: readonly number[], keys: readonly number[], salt: number): WordModel {
  const n = X.length;
  const positives = y.reduce((a, b) => a + b, 0);
  const weightOf = [n / (2 * (n - positives)), n / (2 * positives)];
  const weights = new Float32Array(SIZE);
  let bias = 0;
  // Each window's place in a pass: its key mixed with the pass (32 bits), then its index (ties,
  // the same window twice), as one exact double; sorted natively.
  const places = new Float64Array(n);
  const order = new Int32Array(n);
  // The weights averaged over the last AVERAGED passes (each weight's sum of its values, step by
  // step, kept lazily: added up when it changes, and at the end).
  const averageFrom = (EPOCHS - AVERAGED) * n;
  const sums = new Float64Array(SIZE);
  const since = new Int32Array(SIZE).fill(averageFrom);
  let biasSum = 0;
  let step = 0;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    for (let k = 0; k < n; k++) places[k] = mix32(keys[k]! ^ Math.imul(epoch + 1 + salt * 7919, 0x9e3779b9)) * 2 ** 21 + k;
    places.sort();
    for (let k = 0; k < n; k++) order[k] = places[k]! % 2 ** 21;
    const rate = RATE / (1 + epoch);
    const averaging = step >= averageFrom;
    for (const k of order) {
      const f = X[k]!;
      let z = bias;
      for (const i of f) z += weights[i]!;
      const p = sigmoid(z);
      const hard = y[k] === 0 && epoch >= HARD_FROM && p > HARD_P ? HARD_WEIGHT : 1;
      const g = ((p - y[k]!) * weightOf[y[k]!]! * rate * hard) / Math.sqrt(f.length + 1);
      for (const i of f) {
        if (averaging) {
          sums[i] = sums[i]! + weights[i]! * (step - since[i]!);
          since[i] = step;
        }
        weights[i] = weights[i]! * (1 - L2) - g;
      }
      bias -= g * 0.1;
      if (averaging) biasSum += bias;
      step++;
    }
  }
  const steps = step - averageFrom;
  for (let i = 0; i < SIZE; i++) weights[i] = (sums[i]! + weights[i]! * (step - since[i]!)) / steps;
  return { weights, bias: biasSum / steps };
}

/** A 32-bit integer's bits spread over all 32 (murmur3's finaliser). */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
const EPOCHS = 6;
/**
 * Descents averaged into the model, each taking the windows in orders of its own: one order is
 * a draw (six gave 137 to 158 benign texts blocked on the folds, 5,568 to 5,585 attacks); the
 * average of three, 139 and 141, 5,574 and 5,572 (README).
 */
const ORDERS = 3;
/**
 * Hard negatives: from pass HARD_FROM on, a benign window the model reads as more likely an
 * attack than not counts HARD_WEIGHT times. The engine acts on the few windows it reads as all
 * but certain (WORD_RULE), so what matters most is that no benign window gets there; with them,
 * the whole reading of shown text could go from 0.999 to 0.998, and hidden carriers' from 0.95
 * to 0.9 (README).
 * Benign texts are benign whole; an attack's sample also gives the model the text around its
 * payload, so the same weight on attacks it misses would teach it its carriers.
 */
const HARD_FROM = 2;
const HARD_P = 0.5;
const HARD_WEIGHT = 5;
/** Passes the weights are averaged over (averaged SGD: the model does not hang on the last few steps' examples). */
const AVERAGED = 2;
const RATE = 0.2;
const L2 = 1e-6;

const MAGIC = "sluice-words-1";

/** The model as bytes: the magic, BITS, the bias and the weights (little-endian float32). */
export function wordModelBytes(model: WordModel): Uint8Array {
  const head = new TextEncoder().encode(MAGIC);
  const out = new Uint8Array(head.length + 8 + model.weights.byteLength);
  out.set(head, 0);
  const view = new DataView(out.buffer);
  view.setUint32(head.length, BITS, true);
  view.setFloat32(head.length + 4, model.bias, true);
  out.set(new Uint8Array(model.weights.buffer, model.weights.byteOffset, model.weights.byteLength), head.length + 8);
  return out;
}

/** A model from wordModelBytes' output; throws on anything else. */
export function wordModelFromBytes(bytes: Uint8Array): WordModel {
  const head = new TextEncoder().encode(MAGIC);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length !== head.length + 8 + SIZE * 4 || new TextDecoder().decode(bytes.subarray(0, head.length)) !== MAGIC || view.getUint32(head.length, true) !== BITS) {
    throw new Error(`not a word model of ${BITS} bits (${MAGIC})`);
  }
  const weights = new Float32Array(SIZE);
  new Uint8Array(weights.buffer).set(bytes.subarray(head.length + 8));
  const bias = view.getFloat32(head.length + 4, true);
  // A weight that is not a finite number could make every probability NaN, which reaches no tier:
  // the model would be off without a word. One of a size no training gives would swallow the
  // others in strongestWindow's sums. Refused.
  if (!Number.isFinite(bias) || !weights.every(Number.isFinite)) throw new Error("not a word model: a weight is not a finite number");
  if (Math.abs(bias) > MAX_WEIGHT || !weights.every((w) => Math.abs(w) <= MAX_WEIGHT)) throw new Error(`not a word model: a weight is larger than ${MAX_WEIGHT}`);
  return { weights, bias };
}

/** The largest weight (and bias) a model may have: training gives a few units. */
const MAX_WEIGHT = 1000;

let registered: WordModel | null = null;

/** Makes `model` the built-in one (dist/sluice: the embedded model; from source: scripts/preload.ts). */
export function registerWordModel(model: WordModel | null): void {
  registered = model;
}

/** The built-in model, when one was registered. */
export function builtinWordModel(): WordModel | null {
  return registered;
}

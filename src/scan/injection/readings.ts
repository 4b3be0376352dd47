/**
 * The readings of a text that injection rules are matched against (issue 5, "multi-pass
 * matching"). An attacker writes an instruction so that a model still reads it but a pattern
 * does not: in full-width or mathematical letters, with zero-width characters inside words, in
 * Cyrillic look-alikes, in leetspeak, letter by letter, or encoded. Each reading undoes one of
 * these, and a reading that cannot differ from one already made is skipped, so plain English
 * text costs one pass.
 */
import { byWideStretches, CONFUSABLES, decodeViews, normaliseText, type DecodeLimits } from "../decode/index.ts";
import { INVISIBLE } from "../decode/normalise.ts";
import { isAscii, testBeyondAscii } from "../ascii.ts";
import { classRuns, classTable } from "../class-runs.ts";

/** INVISIBLE as a test (no lastIndex). */
const INVISIBLE_ONE = new RegExp(INVISIBLE.source, "u");

export type ReadingName = "raw" | "accents" | "nfkc" | "invisible-removed" | "invisible-as-space" | "bidi-reversed" | "folded" | "mixed-script" | "leetspeak" | "spaced-letters" | "unicode-tags" | "joined-words" | "decoded";

export interface Reading {
  readonly name: ReadingName;
  readonly text: string;
  /** For `decoded`: the decoders, outermost first. */
  readonly via?: readonly string[];
  /** For `decoded`: where in `text` what was decoded lies (the rest is the text around it, as written). */
  readonly decodedSpan?: readonly [start: number, end: number];
}

/** Unicode tag characters U+E0020-U+E007E mirror printable ASCII: invisible text ("ASCII smuggling"). */
const TAG_RUN = /[\u{e0020}-\u{e007e}]+/gu;
/** Text kept on each side of a leetspeak word in its reading: the instruction around it. */
const LEET_CONTEXT = 256;
/** What each digit or sign most often stands for; `1` is also `l` (VOCABULARY decides). */
const LEET: Readonly<Record<string, string>> = { "0": "o", "1": "i", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g", "@": "a", $: "s", "!": "i" };
const LEET_ALTERNATIVES: Readonly<Record<string, string>> = { "1": "l", "6": "b", "9": "q" };

/** A token of hex digits this long or longer is an id, not a word (`c0ffee` and `d3c0d3` may be; inHexId). */
const HEX_ID = 7;
/** At most this many ambiguous digits in one word are tried both ways. */
const MAX_AMBIGUOUS = 4;

/** Bidi override runs: U+202E (right-to-left override) up to U+202C (pop) or the end of the line. */
const RLO_RUN = /\u202e([^\u202c\n]*)\u202c?/g;

/**
 * Where `text`'s right-to-left override runs are (RLO_RUN). A person sees their text reversed,
 * so an instruction written forwards inside one is hidden from them while a model reads it.
 */
export function overrideSpans(text: string): [start: number, end: number][] {
  if (!text.includes("\u202e")) return [];
  return [...text.matchAll(RLO_RUN)].map((m) => [m.index, m.index + m[0].length]);
}

/**
 * Characters that change how text is stored, not how it reads: zero-width spaces and joiners of
 * no script (U+200B, U+2060-2064, U+FEFF, U+180E) and the bidi embeddings, overrides and
 * isolates. Between two ASCII letters, where no script needs them, also the joiners Persian,
 * Indic scripts and emoji use (U+200C, U+200D), the directional marks (U+200E, U+200F), the
 * combining grapheme joiner and variation selectors. Never soft hyphens: German and Dutch pages
 * put them in long words for the line breaks (the rules read every text without them anyway).
 */
const OBFUSCATING_ANYWHERE = /[\u200b\u2060-\u2064\ufeff\u180e\u202a-\u202e\u2066-\u2069]/;
/** All of them, anywhere or between ASCII letters only: one list, for the search and the test of one character. */
const OBFUSCATING_RANGES: readonly (readonly [number, number])[] = [
  [0x034f, 0x034f],
  [0x180e, 0x180e],
  [0x200b, 0x200f],
  [0x202a, 0x202e],
  [0x2060, 0x2064],
  [0x2066, 0x2069],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];
const unitEscape = (c: number): string => `\\u${c.toString(16).padStart(4, "0")}`;
const OBFUSCATING = new RegExp(`[${OBFUSCATING_RANGES.map(([a, b]) => (a === b ? unitEscape(a) : `${unitEscape(a)}-${unitEscape(b)}`)).join("")}]`, "g");
const OBFUSCATING_ONE = new RegExp(OBFUSCATING.source);
const isObfuscating = (c: number): boolean => OBFUSCATING_RANGES.some(([a, b]) => c >= a && c <= b);
/** Breaks in a paragraph that make it obfuscated (a right-to-left override run of words counts as this many). */
const OBFUSCATED_MIN = 3;
/** Characters read on each side of a paragraph's first and last break. */
const OBFUSCATED_REACH = 2000;
const LETTER_OR_DIGIT_UNIT = /[\p{L}\p{N}]/u;
const isAsciiLetterOrDigit = (c: number): boolean => isAsciiLetter(c) || isDigit(c);
/** Whether the character ending at `end` (exclusive) or starting at `at` is a letter or digit (a surrogate pair read whole). */
function letterBefore(text: string, end: number): boolean {
  if (end <= 0) return false;
  const c = text.charCodeAt(end - 1);
  if (c < 128) return isAsciiLetterOrDigit(c);
  const from = c >= 0xdc00 && c <= 0xdfff && end >= 2 ? end - 2 : end - 1;
  return LETTER_OR_DIGIT_UNIT.test(String.fromCodePoint(text.codePointAt(from)!));
}
function letterAt(text: string, at: number): boolean {
  if (at >= text.length) return false;
  const c = text.charCodeAt(at);
  return c < 128 ? isAsciiLetterOrDigit(c) : LETTER_OR_DIGIT_UNIT.test(String.fromCodePoint(text.codePointAt(at)!));
}
/**
 * Scripts written without spaces between words whose writers mark a word's end for line breaking
 * with a zero-width space (Thai, Lao, Tibetan, Myanmar, Khmer): between two of their characters
 * it is how the text is written, not a disguise. (Chinese and Japanese break anywhere and need
 * none: there it still counts.)
 */
const NO_SPACE_SCRIPT = /[\u0e00-\u0fff\u1000-\u109f\u1780-\u17ff]/;
const zwspBetweenWords = (text: string, run: string, a: number, b: number): boolean =>
  /^\u200b+$/.test(run) && a > 0 && b < text.length && NO_SPACE_SCRIPT.test(text[a - 1]!) && NO_SPACE_SCRIPT.test(text[b]!);
/** Words in an override run: it hides a sentence, not a stray mark. */
const RUN_OF_WORDS = /\p{L}{2,}[\s\u3000]+\p{L}{2,}|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]{4}/u;

/**
 * Where `text` is obfuscated: each paragraph (between blank lines) with OBFUSCATED_MIN breaks or
 * more, as [start, end) from OBFUSCATED_REACH before its first to OBFUSCATED_REACH after its
 * last, in order. A break is a run of such characters inside a word (between two letters or
 * digits, `ig\u200bnore`) or wrapped around the one space between two words
 * (`send\u2066 \u2069the`), or a right-to-left override run of words; not a stray mark at a
 * line's start, an isolate around a whole word (`Hello \u2068Alice\u2069`, what localisation
 * libraries write), nor a zero-width space between words of Thai and the other scripts written
 * without spaces (NO_SPACE_SCRIPT). A paragraph, not a line: text hard-wrapped at a few words a
 * line is one. Linear: each such character is looked at once, and the paragraphs are found only
 * when one is.
 */
export function obfuscatedStretches(text: string): [start: number, end: number][] {
  // Every such character is beyond ASCII: most texts have none (testBeyondAscii searches the
  // runs beyond ASCII alone when they are few).
  if (!testBeyondAscii(text, OBFUSCATING_ONE)) return [];
  const breaks: number[] = [];
  OBFUSCATING.lastIndex = 0;
  for (let m = OBFUSCATING.exec(text); m !== null; m = OBFUSCATING.exec(text)) {
    const a = m.index;
    let b = a + 1;
    while (b < text.length && isObfuscating(text.charCodeAt(b))) b++;
    OBFUSCATING.lastIndex = b;
    const run = text.slice(a, b);
    const anywhere = OBFUSCATING_ANYWHERE.test(run);
    if (run.includes("\u202e")) {
      // An override run: up to its pop or the line's end.
      let end = b;
      while (end < text.length && text.charCodeAt(end) !== 0x202c && text.charCodeAt(end) !== 10) end++;
      if (RUN_OF_WORDS.test(text.slice(b, end))) for (let k = 0; k < OBFUSCATED_MIN; k++) breaks.push(a);
    }
    if (anywhere ? letterBefore(text, a) && letterAt(text, b) && !zwspBetweenWords(text, run, a, b) : isAsciiLetterOrDigit(text.charCodeAt(a - 1)) && isAsciiLetterOrDigit(text.charCodeAt(b))) {
      breaks.push(a);
      continue;
    }
    // Wrapped around one space: a run, the space, a run, with a letter on either side.
    if (anywhere && text.charCodeAt(b) === 32 && letterBefore(text, a)) {
      let c = b + 1;
      while (c < text.length && isObfuscating(text.charCodeAt(c))) c++;
      if (c > b + 1 && letterAt(text, c)) {
        breaks.push(a);
        OBFUSCATING.lastIndex = c;
      }
    }
  }
  OBFUSCATING.lastIndex = 0;
  if (breaks.length < OBFUSCATED_MIN) return [];
  // Paragraphs: what lies between blank lines (paragraph p ends at ends[p], the next starts at starts[p + 1]).
  const starts: number[] = [0];
  const ends: number[] = [];
  for (const m of text.matchAll(/\n[ \t\r\u00a0]*\n/g)) {
    ends.push(m.index);
    starts.push(m.index + m[0].length);
  }
  ends.push(text.length);
  const out: [number, number][] = [];
  let p = 0;
  for (let i = 0; i < breaks.length; ) {
    while (ends[p]! <= breaks[i]!) p++;
    const paragraphStart = starts[p]!;
    let j = i;
    while (j < breaks.length && breaks[j]! < ends[p]!) j++;
    if (j - i >= OBFUSCATED_MIN) out.push([Math.max(paragraphStart, breaks[i]! - OBFUSCATED_REACH), Math.min(ends[p]!, breaks[j - 1]! + OBFUSCATED_REACH)]);
    i = j;
  }
  return out;
}

/**
 * A stretch of obfuscatedStretches as the word model reads it, the obfuscating characters out:
 * in the order a person reads it (override runs forwards) and, when it has an override run, also
 * as stored (the order a model given the text reads).
 */
export function deobfuscated(stretch: string): string[] {
  const stored = stretch.replace(OBFUSCATING, "");
  const forwards = displayedForwards(stretch);
  return forwards === stretch ? [stored] : [forwards.replace(OBFUSCATING, ""), stored];
}

/** NFKC of `part` (byWideStretches normalises only what is beyond ASCII). */
const nfkcOf = (part: string): string => part.normalize("NFKC");

/** Latin letters with a diacritic (U+00C0-U+024F) and the ASCII letter each is written on. */
const LATIN_BASE = new Map<string, string>();
for (let c = 0xc0; c <= 0x24f; c++) {
  const ch = String.fromCharCode(c);
  const base = ch.normalize("NFD").charAt(0);
  if (base !== ch && /^[A-Za-z]$/.test(base)) LATIN_BASE.set(ch, base);
}
const LATIN_ACCENTED = /[\u00c0-\u024f]/g;
const LATIN_ACCENTED_ONE = /[\u00c0-\u024f]/;
/** `text` with the diacritics of Latin letters dropped, one code unit for one (offsets hold). */
export function latinAccentsDropped(text: string): string {
  if (!testBeyondAscii(text, LATIN_ACCENTED_ONE)) return text;
  return text.replace(LATIN_ACCENTED, (ch) => LATIN_BASE.get(ch) ?? ch);
}

/** `text` with each right-to-left override run's text reversed and its marks dropped: as it displays. `text` itself when it has none. */
function displayedForwards(text: string): string {
  return text.includes("\u202e") ? text.replace(RLO_RUN, (_, run: string) => Array.from(run).reverse().join("")) : text;
}

/**
 * The text smuggled in `text`'s Unicode tag characters (U+E0020 to U+E007E, each an ASCII
 * character plus 0xE0000, and shown as nothing), its runs a line each, and where the first run
 * starts; null when there is none.
 */
export function unicodeTags(text: string): { text: string; start: number } | null {
  // Each tag character is stored as the high surrogate U+DB40 and a low one.
  if (!text.includes("\udb40")) return null;
  let start = -1;
  const runs: string[] = [];
  TAG_RUN.lastIndex = 0;
  for (let m = TAG_RUN.exec(text); m !== null; m = TAG_RUN.exec(text)) {
    if (start < 0) start = m.index;
    // One character at a time (a spread of a megabyte-long run would overflow the call stack).
    let out = "";
    for (const ch of m[0]) out += String.fromCharCode(ch.codePointAt(0)! - 0xe0000);
    runs.push(out);
  }
  return start < 0 ? null : { text: runs.join("\n"), start };
}

/**
 * Every reading of `text`, `raw` first. `limits` bounds the decoded readings (decode/views.ts);
 * `vocabulary` (lower-case words) picks among the ways a leetspeak word reads (`1` as `i` or
 * `l`). Readings that equal one already listed are left out.
 */
export function readingsOf(text: string, limits?: DecodeLimits, vocabulary?: ReadonlySet<string>): Reading[] {
  const out: Reading[] = [{ name: "raw", text }];
  // Readings are few: a list compared by identity and length first costs less than hashing each.
  const seen: string[] = [text];
  /**
   * Adds reading `t` of `name`, made from `source`: only the part that differs from the source,
   * with READING_CONTEXT around it, since the rest was read already (a base64 blob decoded in a
   * 64 KiB page is not a reason to read the page twice).
   */
  const add = (name: ReadingName, t: string | null, source: string | null, via?: readonly string[]) => {
    if (t === null || t.length === 0 || seen.includes(t)) return;
    seen.push(t);
    if (source === null) {
      out.push({ name, text: t });
      return;
    }
    const { text: part, changed } = changedPart(source, t);
    out.push(via === undefined ? { name, text: part } : { name, text: part, via, decodedSpan: changed });
  };
  let plain = text;
  let nfkc: string | null = null;
  if (!isAscii(text)) {
    // Text stored backwards inside a right-to-left override displays forwards: read it so, and
    // make every later reading from it (reversed text with look-alikes or zero-width
    // characters in it too).
    const forwards = displayedForwards(text);
    if (forwards !== text) add("bidi-reversed", forwards, text);
    // NFKC alone keeps other scripts (and Japanese voicing marks) as written, for rules in them.
    nfkc = byWideStretches(forwards, nfkcOf);
    add("nfkc", nfkc, forwards);
    if (testBeyondAscii(nfkc, INVISIBLE_ONE)) {
      add("invisible-removed", nfkc.replace(INVISIBLE, ""), nfkc);
      add("invisible-as-space", nfkc.replace(INVISIBLE, " "), nfkc);
    }
    const tags = unicodeTags(forwards);
    if (tags !== null) add("unicode-tags", tags.text, null);
    // Cyrillic words with Latin look-alikes in them (`зaпpoc`, Latin a, p, o) read in Cyrillic:
    // the folded reading below turns them into Latin, which no Russian phrase matches.
    if (testBeyondAscii(nfkc, CYRILLIC)) add("mixed-script", cyrillicFolded(nfkc), nfkc);
    // Latin letters read without their diacritics, one code unit for one, so offsets into the
    // text hold (`accents`): the lexicons' phrases match French, Spanish or German text however
    // it is accented, and the engine discounts what is quoted or discussed there as in the text
    // as written. A language's own letters are no disguise: `ignoré les consignes` (ignored)
    // read as `ignore` is not an obfuscated order. Look-alikes of other scripts, compatibility
    // forms and combining marks are (the folded reading below).
    if (forwards === text) {
      const accentless = latinAccentsDropped(text);
      if (accentless !== text && !seen.includes(accentless)) {
        seen.push(accentless);
        out.push({ name: "accents", text: accentless });
      }
    }
    // Marks dropped and look-alikes folded to ASCII (decode/normalise.ts): `ignоre` with a
    // Cyrillic о reads as `ignore`.
    plain = normaliseText(forwards);
    add("folded", plain, forwards);
  }
  const leet = leetFolded(plain, vocabulary);
  // Already only windows around what it folded.
  add("leetspeak", leet, null);
  add("spaced-letters", spacedJoined(leet ?? plain), leet ?? plain);
  // Other scripts spaced out, read in their own letters (the folded reading turns Cyrillic
  // into Latin look-alikes, which no Russian phrase matches): in a text with a letter beyond
  // ASCII; one whose only such characters are signs (©, —, €) is read as ASCII text is.
  if (nfkc !== null && testBeyondAscii(nfkc, LETTER_BEYOND)) add("spaced-letters", spacedJoined(nfkc, true), nfkc);
  // Words joined by hyphens read as words, one code unit for one: offsets into the text hold, as
  // for `accents` (what is quoted, code or discussed there is known).
  const joined = joinedWords(text);
  if (joined !== null && !seen.includes(joined)) {
    seen.push(joined);
    out.push({ name: "joined-words", text: joined });
  }
  for (const view of decodeViews(plain, limits).slice(1)) add("decoded", view.text, plain, view.via);
  return out;
}

/** Fewest words a run joined by hyphens or underscores holds to be read as a sentence (joinedWords). */
const JOINED_MIN = 5;
/** What may stand before such a run: not a path, an address, an identifier, a flag or another run (`/how-to-...`, `@x`, `a.b-c`, `--no-...`). */
const isJoinedBoundary = (c: number): boolean => !(isAsciiLetter(c) || isDigit(c) || c === 47 || c === 46 || c === 64 || c === 35 || c === 45 || c === 95 || c === 92 || c === 58);
const isJoiner = (c: number): boolean => c === 45 || c === 95;
const JOINERS = /[-_]/g;

/**
 * `text` with the hyphens and underscores of each run of JOINED_MIN words or more they join
 * (`Ignore-all-previous-instructions-and-reply`, `send_the_keys_to_the_collector`) as spaces,
 * one code unit for one; null when there is none. A model reads such a run as the sentence it is;
 * a lexicon's phrase or a pattern does not match it. Not a URL's path, a file name, a flag, an
 * id or a function's name (nothing but a space, a bracket or punctuation before the run; no
 * digit, `-`, `_`, `/`, `@`, `.word` or `(` after it): test names
 * (`def test_refuses_to_send_keys_to_attacker():`) read as orders (11 more benign texts of the
 * read sets when underscores were read without that).
 */
export function joinedWords(text: string): string | null {
  let parts: string[] | null = null;
  let done = 0;
  const n = text.length;
  // The next hyphen and the next underscore, each searched for again only once passed.
  let hyphen = -2;
  let underscore = -2;
  const next = (from: number): number => {
    if (hyphen !== -1 && hyphen < from) hyphen = text.indexOf("-", from);
    if (underscore !== -1 && underscore < from) underscore = text.indexOf("_", from);
    return hyphen < 0 ? underscore : underscore < 0 ? hyphen : Math.min(hyphen, underscore);
  };
  for (let p = next(0); p >= 0; ) {
    let end = p + 1;
    if (p > 0 && isAsciiLetter(text.charCodeAt(p - 1)) && end < n && isAsciiLetter(text.charCodeAt(end))) {
      let start = p - 1;
      while (start > 0 && isAsciiLetter(text.charCodeAt(start - 1))) start--;
      // The words, each after one hyphen or underscore.
      let words = 1;
      end = p;
      while (end + 1 < n && isJoiner(text.charCodeAt(end)) && isAsciiLetter(text.charCodeAt(end + 1))) {
        end++;
        while (end < n && isAsciiLetter(text.charCodeAt(end))) end++;
        words++;
      }
      const after = end < n ? text.charCodeAt(end) : 32;
      // A token that goes on (`-2`, `_v`, `/x`, `@host`, `.example`) is a name, not a sentence; so is one called (`(`).
      const nameAfter = isDigit(after) || isJoiner(after) || after === 47 || after === 64 || after === 40 || (after === 46 && end + 1 < n && isAsciiLetter(text.charCodeAt(end + 1)));
      if (words >= JOINED_MIN && (start === 0 || isJoinedBoundary(text.charCodeAt(start - 1))) && !nameAfter) {
        (parts ??= []).push(text.slice(done, start), text.slice(start, end).replace(JOINERS, " "));
        done = end;
      }
    }
    p = next(end);
  }
  if (parts === null) return null;
  parts.push(text.slice(done));
  return parts.join("");
}

const CYRILLIC = /[\u0400-\u04ff]/;
/** A run of Latin and Cyrillic letters (a word of either script, or of both). */
const LATIN_OR_CYRILLIC_WORD = /[A-Za-z\u0400-\u04ff]+/g;
const LATIN_LETTER = /[A-Za-z]/;
/** Latin letters drawn like Cyrillic ones, and those. */
const CYRILLIC_LOOKALIKE: Readonly<Record<string, string>> = {
  a: "\u0430", c: "\u0441", e: "\u0435", o: "\u043e", p: "\u0440", x: "\u0445", y: "\u0443",
  A: "\u0410", B: "\u0412", C: "\u0421", E: "\u0415", H: "\u041d", K: "\u041a", M: "\u041c", O: "\u041e", P: "\u0420", T: "\u0422", X: "\u0425", Y: "\u0423",
};

/**
 * `text` with the Latin look-alikes in each word that mixes Latin and Cyrillic letters made
 * Cyrillic; null when there is no such word. A word is one script or the other: one that mixes
 * them was written to slip past a pattern (UTS #39, mixed-script detection).
 */
export function cyrillicFolded(text: string): string | null {
  let changed = false;
  const out = text.replace(LATIN_OR_CYRILLIC_WORD, (word) => {
    if (!CYRILLIC.test(word) || !LATIN_LETTER.test(word)) return word;
    changed = true;
    let folded = "";
    for (const ch of word) folded += CYRILLIC_LOOKALIKE[ch] ?? ch;
    return folded;
  });
  return changed ? out : null;
}

const LATIN_CYRILLIC_OR_GREEK_WORD = /[A-Za-z\u0370-\u03ff\u0400-\u04ff\u0500-\u052f]+/g;
const CYRILLIC_OR_GREEK = /[\u0370-\u03ff\u0400-\u04ff\u0500-\u052f]/;
const MIXED_PAIR = /[A-Za-z][\u0370-\u03ff\u0400-\u04ff\u0500-\u052f]|[\u0370-\u03ff\u0400-\u04ff\u0500-\u052f][A-Za-z]/;

/**
 * `text` with each word that mixes Latin letters with Cyrillic or Greek ones written in one
 * script (UTS #39: such a word was written to slip past a pattern), the script its letters
 * that have no look-alike in the other belong to: `fісhіеr` (Cyrillic і, с, е) reads
 * `fichier`, `зaпpoc` (Latin a, p, o) reads `запрос`. Null when no word mixes them. One code unit
 * for one: offsets into `text` hold. What the word model reads: the folded reading (Latin
 * throughout) would turn a Russian text's own words into look-alikes it never learned.
 */
export function mixedWordsFolded(text: string): string | null {
  // A mixed word has a Latin letter beside a Cyrillic or Greek one: most texts have none.
  if (!testBeyondAscii(text, MIXED_PAIR, 1)) return null;
  let changed = false;
  const out = text.replace(LATIN_CYRILLIC_OR_GREEK_WORD, (word) => {
    if (!CYRILLIC_OR_GREEK.test(word) || !LATIN_LETTER.test(word)) return word;
    // Latin when every other letter has a Latin look-alike (CONFUSABLES, what the folded reading uses).
    let latin = true;
    for (const ch of word) if (ch > "\u007f" && !CONFUSABLES.has(ch)) latin = false;
    // Letters of a third script (a Greek one with no Latin look-alike beside Latin ones) leave the word as written.
    if (!latin && !CYRILLIC.test(word)) return word;
    let folded = "";
    for (const ch of word) folded += latin ? (CONFUSABLES.get(ch) ?? ch) : (CYRILLIC_LOOKALIKE[ch] ?? ch);
    if (folded !== word) changed = true;
    return folded;
  });
  return changed ? out : null;
}

/** A blank line, white space on it or not: where a paragraph ends (mixedStretches). */
const BLANK_LINE = /\n[ \t\r\u00a0]*\n/g;
/** Two line breaks in a row or more (the run whole): where a paragraph ends (leetStretches). */
const DOUBLE_BREAK = /\n\n+/g;
/** Fewest words written in look-alike letters in a stretch (mixedStretches). */
const MIXED_MIN = 3;
/** Look-alike words further apart than this are in different stretches. */
const MIXED_GAP = 120;
/** Of a stretch's words (between white space), at least this share is written in look-alike letters. */
const MIXED_SHARE = 0.2;
/** Text kept on each side of a stretch's first and last such word, within its paragraph. */
const MIXED_CONTEXT = 200;

/**
 * Stretches of `text` written in look-alike letters: MIXED_MIN words or more that
 * mixedWordsFolded wrote in one script (`folded`, of the same length), each within MIXED_GAP of
 * the next in the same paragraph, making MIXED_SHARE of the words there; as [start, end), with
 * MIXED_CONTEXT around them within their paragraph (between blank lines). Text written so to
 * slip past patterns, which the word model reads as a person reads it. Random bytes read as
 * text have such words now and then, never that densely. One pass over the characters.
 */
export function mixedStretches(text: string, folded: string): [start: number, end: number][] {
  if (text === folded) return [];
  // The words mixedWordsFolded changed.
  const words: [number, number][] = [];
  let wordStart = -1;
  let changed = false;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 32;
    if (c === 32 || (c >= 9 && c <= 13) || c === 0xa0) {
      if (changed) words.push([wordStart, i]);
      wordStart = -1;
      changed = false;
      continue;
    }
    if (wordStart < 0) wordStart = i;
    if (folded.charCodeAt(i) !== c) changed = true;
  }
  return denseStretches(text, words, { min: MIXED_MIN, gap: MIXED_GAP, share: MIXED_SHARE, context: MIXED_CONTEXT, paragraph: BLANK_LINE, withinParagraph: true });
}

/**
 * Stretches of `text` dense with marked words (`words`, [start, end) in order, leetspeak or
 * look-alike ones): `min` or more, each within `gap` of the next (with no `paragraph` break
 * between, when `withinParagraph`), making `share` of the words there (between white space); as
 * [start, end), with `context` around them cut at their paragraph's ends. The breaks are looked
 * for within the context only: a megabyte with no blank line and a stretch every few hundred
 * characters is not searched to its ends for each. `paragraph`: a global regular expression.
 */
function denseStretches(
  text: string,
  words: readonly (readonly [number, number, ...unknown[]])[],
  o: { min: number; gap: number; share: number; context: number; paragraph: RegExp; withinParagraph: boolean },
): [start: number, end: number][] {
  // The first break in text[from, to) and where the last one ends (the expression is global and
  // shared: each search starts it at 0 and leaves it there).
  const firstBreak = (from: number, to: number): RegExpExecArray | null => {
    o.paragraph.lastIndex = 0;
    const m = o.paragraph.exec(text.slice(from, to));
    o.paragraph.lastIndex = 0;
    return m;
  };
  const lastBreakEnd = (from: number, to: number): number => {
    const part = text.slice(from, to);
    let end = -1;
    o.paragraph.lastIndex = 0;
    for (let m = o.paragraph.exec(part); m !== null; m = o.paragraph.exec(part)) end = m.index + m[0].length;
    return end;
  };
  const out: [number, number][] = [];
  for (let w = 0; w < words.length; ) {
    let last = w;
    while (last + 1 < words.length && words[last + 1]![0] - words[last]![1] <= o.gap && !(o.withinParagraph && firstBreak(words[last]![1], words[last + 1]![0]) !== null)) last++;
    const first = words[w]![0];
    const end = words[last]![1];
    const count = last - w + 1;
    w = last + 1;
    if (count < o.min || count < text.slice(first, end).split(/\s+/).length * o.share) continue;
    const base = Math.max(0, first - o.context);
    const before = lastBreakEnd(base, first);
    const after = firstBreak(end, end + o.context);
    out.push([before < 0 ? base : base + before, after === null ? Math.min(text.length, end + o.context) : end + after.index]);
  }
  return out;
}

/** Text kept on each side of what a reading changed: more than any cue intent's reach. */
const READING_CONTEXT = 512;

/**
 * The part of `reading` that differs from `source` (they share a prefix and a suffix), with
 * READING_CONTEXT characters on each side (the whole reading when little is shared), and where
 * in it the difference lies.
 */
export function changedPart(source: string, reading: string): { text: string; changed: [start: number, end: number] } {
  const max = Math.min(source.length, reading.length);
  let prefix = 0;
  while (prefix < max && source.charCodeAt(prefix) === reading.charCodeAt(prefix)) prefix++;
  let suffix = 0;
  while (suffix < max - prefix && source.charCodeAt(source.length - 1 - suffix) === reading.charCodeAt(reading.length - 1 - suffix)) suffix++;
  const from = Math.max(0, prefix - READING_CONTEXT);
  const to = Math.min(reading.length, reading.length - suffix + READING_CONTEXT);
  const text = from === 0 && to === reading.length ? reading : reading.slice(from, to);
  return { text, changed: [prefix - from, reading.length - suffix - from] };
}

const isAsciiLetter = (c: number): boolean => (c | 0x20) >= 97 && (c | 0x20) <= 122;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isHexLetter = (c: number): boolean => (c | 0x20) >= 97 && (c | 0x20) <= 102;
/** Characters of a leetspeak word (ASCII letters, digits, `@`, `$`, `!`): 1 where one is. */
const LEET_CHARS = new Uint8Array(128);
for (let c = 0; c < 128; c++) if (isAsciiLetter(c) || isDigit(c) || c === 64 || c === 36 || c === 33) LEET_CHARS[c] = 1;
const isLeetChar = (c: number): boolean => c < 128 && LEET_CHARS[c] === 1;
/** 1 for an ASCII letter, 2 for a digit, `@`, `$` or `!`. */
const LEET_KIND = new Uint8Array(128);
for (let c = 0; c < 128; c++) LEET_KIND[c] = isAsciiLetter(c) ? 1 : LEET_CHARS[c] === 1 ? 2 : 0;
/** Runs of signs (digits, `@`, `$`, `!`), from the shared index (class-runs.ts): where a leetspeak word can be. */
const SIGN_RUNS = classRuns.register({ members: classTable("0123456789@$!"), minLength: 1 });

/** Lower-case letter a leetspeak character reads as (0 for none), and its second reading (`1` as `l`). */
const LEET_CODE = new Uint8Array(128);
const LEET_ALT_CODE = new Uint8Array(128);
for (const [c, letter] of Object.entries(LEET)) LEET_CODE[c.charCodeAt(0)] = letter.charCodeAt(0);
for (const [c, letter] of Object.entries(LEET_ALTERNATIVES)) LEET_ALT_CODE[c.charCodeAt(0)] = letter.charCodeAt(0);

/**
 * A vocabulary's words and stems (entries ending in `*`) as a trie over a-z, to tell without
 * making a string whether a token can fold to one of them (mayFold): `next[node * 26 + letter]`
 * is the child (0: none; the root, 0, is nobody's child), `ends[node]` says whether a word
 * (WORD) or a stem (STEM) ends there. A token that folds to no word leaves it within a letter or
 * two.
 */
export interface FoldTrie {
  readonly next: Int32Array;
  readonly ends: Uint8Array;
}
const WORD = 1;
const STEM = 2;
const foldTries = new WeakMap<ReadonlySet<string>, FoldTrie>();
export const foldTrieOf = (vocabulary: ReadonlySet<string>): FoldTrie => {
  let trie = foldTries.get(vocabulary);
  if (trie !== undefined) return trie;
  const next: number[] = [];
  const ends: number[] = [0];
  for (const entry of vocabulary) {
    const stem = entry.endsWith("*");
    const word = stem ? entry.slice(0, -1) : entry;
    if (!/^[a-z]+$/.test(word)) continue;
    let node = 0;
    for (let i = 0; i < word.length; i++) {
      const at = node * 26 + word.charCodeAt(i) - 97;
      if (next[at] === undefined || next[at] === 0) {
        next[at] = ends.length;
        ends.push(0);
      }
      node = next[at]!;
    }
    ends[node]! |= stem ? STEM : WORD;
  }
  const table = new Int32Array(ends.length * 26);
  next.forEach((child, at) => (table[at] = child ?? 0));
  trie = { next: table, ends: Uint8Array.from(ends) };
  foldTries.set(vocabulary, trie);
  return trie;
};

/**
 * Whether `text[start, end)` folds to a word of the vocabulary as foldLeetWord reads it (the
 * common reading, or, with at most MAX_AMBIGUOUS ambiguous digits, each choice for them), or
 * starts with a stem of three letters or more followed by more: the same test, without a string.
 */
export function mayFold(text: string, start: number, end: number, trie: FoldTrie): boolean {
  let ambiguous = 0;
  for (let k = start; k < end; k++) if (LEET_ALT_CODE[text.charCodeAt(k)] !== 0) ambiguous++;
  return foldsFrom(text, start, end, trie, 0, start, ambiguous > 0 && ambiguous <= MAX_AMBIGUOUS);
}

/**
 * Whether `text[k, end)` leads from trie node `node` to a word, or past a stem (mayFold); `both`:
 * ambiguous digits are tried both ways, depth first (most tokens leave the trie within two
 * letters).
 */
function foldsFrom(text: string, start: number, end: number, trie: FoldTrie, node: number, k: number, both: boolean): boolean {
  const { next, ends } = trie;
  for (; k < end; k++) {
    if (k - start >= 3 && (ends[node]! & STEM) !== 0) return true;
    const c = text.charCodeAt(k);
    const letter = LEET_CODE[c] || c | 0x20;
    const child = letter >= 97 && letter <= 122 ? next[node * 26 + letter - 97]! : 0;
    const alternative = both ? LEET_ALT_CODE[c]! : 0;
    if (alternative !== 0) {
      const other = next[node * 26 + alternative - 97]!;
      if (other !== 0 && foldsFrom(text, start, end, trie, other, k + 1, both)) return true;
    }
    if (child === 0) return false;
    node = child;
  }
  return (ends[node]! & WORD) !== 0;
}

/** Whether `word` is in the vocabulary, as a word or as a word starting with one of its stems. */
function inVocabulary(word: string, vocabulary: ReadonlySet<string>): boolean {
  if (vocabulary.has(word)) return true;
  for (let length = word.length - 1; length >= 3; length--) if (vocabulary.has(`${word.slice(0, length)}*`)) return true;
  return false;
}

/**
 * A leetspeak word as letters: with a vocabulary, the reading of it found there (`1` tried as `i`
 * and as `l`), or null when none is (technical tokens fold to nonsense, and nonsense matches
 * nothing but noise); without one, the common reading.
 */
/** `word` in lower case with each digit or sign read as its commonest letter (LEET). */
const leetLetters = (word: string): string => word.toLowerCase().replace(/[0-9@$!]/g, (c) => LEET[c]!);

export function foldLeetWord(word: string, vocabulary?: ReadonlySet<string>): string | null {
  const lower = word.toLowerCase();
  const common = leetLetters(lower);
  if (vocabulary === undefined || inVocabulary(common, vocabulary)) return common;
  const ambiguous: number[] = [];
  for (let i = 0; i < lower.length && ambiguous.length <= MAX_AMBIGUOUS; i++) if (LEET_ALTERNATIVES[lower[i]!] !== undefined) ambiguous.push(i);
  if (ambiguous.length === 0 || ambiguous.length > MAX_AMBIGUOUS) return null;
  for (let mask = 1; mask < 1 << ambiguous.length; mask++) {
    const chars = common.split("");
    ambiguous.forEach((at, bit) => {
      if (mask & (1 << bit)) chars[at] = LEET_ALTERNATIVES[lower[at]!]!;
    });
    const candidate = chars.join("");
    if (inVocabulary(candidate, vocabulary)) return candidate;
  }
  return null;
}

/**
 * Units and suffixes a number takes (`11ms`, `64kb`, `500px`, `2nd`), lower case: digits and one
 * of these are a quantity, not a word (`7he`, `3nd` and `4ny` are words).
 */
const UNITS =
  "ns us ms s sec secs min mins h hr hrs d w wk wks mo y yr yrs k m b kb mb gb tb pb kib mib gib tib bit bits bps kbps mbps gbps " +
  "px pt em rem vh vw dp sp hz khz mhz ghz x fps rpm c f v mv kv a ma kw mw wh kwh mah mm cm km ft mi g kg mg lb lbs oz l ml " +
  "th am pm p i gen";
/** A word of up to four letters as a number, case folded (five bits a letter): no string made per token. */
const letterKey = (text: string, start: number, end: number): number => {
  let key = 0;
  for (let j = start; j < end; j++) key = key * 32 + ((text.charCodeAt(j) | 0x20) - 96);
  return key;
};
const UNIT_KEYS: ReadonlySet<number> = new Set(UNITS.split(" ").map((u) => letterKey(u, 0, u.length)));
/** The ordinal suffixes and the digit each follows (`1st`, `22nd`, `3rd`). */
const ORDINALS: ReadonlyMap<number, number> = new Map([
  [letterKey("st", 0, 2), 49],
  [letterKey("nd", 0, 2), 50],
  [letterKey("rd", 0, 2), 51],
]);

/** Whether `text[start, end)` is digits then a unit (UNITS) or the ordinal suffix of its last digit (`1st`, `22nd`), and nothing else. */
function isNumberWithUnit(text: string, start: number, end: number): boolean {
  let k = start;
  while (k < end && isDigit(text.charCodeAt(k))) k++;
  if (k === start || end - k > 4) return false;
  for (let j = k; j < end; j++) if (!isAsciiLetter(text.charCodeAt(j))) return false;
  const key = letterKey(text, k, end);
  return UNIT_KEYS.has(key) || ORDINALS.get(key) === text.charCodeAt(k - 1);
}

/** Whether hex digits `text[start, end)` are a piece of a longer id: a UUID's, an address's, a colour (`-`, `:`, `.`, `/`, `#`, `=`, `_` on either side). */
function inHexId(text: string, start: number, end: number): boolean {
  const before = start > 0 ? text.charCodeAt(start - 1) : 0;
  const after = end < text.length ? text.charCodeAt(end) : 0;
  return HEX_JOINERS.has(before) || HEX_JOINERS.has(after);
}
const HEX_JOINERS: ReadonlySet<number> = new Set([..."-:./#=_"].map((c) => c.charCodeAt(0)));

/**
 * Whether `text[start, end)` is digits and one letter at an end: an id or a time as often as a
 * word (`s13`, `713Z`; `d45` is "das", `m17` "mit"), so leetFolded reads it only near a word that
 * is not.
 */
function isIdLike(text: string, start: number, end: number): boolean {
  if (isAsciiLetter(text.charCodeAt(start))) return isDigitRun(text, start + 1, end);
  return isAsciiLetter(text.charCodeAt(end - 1)) && isDigitRun(text, start, end - 1);
}

/** Whether `text[start, end)` holds a digit, `@`, `$` or `!`. */
function hasSign(text: string, start: number, end: number): boolean {
  for (let j = start; j < end; j++) if (LEET_KIND[text.charCodeAt(j)] === 2) return true;
  return false;
}

/** Whether `text[start, end)` is digits only. */
function isDigitRun(text: string, start: number, end: number): boolean {
  for (let j = start; j < end; j++) if (!isDigit(text.charCodeAt(j))) return false;
  return true;
}

/**
 * The word `text[start, end)` reads as, or null: refused when too short or long (a digest), with
 * no letter (a number) or no sign (`word`), a hex id (`4dd` and `d3c0d3`, short, are words), a
 * long number, a mail address or a number with its unit, or (with
 * a vocabulary) when no reading of it is a word there.
 */
function leetWord(text: string, start: number, end: number, vocabulary: ReadonlySet<string> | undefined, known: FoldTrie | null): string | null {
  const length = end - start;
  if (length < 3 || length >= 25) return null;
  let letters = 0;
  let signs = 0;
  let digitRun = 0;
  let longDigits = false;
  let hex = true;
  let mail = false;
  for (let j = start; j < end; j++) {
    const c = text.charCodeAt(j);
    if (isAsciiLetter(c)) {
      letters++;
      digitRun = 0;
      if (!isHexLetter(c)) hex = false;
    } else if (isDigit(c)) {
      signs++;
      if (++digitRun >= 5) longDigits = true;
    } else {
      signs++;
      digitRun = 0;
      hex = false;
      // `@` between letters with a dot and a letter after the word: a mail address (`ops@evil.test`);
      // without the dot it is a letter (`a5s1$t@n7`).
      if (c === 64 && j > start && isAsciiLetter(text.charCodeAt(j - 1)) && j + 1 < end && isAsciiLetter(text.charCodeAt(j + 1)) && text.charCodeAt(end) === 46 && isAsciiLetter(text.charCodeAt(end + 1))) mail = true;
    }
  }
  if (letters < 1 || signs < 1 || (hex && (length >= HEX_ID || inHexId(text, start, end))) || longDigits || mail) return null;
  // A number with a unit (`11ms`, `64kb`, `500px`) is not a word written in digits.
  if (isNumberWithUnit(text, start, end)) return null;
  // Most tokens (ids, versions, durations) fold to no word: out before folding.
  if (known !== null && !mayFold(text, start, end, known)) return null;
  return foldLeetWord(text.slice(start, end), vocabulary);
}

/**
 * The leetspeak words of the token `text[start, end)`, which may hold `!`: at an end it is
 * punctuation (`1n5truct10n5!`, `k3y!`) or a letter (`@P!` is `API`), read without it first;
 * inside, a letter (`th!5`) or a separator (`1gn0r3!4ll!pr3v10u5`), read as one word first, then
 * as words apart. A token with no sign but its `!` is a word and a mark (`be!`).
 */
function bangWords(text: string, start: number, end: number, vocabulary: ReadonlySet<string> | undefined, known: FoldTrie | null): [number, number, string, boolean][] {
  let from = start;
  let to = end;
  while (from < to && text.charCodeAt(from) === 33) from++;
  while (to > from && text.charCodeAt(to - 1) === 33) to--;
  // (The token has a letter next to a sign: only a `!` taken off can leave it with none.)
  if (from === to || ((from !== start || to !== end) && !hasSign(text, from, to))) return [];
  const word = (a: number, b: number): [number, number, string, boolean][] => {
    const folded = leetWord(text, a, b, vocabulary, known);
    return folded === null ? [] : [[a, b, folded, isIdLike(text, a, b)]];
  };
  const whole = word(from, to);
  if (whole.length > 0) return whole;
  if (from !== start || to !== end) {
    const withBang = word(start, end);
    if (withBang.length > 0) return withBang;
  }
  const inner = text.indexOf("!", from);
  if (inner < 0 || inner >= to) return [];
  const parts: [number, number, string, boolean][] = [];
  for (let a = from; a < to; ) {
    let b = text.indexOf("!", a);
    if (b < 0 || b > to) b = to;
    if (b > a && hasSign(text, a, b) && hasLetter(text, a, b)) parts.push(...word(a, b));
    else if (b > a) {
      // A plain word between separators: itself (`4ll!the!rules` has `the`).
      const plain = text.slice(a, b).toLowerCase();
      if (vocabulary === undefined || vocabulary.has(plain)) parts.push([a, b, plain, false]);
    }
    a = b + 1;
  }
  return parts;
}

/** Whether `text[start, end)` holds a `!`. */
function hasBang(text: string, start: number, end: number): boolean {
  for (let j = start; j < end; j++) if (text.charCodeAt(j) === 33) return true;
  return false;
}

/** Whether `text[start, end)` holds an ASCII letter. */
function hasLetter(text: string, start: number, end: number): boolean {
  for (let j = start; j < end; j++) if (isAsciiLetter(text.charCodeAt(j))) return true;
  return false;
}

/**
 * Leetspeak read as letters inside words (`1gn0r3` -> `ignore`), as windows of LEET_CONTEXT
 * around each such word joined by line breaks; null when there is none. A word counts when it has
 * a letter and a digit or sign standing for one and reads as a word (leetWord). One pass over the
 * characters: most words have no digit and are passed over at once.
 */
export function leetFolded(text: string, vocabulary?: ReadonlySet<string>): string | null {
  const words = leetWords(text, vocabulary);
  if (words.length === 0) return null;
  const out: string[] = [];
  let w = 0;
  while (w < words.length) {
    // A window: LEET_CONTEXT around a run of words whose contexts touch.
    const from = Math.max(0, words[w]![0] - LEET_CONTEXT);
    let to = Math.min(text.length, words[w]![1] + LEET_CONTEXT);
    let piece = "";
    let at = from;
    for (; w < words.length && words[w]![0] - LEET_CONTEXT <= to; w++) {
      const [start, end, folded] = words[w]!;
      piece += shortWordsFolded(text, at, start, vocabulary) + folded;
      at = end;
      to = Math.min(text.length, Math.max(to, end + LEET_CONTEXT));
    }
    out.push(piece + shortWordsFolded(text, at, to, vocabulary));
  }
  return out.join("\n");
}

/** The leetspeak words of `text` (leetFolded), in order: where each lies and the word it reads as. */
function leetWords(text: string, vocabulary?: ReadonlySet<string>): [start: number, end: number, folded: string, idLike: boolean][] {
  let words: [start: number, end: number, folded: string, idLike: boolean][] = [];
  const n = text.length;
  const known = vocabulary === undefined ? null : foldTrieOf(vocabulary);
  // The runs of signs (one SIMD pass shared with the decoders and the pattern rules, not a loop
  // over the characters: most text has no sign, and ids and digests make tens of thousands of
  // runs per megabyte); each word where one touches a letter (a run of letters, digits, `@`, `$`
  // and `!`) is then read whole, once, and only when its length can make a word.
  const signs = classRuns.runs(text, SIGN_RUNS);
  let done = 0;
  for (let r = 0; r < signs.length; r += 2) {
    const a = signs[r]!;
    const b = signs[r + 1]!;
    // Inside the word just read, or touching no letter.
    if (a < done || !((a > 0 && isAsciiLetter(text.charCodeAt(a - 1))) || (b < n && isAsciiLetter(text.charCodeAt(b))))) continue;
    let start = a;
    while (start > 0 && isLeetChar(text.charCodeAt(start - 1))) start--;
    let end = b;
    while (end < n && isLeetChar(text.charCodeAt(end))) end++;
    done = end;
    if (!hasBang(text, start, end)) {
      const folded = leetWord(text, start, end, vocabulary, known);
      if (folded !== null) words.push([start, end, folded, isIdLike(text, start, end)]);
    } else for (const w of bangWords(text, start, end, vocabulary, known)) words.push(w);
  }
  // A word that could be an id stays only near one that could not.
  if (words.some((w) => w[3])) {
    const strong = words.filter((w) => !w[3]).map((w) => w[0]);
    let p = 0;
    words = words.filter((w) => {
      if (!w[3]) return true;
      while (p < strong.length && strong[p]! < w[0] - LEET_CONTEXT) p++;
      return p < strong.length && strong[p]! <= w[0] + LEET_CONTEXT;
    });
  }
  return words;
}

/** Fewest leetspeak words (of the vocabulary) in a stretch for leetStretches. */
const LEET_STRETCH_MIN = 4;
/** Leetspeak words further apart than this are in different stretches. */
const LEET_STRETCH_GAP = 120;
/** Of a stretch's words (between white space), at least this share is leetspeak of the vocabulary: random characters make such words only now and then. */
const LEET_STRETCH_SHARE = 0.2;
/** Text kept on each side of a stretch's first and last leetspeak word, within its paragraph. */
const LEET_STRETCH_CONTEXT = 200;

/**
 * Stretches of `text` written in leetspeak: LEET_STRETCH_MIN words or more that read as words of
 * the vocabulary, each within LEET_STRETCH_GAP of the next, making LEET_STRETCH_SHARE of the
 * words there; as [start, end), with LEET_STRETCH_CONTEXT around them in their paragraph. The
 * word model reads them as leetReadable gives them, as it reads obfuscatedStretches: the folded
 * reading keeps the words no lexicon has as written, and the model knows attacks by those too.
 */
export function leetStretches(text: string, vocabulary: ReadonlySet<string>): [start: number, end: number][] {
  const words = leetWords(text, vocabulary);
  if (words.length < LEET_STRETCH_MIN) return [];
  return denseStretches(text, words, { min: LEET_STRETCH_MIN, gap: LEET_STRETCH_GAP, share: LEET_STRETCH_SHARE, context: LEET_STRETCH_CONTEXT, paragraph: DOUBLE_BREAK, withinParagraph: false });
}

/**
 * A leetStretches paragraph with every token of letters and digits or signs read as letters
 * (`r3c0rd3d` -> `recorded`), short ones too: as a word of the vocabulary where one reading is
 * (`11nk5` -> `links`), else with each sign's commonest letter.
 */
export function leetReadable(stretch: string, vocabulary: ReadonlySet<string>): string {
  // A `!` at a token's end is punctuation (`s4f3!`), inside it a letter (`w4rn!n95`).
  return stretch.replace(/[A-Za-z0-9@$!]*[A-Za-z0-9@$]/g, (token) => {
    if (!/[0-9@$!]/.test(token) || (!/[A-Za-z]/.test(token) && token.length > 3)) return token;
    const word = foldLeetWord(token, vocabulary);
    if (word !== null) return word;
    // A `!` inside a token that reads as no word is a separator (`1gn0r3!4ll!pr3v10u5`), as bangWords reads it.
    if (!token.includes("!")) return leetLetters(token);
    return token
      .split("!")
      .map((part) => foldLeetWord(part, vocabulary) ?? leetLetters(part))
      .join(" ");
  });
}

/**
 * Short words written in leetspeak (`70` to, `15` is, `1n` in, `d3` de, `4` a) are too short to
 * tell from numbers and ids anywhere (leetWord wants three characters and a letter); beside a
 * longer leetspeak word, inside its reading's window, they are read when they fold to one of
 * SHORT_WORDS or to a word of the vocabulary. Not a number in a version, time, issue or path
 * (`3.8.0`, `10:30`, `#42`, `/v2`): a digit run joined to more by punctuation stays.
 */
const SHORT_TOKEN = /(?<![A-Za-z0-9@$!#./:_%+=-])[A-Za-z0-9@$]{1,3}(?![A-Za-z0-9@$!]|[.:/,_%-][A-Za-z0-9])/g;
const SHORT_WORDS: ReadonlySet<string> = new Set(
  ("a i o y at to is in on of be as it so or if by an no do go me my we us up the and for not set all its out get has was are any you " +
    "le la les de du un une et en au ce se sa ta te tu il ne je si " +
    "el lo es al su " +
    "zu im am um ob da er " +
    "os as do da em um na ao").split(" "),
);
/**
 * `text[from, to)` with its short leetspeak words read. SHORT_TOKEN looks one character behind a
 * token and two ahead: it runs on `text[from - 1, to + 2)`, so what lies just beyond either end
 * counts, and no search runs on past `to` (a window's end, with the text's megabytes after it).
 */
function shortWordsFolded(text: string, from: number, to: number, vocabulary: ReadonlySet<string> | undefined): string {
  const base = Math.max(0, from - 1);
  const part = text.slice(base, Math.min(text.length, to + 2));
  let out = "";
  let at = from;
  SHORT_TOKEN.lastIndex = from - base;
  for (let m = SHORT_TOKEN.exec(part); m !== null && base + m.index + m[0].length <= to; m = SHORT_TOKEN.exec(part)) {
    const token = m[0];
    // Money (`$4`) is no word.
    if (!/[0-9@$]/.test(token) || !/[A-Za-z0-9]/.test(token) || /^\$[0-9]/.test(token)) continue;
    const folded = leetLetters(token);
    if (!SHORT_WORDS.has(folded) && !(folded.length === 3 && vocabulary?.has(folded) === true)) continue;
    out += text.slice(at, base + m.index) + folded;
    at = base + m.index + token.length;
  }
  SHORT_TOKEN.lastIndex = 0;
  return out + text.slice(at, to);
}

/** A letter, digit or apostrophe of LETTER_ANY beyond ASCII (testBeyondAscii searches only those characters). */
const LETTER_BEYOND = /[\p{L}\p{N}\u2019]/u;
const LETTER_ANY = /[\p{L}\p{N}'\u2019]/u;
/** Fewest letters in a run written one by one. */
const SPACED_MIN = 4;

/** Two letters with a separator between them: a short word of a text written letter by letter. */
const SPACED_PAIR = /[a-z][ ._*-][a-z]/gi;
const SPACED_PAIR_ANY = /[\p{L}\p{N}'\u2019][ ._*-][\p{L}\p{N}'\u2019]/gu;

/**
 * Letters written one by one joined into words (`i g n o r e` -> `ignore`, `i.g.n.o.r.e`): runs
 * of four letters or more, each but the last followed by the same one separator (`i.g.n.o.r.e
 * y.o.u` is two words), with no letter before or after the run. Null when there are none. Once
 * a text has such a run, its shorter words written the same way are joined too (`t.h.e u.s.e.r`).
 * `anyScript`: letters of every script (one code unit each: the letters of the lexicons are),
 * digits and apostrophes (`l ' u t i l i s a t e u r`), for text that is not ASCII.
 */
export function spacedJoined(text: string, anyScript = false): string | null {
  const isLetter = anyScript ? isLetterAny : isAsciiLetter;
  // Candidates (three letters, each but the last followed by a separator), then walked by hand.
  const first = runsOf(text, anyScript ? spacedStartAny : spacedStart, isLetter, SPACED_MIN, null);
  if (first.length === 0) return null;
  // The same separators again, for words of two letters and more.
  const separators = new Set(first.map((r) => r[2]));
  const runs = runsOf(text, matchFrom(anyScript ? SPACED_PAIR_ANY : SPACED_PAIR), isLetter, 2, separators);
  let out = "";
  let last = 0;
  for (const [i, end] of runs) {
    let joined = "";
    for (let k = i; k <= end; k += 2) joined += text[k];
    // Between two words written letter by letter, a slash or bar stands for the space (`v o u s /
    // ê t e s`), and so do two spaces or more.
    const gap = text.slice(last, i);
    out += (last > 0 && gap.length <= WORD_GAP_MAX ? gap.replace(WORD_GAP, " ") : gap) + joined;
    last = end + 1;
  }
  return out + text.slice(last);
}

/** A word's end between words written letter by letter: a slash or bar with spaces around it, or a run of spaces. */
const WORD_GAP = /[ \t]*[/|][ \t]*|[ \t]{2,}/g;
/** What lies between two such words (`, / y / `) is short. */
const WORD_GAP_MAX = 12;

/** Where a candidate run starts in `text`, searching from `from`; -1 when none does. */
type StartFinder = (text: string, from: number) => number;

/** The first match of `pattern` (global) from `from`. */
const matchFrom =
  (pattern: RegExp): StartFinder =>
  (text, from) => {
    pattern.lastIndex = from;
    return pattern.exec(text)?.index ?? -1;
  };

const isSpacedSeparator = (c: number): boolean => c === 32 || c === 46 || c === 95 || c === 42 || c === 45;
/**
 * The first place from `from` where a run of ASCII letters written one by one may start, as
 * `/[a-z][ ._*-][a-z][ ._*-][a-z]/gi` finds it, by hand: the expression costs about 3 ns a
 * character on prose, where nearly every letter is followed by another and nothing matches.
 */
export const spacedStart: StartFinder = (text, from) => spacedFrom(text, from, false);
/** A letter of any script, a digit or an apostrophe, as LETTER_ANY finds them in one code unit (spacedJoined's anyScript). */
const isLetterAny = (c: number): boolean => isAsciiLetter(c) || (c >= 128 && LETTER_ANY.test(String.fromCharCode(c))) || (c >= 48 && c <= 57) || c === 39;
/**
 * Where a run of letters written one by one may start, in any script (Cyrillic, Greek, Chinese,
 * Japanese, Korean, accented Latin), digits and apostrophes too: spacedStart with isLetterAny
 * for its letters (`/[\p{L}\p{N}'\u2019][ ._*-]...` in code units, by hand: the expression cost
 * 40 µs on a 10 KiB page with one character beyond ASCII).
 */
export const spacedStartAny: StartFinder = (text, from) => spacedFrom(text, from, true);

/** spacedStart, or spacedStartAny with `anyScript`. */
function spacedFrom(text: string, from: number, anyScript: boolean): number {
  // One pass over the separators: `seps` holds, bit k, whether the character k places back is
  // one; a candidate i has them at i + 1 and i + 3, so it is tried only when the character read
  // (i + 3) and the one two back are separators, and candidates come in order.
  let seps = 0;
  for (let j = from + 1, last = text.length - 2; j <= last; j++) {
    const c = text.charCodeAt(j);
    seps = (seps << 1) | (c < 128 ? SPACED_SEPARATOR[c]! : 0);
    if ((seps & 5) !== 5 || j - 3 < from) continue;
    const i = j - 3;
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 2);
    const d = text.charCodeAt(i + 4);
    if (anyScript ? isLetterAny(a) && isLetterAny(b) && isLetterAny(d) : isAsciiLetter(a) && isAsciiLetter(b) && isAsciiLetter(d)) return i;
  }
  return -1;
}
/** 1 for the separators of letters written one by one (isSpacedSeparator). */
const SPACED_SEPARATOR = new Uint8Array(128);
for (let c = 0; c < 128; c++) SPACED_SEPARATOR[c] = isSpacedSeparator(c) ? 1 : 0;

/** Runs of `min` letters or more written one by one, found from `start`'s candidates: [first, last letter, separator]. */
function runsOf(text: string, start: StartFinder, isLetter: (c: number) => boolean, min: number, separators: ReadonlySet<number> | null): [number, number, number][] {
  const runs: [number, number, number][] = [];
  const n = text.length;
  let from = 0;
  for (let i = start(text, 0); i >= 0; i = start(text, from)) {
    if (i > 0 && isLetter(text.charCodeAt(i - 1))) {
      from = i + 1;
      continue;
    }
    const separator = text.charCodeAt(i + 1);
    let end = i; // the run's last letter
    let count = 1;
    while (end + 2 < n && text.charCodeAt(end + 1) === separator && isLetter(text.charCodeAt(end + 2))) {
      end += 2;
      count++;
    }
    // The last letter must end a word: if a letter follows it, the run ends one letter earlier.
    if (end + 1 < n && isLetter(text.charCodeAt(end + 1))) {
      end -= 2;
      count--;
    }
    from = Math.max(i + 1, end + 1);
    if (count < min || (separators !== null && !separators.has(separator))) continue;
    runs.push([i, end, separator]);
  }
  return runs;
}

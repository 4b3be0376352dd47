/**
 * The readings of a text that injection rules are matched against (issue 5, "multi-pass
 * matching"). An attacker writes an instruction so that a model still reads it but a pattern
 * does not: in full-width or mathematical letters, with zero-width characters inside words, in
 * Cyrillic look-alikes, in leetspeak, letter by letter, or encoded. Each reading undoes one of
 * these, and a reading that cannot differ from one already made is skipped, so plain English
 * text costs one pass.
 */
import { decodeViews, normaliseText, type DecodeLimits } from "../decode/index.ts";
import { INVISIBLE } from "../decode/normalise.ts";

export type ReadingName = "raw" | "nfkc" | "invisible-removed" | "invisible-as-space" | "folded" | "leetspeak" | "spaced-letters" | "unicode-tags" | "decoded";

export interface Reading {
  readonly name: ReadingName;
  readonly text: string;
  /** For `decoded`: the decoders, outermost first. */
  readonly via?: readonly string[];
}

const NON_ASCII = /[^\x00-\x7f]/;
/** Unicode tag characters U+E0020-U+E007E mirror printable ASCII: invisible text ("ASCII smuggling"). */
const TAG_RUN = /[\u{e0020}-\u{e007e}]+/gu;
/**
 * A word of letters, digits, `@` and `$`, found from its first character (the look-behind keeps
 * the search linear: a pattern that looked for the leet pair inside `[...]*` would retry from
 * every character of a long word).
 */
const LEET_WORD = /(?<![a-z0-9@$])[a-z0-9@$]+/gi;
const LEET_PAIR = /[a-z][013457]|[013457][a-z]/i;
/**
 * What leetspeak is not: hex (digests, ids), words with digits no letter is written as (2, 6,
 * 8, 9: versions, dates, sizes), runs of digits, and long tokens. Such words are left as they
 * are, so ordinary technical text yields no leetspeak reading at all.
 */
const NOT_LEET = /^[0-9a-f]+$|[2689]|\d{3}|^.{25}|[a-z]@[a-z]/i;
/** A leetspeak word has at least three letters and a digit standing for one (`1gn0r3`, not `v1`, `7ms`, `4o`). */
const LEET_SHAPE = /^(?=(?:[^a-z]*[a-z]){3})(?=[^013457]*[013457])/i;
/** Text kept on each side of a leetspeak word in its reading: the instruction around it. */
const LEET_CONTEXT = 256;
const LEET: Readonly<Record<string, string>> = { "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", $: "s" };
/** Four or more single letters, each followed by one separator: `i g n o r e`, `i.g.n.o.r.e`. */
const SPACED = /(?<![a-z])(?:[a-z][ ._*-]){3,}[a-z](?![a-z])/gi;
const SPACED_SEPARATOR = /[ ._*-]/g;

/**
 * Every reading of `text`, `raw` first. `limits` bounds the decoded readings (decode/views.ts);
 * readings that equal one already listed are left out.
 */
export function readingsOf(text: string, limits?: DecodeLimits): Reading[] {
  const out: Reading[] = [{ name: "raw", text }];
  const seen = new Set<string>([text]);
  const add = (name: ReadingName, t: string | null, via?: readonly string[]) => {
    if (t === null || t.length === 0 || seen.has(t)) return;
    seen.add(t);
    out.push(via === undefined ? { name, text: t } : { name, text: t, via });
  };
  let plain = text;
  if (NON_ASCII.test(text)) {
    // NFKC alone keeps other scripts (and Japanese voicing marks) as written, for rules in them.
    const nfkc = text.normalize("NFKC");
    add("nfkc", nfkc);
    INVISIBLE.lastIndex = 0;
    if (INVISIBLE.test(nfkc)) {
      add("invisible-removed", nfkc.replace(INVISIBLE, ""));
      add("invisible-as-space", nfkc.replace(INVISIBLE, " "));
    }
    // One character at a time (a spread of a megabyte-long run would overflow the call stack).
    const tags = [...text.matchAll(TAG_RUN)].map((m) => {
      let out = "";
      for (const ch of m[0]) out += String.fromCharCode(ch.codePointAt(0)! - 0xe0000);
      return out;
    });
    if (tags.length > 0) add("unicode-tags", tags.join("\n"));
    // Marks dropped and look-alikes folded to ASCII (decode/normalise.ts): `ignоre` with a
    // Cyrillic о reads as `ignore`.
    plain = normaliseText(text);
    add("folded", plain);
  }
  const leet = leetFolded(plain);
  add("leetspeak", leet);
  add("spaced-letters", spacedJoined(leet ?? plain));
  for (const view of decodeViews(plain, limits).slice(1)) add("decoded", view.text, view.via);
  return out;
}

const isLeet = (word: string): boolean => LEET_SHAPE.test(word) && !NOT_LEET.test(word);

/**
 * Leetspeak read as letters inside words (`1gn0r3` -> `ignore`), as windows of LEET_CONTEXT
 * around each such word joined by line breaks (the whole text when they cover most of it); null
 * when there is none.
 */
export function leetFolded(text: string): string | null {
  // Most text has no letter next to one of the digits leetspeak uses: nothing to look at.
  if (!LEET_PAIR.test(text)) return null;
  const windows: [number, number][] = [];
  LEET_WORD.lastIndex = 0;
  for (let m = LEET_WORD.exec(text); m !== null; m = LEET_WORD.exec(text)) {
    if (!isLeet(m[0])) continue;
    const from = Math.max(0, m.index - LEET_CONTEXT);
    const to = Math.min(text.length, m.index + m[0].length + LEET_CONTEXT);
    const last = windows[windows.length - 1];
    if (last !== undefined && from <= last[1]) last[1] = to;
    else windows.push([from, to]);
  }
  if (windows.length === 0) return null;
  const fold = (t: string) => t.replace(LEET_WORD, (word) => (isLeet(word) ? word.replace(/[013457@$]/g, (c) => LEET[c]!) : word));
  return windows.map(([from, to]) => fold(text.slice(from, to))).join("\n");
}

/** Letters written one by one joined into words (`i g n o r e` -> `ignore`); null when there are none. */
export function spacedJoined(text: string): string | null {
  let changed = false;
  const out = text.replace(SPACED, (run) => {
    changed = true;
    return run.replace(SPACED_SEPARATOR, "");
  });
  return changed ? out : null;
}

import { isAscii, wideRuns } from "../ascii.ts";
import { CONFUSABLES } from "./confusables.ts";

/**
 * Characters removed before matching, because they render as nothing (or only reorder text)
 * and an attacker can put them inside a token to break a pattern:
 * zero-width and direction marks U+200B-U+200F, word joiner and invisible operators
 * U+2060-U+2064, the byte-order mark U+FEFF, soft hyphen U+00AD, Mongolian vowel separator
 * U+180E, bidi embeddings and overrides U+202A-U+202E, bidi isolates U+2066-U+2069, and the
 * whole tag block U+E0000-U+E007F ("ASCII smuggling").
 */
export const INVISIBLE = /[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\u180e\u202a-\u202e\u2066-\u2069\u{e0000}-\u{e007f}]/gu;
/**
 * Combining marks, but not a kana voicing mark on kana: `が` stays `が` (as `か` it is another
 * word, not `が` undisguised); on any other letter it is dropped like every mark (`i\u3099gnore`).
 */
const COMBINING_MARK = /(?<![\u3041-\u30ff])[\u3099\u309a]|(?![\u3099\u309a])\p{M}/gu;
const NON_ASCII = /[^\x00-\x7f]/;
const NON_ASCII_RUN = /[^\x00-\x7f]+/g;
/** Every character CONFUSABLES folds, as one character class. */
const CONFUSABLE = new RegExp(`[${[...CONFUSABLES.keys()].join("")}]`, "gu");

/**
 * The form of a text fragment that patterns are matched against:
 *  1. invisible characters removed (see INVISIBLE);
 *  2. NFKD, then every combining mark (\p{M}) but kana voicing marks on kana dropped (`é` -> `e`,
 *     `a\u0301` -> `a`), then NFC to recompose what is left (Hangul, kana). NFKD includes the compatibility mappings of NFKC, so
 *     full-width `ＡＫＩＡ`, ligatures and mathematical letters become ASCII here;
 *  3. confusable look-alikes folded to ASCII (confusables.ts: Cyrillic, Greek, Armenian).
 * Pure ASCII text is returned unchanged without any of this work.
 */
export function normaliseText(text: string): string {
  return isAscii(text) ? text : byWideStretches(text, normaliseWhole);
}

/**
 * `transform` of `text`, for a transform that leaves ASCII as it is and acts within a character
 * and the marks after it (NFKC, normaliseWhole): on a text mostly ASCII (a page with a © or a
 * name in it) only each stretch beyond ASCII is transformed, with the character before it (a
 * mark composes with that); on one more than a quarter beyond ASCII, the whole.
 */
export function byWideStretches(text: string, transform: (part: string) => string): string {
  const parts: string[] = [];
  let done = 0;
  let wide = 0;
  let changed = false;
  /** Takes the run [start, to); false once the text is more than a quarter beyond ASCII. */
  const take = (start: number, to: number): boolean => {
    wide += to - start;
    if (4 * wide > text.length) return false;
    const from = Math.max(done, start - 1);
    const part = text.slice(from, to);
    const out = transform(part);
    if (out !== part) changed = true;
    parts.push(text.slice(done, from), out);
    done = to;
    return true;
  };
  // The runs: found by halving when they are few (wideRuns), else by an expression.
  const runs = wideRuns(text);
  if (runs !== null) {
    for (let k = 0; k < runs.length; k += 2) if (!take(runs[k]!, runs[k + 1]!)) return transform(text);
  } else {
    NON_ASCII_RUN.lastIndex = 0;
    for (let m = NON_ASCII_RUN.exec(text); m !== null; m = NON_ASCII_RUN.exec(text)) if (!take(m.index, m.index + m[0].length)) return transform(text);
  }
  // Nothing changed (a © stays a ©): the text itself, not a copy of it.
  if (!changed) return text;
  parts.push(text.slice(done));
  return parts.join("");
}

/** normaliseText over the whole of `text` at once (what it does for text mostly beyond ASCII; tests compare the two). */
export function normaliseWhole(text: string): string {
  if (!NON_ASCII.test(text)) return text;
  const visible = text.replace(INVISIBLE, "");
  const bare = visible.normalize("NFKD").replace(COMBINING_MARK, "").normalize("NFC");
  if (!NON_ASCII.test(bare)) return bare;
  // One native pass over the text, not a string built a character at a time.
  return bare.replace(CONFUSABLE, (ch) => CONFUSABLES.get(ch)!);
}

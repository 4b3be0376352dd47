import { hexDigit, replaceRuns, utf8OrNull } from "./text.ts";

/** Soft line breaks (`=` at the end of a line) and runs of `=XX` escapes (upper-case hex, RFC 2045 §6.7). */
const QP_TOKEN = /=\r?\n|(?:=[0-9A-F]{2})+/g;
const SOFT_BREAK = /=\r?\n/;
/** Decoded characters a quoted-printable escape must not produce: C0 controls other than tab, CR, LF; DEL. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

const isUpperHex = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70);

/**
 * Whether the text has anything the decoder below would change: a soft line break, two escapes
 * in a row, `=3D`, or words joined by `=20` (`spaces`, spaceChain's answer). Found by jumping from `=` to `=` (logs are full of `key=200`, which is not
 * worth a regex pass).
 */
function hasDecodableEscape(text: string, spaces: boolean): boolean {
  if (spaces) return true;
  for (let i = text.indexOf("="); i >= 0; i = text.indexOf("=", i + 1)) {
    const a = text.charCodeAt(i + 1);
    if (a === 0x0a || (a === 0x0d && text.charCodeAt(i + 2) === 0x0a)) return true;
    if (!isUpperHex(a) || !isUpperHex(text.charCodeAt(i + 2))) continue;
    if (a === 0x33 && text.charCodeAt(i + 2) === 0x44) return true; // =3D
    if (text.charCodeAt(i + 3) === 0x3d && isUpperHex(text.charCodeAt(i + 4)) && isUpperHex(text.charCodeAt(i + 5))) return true;
  }
  return false;
}

/**
 * Whether words are joined by `=20` (a quoted-printable space) at least twice in a row
 * (`Ignore=20all=20previous`): one escape at a time is never decoded otherwise (`timeout=20` is a
 * log's), and words spelled so passed every phrase of the injection scanner.
 */
function spaceChain(text: string): boolean {
  // From each `=20` between two word characters, the next `=` within reach with no white space
  // before it: found by hand, from one `=20` to the next (a log of `limit=20` has many).
  for (let i = text.indexOf("=20"); i >= 0; i = text.indexOf("=20", i + 3)) {
    if (!isWordUnit(text.charCodeAt(i - 1)) || !isWordUnit(text.charCodeAt(i + 3))) continue;
    for (let j = i + 4; j < text.length && j - i <= 44; j++) {
      const c = text.charCodeAt(j);
      if (c === 61) {
        if (text.startsWith("20", j + 1) && isWordUnit(text.charCodeAt(j + 3))) return true;
        break;
      }
      if (c <= 32 || (c >= 128 && WIDE_SPACE.test(text[j]!))) break;
    }
  }
  return false;
}
/** A letter or digit (any script); NaN (past either end) is none. */
const isWordUnit = (c: number): boolean => (c < 128 ? (c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 122) : c === c && WORD_UNIT.test(String.fromCharCode(c)));
const WORD_UNIT = /[\p{L}\p{N}]/u;
const WIDE_SPACE = /\s/;

/**
 * Quoted-printable (RFC 2045 §6.7). `key=value` text is full of `=XX` look-alikes (`status=200`,
 * `ttl=12`), so a run of escapes is decoded only when all of these hold:
 *  - its bytes are valid UTF-8 and decode to no control character;
 *  - the text has a soft line break, or the run has two or more escapes (`=C3=A9`, `=41=42`), or
 *    it is `=3D`, the escape every quoted-printable encoder must write for `=` itself, or it is
 *    `=20` in a text of words joined by it (spaceChain).
 * Soft line breaks are removed. Lower-case hex is not quoted-printable (the RFC requires upper
 * case) and is left as is. Returns null when nothing changed.
 */
export function quotedPrintableDecode(text: string): string | null {
  const spaces = spaceChain(text);
  if (!hasDecodableEscape(text, spaces)) return null;
  const softBreaks = SOFT_BREAK.test(text);
  return replaceRuns(text, QP_TOKEN, (m) => {
    const run = m[0];
    if (run.charCodeAt(1) === 0x0a || run.charCodeAt(1) === 0x0d) return "";
    if (!softBreaks && run.length === 3 && run !== "=3D" && !(spaces && run === "=20")) return null;
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0, j = 0; i < run.length; i += 3, j++) bytes[j] = (hexDigit(run.charCodeAt(i + 1)) << 4) | hexDigit(run.charCodeAt(i + 2));
    const decoded = utf8OrNull(bytes);
    return decoded === null || CONTROL.test(decoded) ? null : decoded;
  });
}

import { BAD, CONTROL, decodeBuffer, guardLimit, hexDigit, plausibleText, replaceRuns, UTF8_INVALID, UTF8_STEP } from "./text.ts";

const SEPARATOR = /[:\- ]/;
const SEPARATORS = /[:\- ]/g;

/** Shortest run worth decoding, in hex digits: 8 bytes. */
export const MIN_HEX_DIGITS = 16;

/**
 * Either 16+ contiguous hex digits, or 8+ two-digit groups joined by one separator used
 * consistently (`de:ad:be:ef:...`, `de ad be ef ...`, `de-ad-be-ef-...`).
 */
export const HEX_RUN = /[0-9A-Fa-f]{16,}|[0-9A-Fa-f]{2}([:\- ])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){6,}/g;

/**
 * Decodes one hex run (separators `:`, ` ` or `-` allowed) when it is plausibly hex-encoded
 * text, else null: at least 16 digits, an even count, and a decoding that passes the text rule
 * of text.ts (so a SHA-256 or a UUID is not a view). At most `maxOut` bytes are decoded.
 */
export function decodeHexRun(run: string, maxOut = Number.POSITIVE_INFINITY): string | null {
  const digits = SEPARATOR.test(run) ? run.replace(SEPARATORS, "") : run;
  return decodeHexRange(digits, 0, digits.length, maxOut);
}

/** decodeHexRun over `text[from, to)`, hex digits only, without cutting it out of `text`. */
export function decodeHexRange(text: string, from: number, to: number, maxOut: number): string | null {
  const length = to - from;
  if (length < MIN_HEX_DIGITS || length % 2 !== 0) return null;
  const size = Math.min(length / 2, Math.max(0, Math.floor(maxOut)));
  if (size < 1) return null;
  const out = decodeBuffer(size);
  // Two bytes and one check at a time, with TextGuard's rule as tables (text.ts): a branch per
  // byte on the bytes of a digest is a coin toss.
  const limit = guardLimit(size);
  let controls = 0;
  let bad = 0;
  let utf8 = 0;
  let n = 0;
  for (let i = from; n < size; i += 4) {
    const c0 = text.charCodeAt(i);
    const c1 = text.charCodeAt(i + 1);
    const d0 = c0 < 128 ? HEX_VALUE[c0]! : -1;
    const d1 = c1 < 128 ? HEX_VALUE[c1]! : -1;
    if ((d0 | d1) < 0) return null;
    const b0 = (d0 << 4) | d1;
    out[n++] = b0;
    let b1 = -1;
    if (n < size) {
      const c2 = text.charCodeAt(i + 2);
      const c3 = text.charCodeAt(i + 3);
      const d2 = c2 < 128 ? HEX_VALUE[c2]! : -1;
      const d3 = c3 < 128 ? HEX_VALUE[c3]! : -1;
      if ((d2 | d3) < 0) return null;
      b1 = (d2 << 4) | d3;
      out[n++] = b1;
    }
    controls += CONTROL[b0]!;
    bad += BAD[b0]!;
    utf8 = UTF8_STEP[utf8 * 256 + b0]!;
    if (b1 >= 0) {
      controls += CONTROL[b1]!;
      bad += BAD[b1]!;
      utf8 = UTF8_STEP[utf8 * 256 + b1]!;
    }
    if (controls > limit || (utf8 === UTF8_INVALID && bad > limit)) return null;
  }
  return plausibleText(out, size);
}

/** Values of the hex digits, -1 for every other ASCII character. */
const HEX_VALUE = Int8Array.from({ length: 128 }, (_, c) => hexDigit(c));

/** Replaces every plausible hex run inside `text` with its decoding; null when nothing decoded. */
export function hexDecode(text: string, maxOut = Number.POSITIVE_INFINITY): string | null {
  let budget = maxOut;
  return replaceRuns(text, HEX_RUN, (m) => {
    const d = decodeHexRun(m[0], budget);
    if (d !== null) budget -= d.length;
    return d;
  });
}

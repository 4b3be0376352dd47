import { decodeBuffer, hexDigit, plausibleText, replaceRuns, TextGuard } from "./text.ts";

const GUARD = new TextGuard();

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
  const guard = GUARD.reset(size);
  for (let n = 0; n < size; n++) {
    const hi = hexDigit(text.charCodeAt(from + 2 * n));
    const lo = hexDigit(text.charCodeAt(from + 2 * n + 1));
    if (hi < 0 || lo < 0) return null;
    const b = (hi << 4) | lo;
    out[n] = b;
    if (!guard.add(b)) return null;
  }
  return plausibleText(out, size);
}

/** Replaces every plausible hex run inside `text` with its decoding; null when nothing decoded. */
export function hexDecode(text: string, maxOut = Number.POSITIVE_INFINITY): string | null {
  let budget = maxOut;
  return replaceRuns(text, HEX_RUN, (m) => {
    const d = decodeHexRun(m[0], budget);
    if (d !== null) budget -= d.length;
    return d;
  });
}

import { decodeInto } from "../dns-decode.ts";
import { decodeBuffer, plausibleText, replaceRuns } from "./text.ts";

/** Shortest run worth decoding (padding excluded): 16 characters carry 10 bytes. */
export const MIN_BASE32_RUN = 16;

/** RFC 4648 §6 runs, all upper case or all lower case (mixed case is a word, not base32), then padding. */
export const BASE32_RUN = /[A-Z2-7]{16,}={0,6}|[a-z2-7]{16,}={0,6}/g;
/** Unpadded lengths a base32 encoding can have, by length mod 8. */
const VALID_REMAINDER = new Set([0, 2, 4, 5, 7]);

/**
 * Decodes one candidate base32 run when it is plausibly base32, else null: at least 16
 * characters before the padding, a length an encoder can produce (mod 8 in {0,2,4,5,7}; with
 * padding, a multiple of 8 in total), and a decoding that passes the text rule of text.ts. At
 * most `maxOut` bytes are decoded.
 */
export function decodeBase32Run(run: string, maxOut = Number.POSITIVE_INFINITY): string | null {
  const eq = run.indexOf("=");
  const body = eq < 0 ? run : run.slice(0, eq);
  if (body.length < MIN_BASE32_RUN || !VALID_REMAINDER.has(body.length % 8)) return null;
  if (eq >= 0 && run.length % 8 !== 0) return null;
  const size = Math.min(Math.floor((body.length * 5) / 8), Math.max(0, Math.floor(maxOut)));
  if (size < 1) return null;
  const out = decodeBuffer(size);
  const n = decodeInto(body, 0, body.length, "base32", out, size);
  return n < 0 ? null : plausibleText(out, n);
}

/** Replaces every plausible base32 run inside `text` with its decoding; null when nothing decoded. */
export function base32Decode(text: string, maxOut = Number.POSITIVE_INFINITY): string | null {
  let budget = maxOut;
  return replaceRuns(text, BASE32_RUN, (m) => {
    const d = decodeBase32Run(m[0], budget);
    if (d !== null) budget -= d.length;
    return d;
  });
}

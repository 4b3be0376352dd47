import { decodeBuffer, plausibleText, replaceRuns, TextGuard } from "./text.ts";

const GUARD = new TextGuard();

/** Values of both base64 alphabets (RFC 4648 §4 and §5): `+` and `-` are 62, `/` and `_` 63. */
const VALUES = (() => {
  const t = new Int8Array(128).fill(-1);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (let i = 0; i < alphabet.length; i++) t[alphabet.charCodeAt(i)] = i;
  t[43] = t[45] = 62;
  t[47] = t[95] = 63;
  return t;
})();

/** Shortest run (padding excluded) worth decoding: 16 characters carry 12 bytes. */
export const MIN_BASE64_RUN = 16;

/** A run of the union of both alphabets (RFC 4648 §4 and §5), then up to two `=`. */
const BASE64_RUN = /[A-Za-z0-9+/_-]{16,}={0,2}/g;
/**
 * Hex digits of one case, maybe with dashes: UUIDs, git SHAs, digests. As base64 they decode to
 * bytes drawn from a few narrow ranges (every third byte 0x00-0x17 for upper-case hex), never
 * plausible text; they are the hex decoder's.
 */
const HEX_SHAPED = /^(?:[0-9a-f-]+|[0-9A-F-]+)$/;
const LEADING_SEPARATORS = /^[/+_-]+/;
/** A stretch of MIN_BASE64_RUN characters without a separator. */
const LONG_PIECE = /[A-Za-z0-9=]{16}/;
/** Characters that are base64 but also separate words in paths and identifiers. */
const SEPARATOR = /[/+_-]/;
/**
 * A run that fails as a whole is retried piece by piece only when it has at most this many
 * pieces: a path or a name with a blob glued on, not a large binary blob (random base64 has a
 * `/` or `+` every 32 characters, and its thousands of short pieces would each be a fresh chance
 * for noise to pass the text rule).
 */
export const MAX_BASE64_PIECES = 16;

/**
 * Decodes one candidate run (padding allowed, standard or URL-safe alphabet, padded or not) when
 * it is plausibly base64, else null. Plausible means: at least 16 characters before the padding;
 * a length that can be base64 (not 1 mod 4; with padding, a multiple of 4 in total); not mixing
 * the two alphabets (`+` or `/` together with `-` or `_`); and a decoding that passes the text
 * rule of text.ts (valid UTF-8 or ASCII, at least 85% printable). At most `maxOut` bytes are
 * decoded, so a huge blob costs no more than the caller's budget.
 */
export function decodeBase64Run(run: string, maxOut = Number.POSITIVE_INFINITY, notHexShaped = false): string | null {
  if (!notHexShaped && HEX_SHAPED.test(run)) return null;
  const eq = run.indexOf("=");
  const length = eq < 0 ? run.length : eq;
  if (length < MIN_BASE64_RUN || length % 4 === 1) return null;
  if (eq >= 0 && run.length % 4 !== 0) return null;
  const size = Math.min(Math.floor((length * 3) / 4), Math.max(0, Math.floor(maxOut)));
  if (size < 1) return null;
  // One pass: both alphabets in one table, refusing a run that mixes them, bits into bytes.
  const out = decodeBuffer(size);
  let alphabets = 0;
  let buffer = 0;
  let bits = 0;
  let n = 0;
  const guard = GUARD.reset(size);
  for (let i = 0; i < length && n < size; i++) {
    const c = run.charCodeAt(i);
    const v = c < 128 ? VALUES[c]! : -1;
    if (v < 0) return null;
    if (v >= 62) alphabets |= c === 43 || c === 47 ? 1 : 2;
    buffer = ((buffer << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      const b = (buffer >> bits) & 0xff;
      out[n++] = b;
      if (!guard.add(b)) return null;
    }
  }
  if (alphabets === 3) return null;
  return plausibleText(out, n);
}

/**
 * The decoding of one run found by BASE64_RUN, or null. A run that fails as a whole but contains
 * separators (`/api/v1/<blob>`, `key-<blob>`) is retried piece by piece (up to MAX_BASE64_PIECES
 * pieces), so a blob glued to a path or a name is still found. `budget.left` is what may still be
 * decoded; it is reduced by what this run produced.
 */
export function decodeBase64Candidate(run: string, budget: { left: number }, notHexShaped = false): string | null {
  const whole = decodeBase64Run(run, budget.left, notHexShaped);
  if (whole !== null) {
    budget.left -= whole.length;
    return whole;
  }
  if (!SEPARATOR.test(run)) return null;
  // A separator glued to the front (a diff's `+`, a path's `/`) shifts every quantum: drop it.
  const lead = LEADING_SEPARATORS.exec(run)?.[0].length ?? 0;
  if (lead > 0) {
    const rest = decodeBase64Run(run.slice(lead), budget.left);
    if (rest !== null) {
      budget.left -= rest.length;
      return run.slice(0, lead) + rest;
    }
  }
  // Pieces shorter than a base64 run cannot decode: split only when one is long enough, and
  // count the separators first (a long blob has hundreds; splitting it would be wasted).
  if (!LONG_PIECE.test(run) || hasMoreSeparators(run, MAX_BASE64_PIECES - 1)) return null;
  const pieces = run.split(/([/+_-])/);
  let changed = false;
  const parts = pieces.map((part) => {
    if (part.length < MIN_BASE64_RUN) return part;
    const d = decodeBase64Run(part, budget.left);
    if (d === null) return part;
    budget.left -= d.length;
    changed = true;
    return d;
  });
  return changed ? parts.join("") : null;
}

/** True when `run` has more than `limit` of the SEPARATOR characters; stops counting there. */
function hasMoreSeparators(run: string, limit: number): boolean {
  let n = 0;
  for (let i = 0; i < run.length; i++) {
    const c = run.charCodeAt(i);
    if ((c === 47 || c === 43 || c === 95 || c === 45) && ++n > limit) return true;
  }
  return false;
}

/** Replaces every plausible base64 run inside `text` with its decoding; null when nothing decoded. */
export function base64Decode(text: string, maxOut = Number.POSITIVE_INFINITY): string | null {
  const budget = { left: maxOut };
  return replaceRuns(text, BASE64_RUN, (m) => decodeBase64Candidate(m[0], budget));
}

import { BAD, CONTROL, decodeBuffer, guardLimit, plausibleText, replaceRuns, TextGuard, UTF8_INVALID, UTF8_STEP } from "./text.ts";

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

/** 1 for `+` and `/` (RFC 4648 §4), 2 for `-` and `_` (§5): a run with both (3) mixes the alphabets. */
const ALPHABET_OF = (() => {
  const t = new Uint8Array(128);
  t[43] = t[47] = 1;
  t[45] = t[95] = 2;
  return t;
})();

/** Shortest run (padding excluded) worth decoding: 16 characters carry 12 bytes. */
export const MIN_BASE64_RUN = 16;

/** A run of the union of both alphabets (RFC 4648 §4 and §5), then up to two `=`. */
const BASE64_RUN = /[A-Za-z0-9+/_-]{16,}={0,2}/g;
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
  if (!notHexShaped && hexShaped(run, 0, run.length)) return null;
  return decodeBase64Range(run, 0, run.length, maxOut, false);
}

/**
 * decodeBase64Run over `text[from, to)`, without cutting it out. With `breaks`, CR and LF are
 * skipped (a block wrapped at a fixed width, read as one run). Padding is only at the end.
 */
export function decodeBase64Range(text: string, from: number, to: number, maxOut: number, breaks: boolean): string | null {
  let pad = 0;
  while (pad < to - from && text.charCodeAt(to - 1 - pad) === 61) pad++;
  let length = to - from - pad;
  if (breaks) for (let i = from; i < to - pad; i++) if (text.charCodeAt(i) === 10 || text.charCodeAt(i) === 13) length--;
  if (length < MIN_BASE64_RUN || length % 4 === 1) return null;
  if (pad > 0 && (length + pad) % 4 !== 0) return null;
  const size = Math.min(Math.floor((length * 3) / 4), Math.max(0, Math.floor(maxOut)));
  if (size < 1) return null;
  // One pass: both alphabets in one table, refusing a run that mixes them, bits into bytes.
  const out = decodeBuffer(size);
  let alphabets = 0;
  let buffer = 0;
  let bits = 0;
  let n = 0;
  let i = from;
  const end = to - pad;
  if (!breaks) {
    // Four characters, three bytes and one check at a time, with TextGuard's rule as tables
    // (text.ts): most runs are identifiers and paths refused within a few quanta, and a branch
    // per byte on their bytes is a coin toss.
    const limit = guardLimit(size);
    let controls = 0;
    let bad = 0;
    let utf8 = 0;
    for (; i + 4 <= end && n + 3 <= size; i += 4) {
      const c0 = text.charCodeAt(i);
      const c1 = text.charCodeAt(i + 1);
      const c2 = text.charCodeAt(i + 2);
      const c3 = text.charCodeAt(i + 3);
      if ((c0 | c1 | c2 | c3) >= 128) return null;
      const v0 = VALUES[c0]!;
      const v1 = VALUES[c1]!;
      const v2 = VALUES[c2]!;
      const v3 = VALUES[c3]!;
      if ((v0 | v1 | v2 | v3) < 0) return null;
      alphabets |= ALPHABET_OF[c0]! | ALPHABET_OF[c1]! | ALPHABET_OF[c2]! | ALPHABET_OF[c3]!;
      const b0 = (v0 << 2) | (v1 >> 4);
      const b1 = ((v1 & 15) << 4) | (v2 >> 2);
      const b2 = ((v2 & 3) << 6) | v3;
      out[n] = b0;
      out[n + 1] = b1;
      out[n + 2] = b2;
      n += 3;
      controls += CONTROL[b0]! + CONTROL[b1]! + CONTROL[b2]!;
      bad += BAD[b0]! + BAD[b1]! + BAD[b2]!;
      utf8 = UTF8_STEP[UTF8_STEP[UTF8_STEP[utf8 * 256 + b0]! * 256 + b1]! * 256 + b2]!;
      if (controls > limit || (utf8 === UTF8_INVALID && bad > limit)) return null;
    }
    if (i >= end || n >= size) return alphabets === 3 ? null : plausibleText(out, n);
    // The last, partial quantum: bit by bit below, after the guard has seen what came before.
    GUARD.reset(size);
    for (let k = 0; k < n; k++) GUARD.add(out[k]!);
  } else GUARD.reset(size);
  const guard = GUARD;
  for (; i < end && n < size; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? VALUES[c]! : -1;
    if (v < 0) {
      if (breaks && (c === 10 || c === 13)) continue;
      return null;
    }
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

/** Codes of the characters that are base64 but also separate words in paths and identifiers: `/ + _ -`. */
const isSeparator = (c: number): boolean => c === 47 || c === 43 || c === 95 || c === 45;

/**
 * Hex digits of one case, maybe with dashes: UUIDs, git SHAs, digests. As base64 they decode to
 * bytes drawn from a few narrow ranges (every third byte 0x00-0x17 for upper-case hex), never
 * plausible text; they are the hex decoder's. True when `text[from, to)` is one.
 */
function hexShaped(text: string, from: number, to: number, breaks = false): boolean {
  let lower = false;
  let upper = false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 48 && c <= 57) || c === 45 || (breaks && (c === 10 || c === 13))) continue;
    if (c >= 97 && c <= 102) lower = true;
    else if (c >= 65 && c <= 70) upper = true;
    else return false;
  }
  return !(lower && upper);
}

/**
 * The decoding of one run found by BASE64_RUN, or null. A run that fails as a whole but contains
 * separators (`/api/v1/<blob>`, `key-<blob>`) is retried piece by piece (up to MAX_BASE64_PIECES
 * pieces), so a blob glued to a path or a name is still found. `budget.left` is what may still be
 * decoded; it is reduced by what this run produced.
 */
export function decodeBase64Candidate(run: string, budget: { left: number }, notHexShaped = false): string | null {
  return decodeBase64CandidateRange(run, 0, run.length, budget, notHexShaped);
}

/**
 * decodeBase64Candidate over `text[from, to)`. Nothing is cut out of `text` unless it decodes: a
 * slice is a lazy copy in JavaScriptCore, made on first read, and most runs are refused. With
 * `breaks`, CR and LF are skipped: a block wrapped at a fixed width is read as one run (and its
 * pieces that do not decode are joined without them).
 */
export function decodeBase64CandidateRange(text: string, from: number, to: number, budget: { left: number }, notHexShaped = false, breaks = false): string | null {
  const whole = notHexShaped || !hexShaped(text, from, to, breaks) ? decodeBase64Range(text, from, to, budget.left, breaks) : null;
  if (whole !== null) {
    budget.left -= whole.length;
    return whole;
  }
  // One look at the separators: how many lead, how many in all, the longest piece between them.
  let lead = 0;
  let separators = 0;
  let piece = 0;
  let longest = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (breaks && (c === 10 || c === 13)) continue;
    if (isSeparator(c)) {
      if (separators++ === i - from) lead++;
      // Past the lead and past the pieces worth splitting: a blob, counted no further.
      else if (separators > MAX_BASE64_PIECES - 1) break;
      piece = 0;
    } else if (++piece > longest) longest = piece;
  }
  if (separators === 0) return null;
  // A separator glued to the front (a diff's `+`, a path's `/`) shifts every quantum: drop it.
  if (lead > 0 && !hexShaped(text, from + lead, to, breaks)) {
    const rest = decodeBase64Range(text, from + lead, to, budget.left, breaks);
    if (rest !== null) {
      budget.left -= rest.length;
      return text.slice(from, from + lead) + rest;
    }
  }
  // Pieces shorter than a base64 run cannot decode: split only when one is long enough, and
  // not a long blob (it has hundreds of separators; splitting it would be wasted).
  if (longest < MIN_BASE64_RUN || separators > MAX_BASE64_PIECES - 1) return null;
  let out = "";
  let changed = false;
  for (let at = from; at < to; ) {
    let end = at;
    while (end < to && !isSeparator(text.charCodeAt(end))) end++;
    const d = (breaks || end - at >= MIN_BASE64_RUN) && !hexShaped(text, at, end, breaks) ? decodeBase64Range(text, at, end, budget.left, breaks) : null;
    if (d !== null) {
      budget.left -= d.length;
      changed = true;
    }
    // The piece (decoded or as written) and the separator after it.
    out += d ?? (breaks ? text.slice(at, end).replace(/[\r\n]/g, "") : text.slice(at, end));
    if (end < to) out += text[end];
    at = end + 1;
  }
  return changed ? out : null;
}

/** Replaces every plausible base64 run inside `text` with its decoding; null when nothing decoded. */
export function base64Decode(text: string, maxOut = Number.POSITIVE_INFINITY): string | null {
  const budget = { left: maxOut };
  return replaceRuns(text, BASE64_RUN, (m) => decodeBase64Candidate(m[0], budget));
}

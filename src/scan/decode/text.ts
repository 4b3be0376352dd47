/**
 * Shared by the byte-producing decoders (percent, quoted-printable, base64, base32, hex): turning
 * decoded bytes back into text, and deciding whether that text is plausibly text at all.
 *
 * The plausibility rule, used for base64, base32 and hex (encodings whose alphabets also match
 * ordinary identifiers, hashes and ids, so a run only becomes a view when its decoding reads as
 * text):
 *  - the bytes are decoded as UTF-8 when they are valid UTF-8; otherwise byte by byte, printable
 *    ASCII kept and every other byte shown as U+FFFD (it never joins two tokens into one);
 *  - the result must have at least MIN_TEXT_CHARS characters, and at least PRINTABLE_SHARE of them
 *    printable: not a C0/C1 control (tab, CR and LF are fine), not DEL, not U+FFFD.
 * A git SHA, a UUID without dashes or a random id decodes to mostly control and high bytes and is
 * refused; a token, a JSON object or a sentence passes.
 */

export const PRINTABLE_SHARE = 0.85;
export const MIN_TEXT_CHARS = 4;

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** `bytes[0, n)` as UTF-8, or null when they are not valid UTF-8. */
export function utf8OrNull(bytes: Uint8Array, n = bytes.length): string | null {
  try {
    return UTF8.decode(bytes.subarray(0, n));
  } catch {
    return null;
  }
}

/** `bytes[0, n)` as UTF-8 when valid, else byte by byte: printable ASCII kept, anything else U+FFFD. */
export function bytesToText(bytes: Uint8Array, n = bytes.length): string {
  const utf8 = utf8OrNull(bytes, n);
  if (utf8 !== null) return utf8;
  let s = "";
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    s += (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d ? String.fromCharCode(b) : "\ufffd";
  }
  return s;
}

function isPrintable(c: number): boolean {
  if (c < 0x20) return c === 0x09 || c === 0x0a || c === 0x0d;
  if (c < 0x7f) return true;
  if (c <= 0x9f) return false;
  return c !== 0xfffd;
}

/** The plausibility rule above, applied to already-decoded text. */
export function isPlausibleText(text: string): boolean {
  if (text.length < MIN_TEXT_CHARS) return false;
  let printable = 0;
  for (let i = 0; i < text.length; i++) if (isPrintable(text.charCodeAt(i))) printable++;
  return printable / text.length >= PRINTABLE_SHARE;
}

/** True when `bytes[0, n)` are well-formed UTF-8 (RFC 3629 §4), checked without building a string or throwing. */
export function isUtf8(bytes: Uint8Array, n = bytes.length): boolean {
  for (let i = 0; i < n; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let extra: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) [extra, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [extra, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [extra, min] = [3, 0x10000];
    else return false;
    if (i + extra >= n) return false;
    let cp = b & (0x3f >> extra);
    for (let k = 1; k <= extra; k++) {
      const c = bytes[i + k]!;
      if ((c & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

/**
 * Decoded bytes as text when they pass the plausibility rule, else null. Most candidate runs in
 * ordinary text (identifiers, hashes, image data) fail it, so the common refusal is decided by
 * counting bytes, without a string or an exception: when the bytes are not UTF-8 they become one
 * character each and the printable share is exactly the share of printable ASCII bytes.
 */
export function plausibleText(bytes: Uint8Array, n = bytes.length): string | null {
  if (n < MIN_TEXT_CHARS) return null;
  let ascii = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if ((b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d) ascii++;
  }
  if (ascii / n < PRINTABLE_SHARE && !isUtf8(bytes, n)) return null;
  const text = bytesToText(bytes, n);
  return isPlausibleText(text) ? text : null;
}

/**
 * Early refusal while decoding, exact with respect to plausibleText: `add` each decoded byte, and
 * stop when it returns false. Bytes other than printable ASCII are counted; once the bytes are
 * surely not UTF-8 they will be read one by one, so more than 15% of them can no longer pass, and
 * control bytes beyond 15% fail either way. Random data (an image, a digest) is refused after a
 * fraction of it is decoded. (UTF-8 is checked only for what is surely invalid; the rest is left
 * to plausibleText, so nothing it would accept is refused here.)
 */
export class TextGuard {
  #limit = 0;
  #controls = 0;
  #bad = 0;
  #need = 0;
  #notUtf8 = false;

  /** `size`: how many bytes will be decoded in all. */
  constructor(size = 0) {
    this.reset(size);
  }

  /** Starts over for a new run of `size` bytes (one guard serves every run a decoder reads). */
  reset(size: number): this {
    this.#limit = (1 - PRINTABLE_SHARE) * size;
    this.#controls = 0;
    this.#bad = 0;
    this.#need = 0;
    this.#notUtf8 = false;
    return this;
  }

  add(b: number): boolean {
    if (b < 0x80) {
      if (this.#need > 0) this.#notUtf8 = true;
      this.#need = 0;
      if (b === 0x7f || (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d)) {
        this.#controls++;
        this.#bad++;
      }
    } else {
      this.#bad++;
      if (b <= 0xbf) {
        if (this.#need > 0) this.#need--;
        else this.#notUtf8 = true;
      } else {
        if (this.#need > 0 || b < 0xc2 || b > 0xf4) this.#notUtf8 = true;
        this.#need = b < 0xe0 ? 1 : b < 0xf0 ? 2 : 3;
      }
    }
    return this.#controls <= this.#limit && !(this.#notUtf8 && this.#bad > this.#limit);
  }
}

/**
 * TextGuard as tables, for decoders that check several bytes at a time without a branch on each
 * (a branch on random bytes is a coin toss): per byte, CONTROL (1 for a control byte) and BAD
 * (1 for a control or a byte past 0x7f), and the UTF-8 state after it, `UTF8_STEP[state * 256 +
 * byte]`: 0 between characters, 1 to 3 continuation bytes awaited, UTF8_INVALID (for good) once
 * the bytes are surely not UTF-8. A decoder refuses when `controls > limit || (state ===
 * UTF8_INVALID && bad > limit)`, with limit = guardLimit(size): exactly TextGuard's rule.
 */
export const CONTROL = Uint8Array.from({ length: 256 }, (_, b) => (b === 0x7f || (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) ? 1 : 0));
export const BAD = Uint8Array.from({ length: 256 }, (_, b) => (b >= 0x80 || CONTROL[b] === 1 ? 1 : 0));
export const UTF8_INVALID = 4;
export const UTF8_STEP = (() => {
  const t = new Uint8Array(5 * 256);
  for (let state = 0; state <= UTF8_INVALID; state++) {
    for (let b = 0; b < 256; b++) {
      let next: number;
      if (state === UTF8_INVALID) next = UTF8_INVALID;
      else if (b < 0x80) next = state > 0 ? UTF8_INVALID : 0;
      else if (b <= 0xbf) next = state > 0 ? state - 1 : UTF8_INVALID;
      else next = state > 0 || b < 0xc2 || b > 0xf4 ? UTF8_INVALID : b < 0xe0 ? 1 : b < 0xf0 ? 2 : 3;
      t[state * 256 + b] = next;
    }
  }
  return t;
})();
export const guardLimit = (size: number): number => (1 - PRINTABLE_SHARE) * size;

/** Runs up to this many decoded bytes share one scratch buffer; longer ones get their own. */
const SCRATCH_BYTES = 64 * 1024;
const scratch = new Uint8Array(SCRATCH_BYTES);

/**
 * A buffer for `size` decoded bytes: a shared scratch buffer when it fits (most runs are refused
 * after a few bytes, so allocating and zeroing their full size is wasted). Valid until the next
 * call: decoders turn it into a string (plausibleText) before they return.
 */
export function decodeBuffer(size: number): Uint8Array {
  return size <= SCRATCH_BYTES ? scratch : new Uint8Array(size);
}

/** Value of one hex digit, or -1. */
export function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Replaces every match of `re` (global) in `text` with `replace(match)`, or keeps it when
 * `replace` returns null. Returns null when nothing changed, so callers can tell "no view".
 */
export function replaceRuns(text: string, re: RegExp, replace: (match: RegExpExecArray) => string | null): string | null {
  re.lastIndex = 0;
  let out = "";
  let last = 0;
  let changed = false;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    const r = replace(m);
    if (r === null || r === m[0]) continue;
    out += text.slice(last, m.index) + r;
    last = m.index + m[0].length;
    changed = true;
  }
  return changed ? out + text.slice(last) : null;
}

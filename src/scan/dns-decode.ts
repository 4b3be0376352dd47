/**
 * Decoders for the encodings DNS tunnels put in labels: hex (dnscat2), base32 (iodine,
 * DNSExfiltrator's case-proof mode) and base64url (DNSExfiltrator, iodine's base64u). They decode
 * into a caller-owned buffer and report how much of the result is printable text, so the
 * exfiltration detector can tell "encoded text" from "a random id" without allocating per name.
 * Nothing here validates strictly: a tunnel's chunking cuts encodings at arbitrary points, and a
 * decoder that refused partial input would miss exactly the traffic it is meant to see.
 */

export type DnsEncoding = "hex" | "base32" | "base64url";

/** RFC 4648 §6 alphabet, lower-case (DNS names are compared case-insensitively, RFC 4343). */
const BASE32_VALUES = buildTable("abcdefghijklmnopqrstuvwxyz234567");
/** iodine's base32 alphabet: a-z then 0-5 (iodine src/base32.c). Tried when 0 or 1 appear. */
const IODINE32_VALUES = buildTable("abcdefghijklmnopqrstuvwxyz012345");
/** RFC 4648 §5. Case matters here, so it is only tried on the name as the client spelled it. */
const BASE64URL_VALUES = buildTable("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

function buildTable(alphabet: string): Int8Array {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Decodes `text[start, end)` in `encoding` into `out`, skipping dots (a payload is chunked into
 * labels at arbitrary points) and stopping after `max` bytes or when `out` is full. Returns the number of bytes
 * written, or -1 when a character is outside the alphabet.
 */
export function decodeInto(text: string, start: number, end: number, encoding: DnsEncoding, out: Uint8Array, max = out.length): number {
  const limit = Math.min(max, out.length);
  switch (encoding) {
    case "hex":
      return decodeHex(text, start, end, out, limit);
    case "base32":
      return decodeBits(text, start, end, 5, usesIodineDigits(text, start, end) ? IODINE32_VALUES : BASE32_VALUES, true, out, limit);
    case "base64url":
      return decodeBits(text, start, end, 6, BASE64URL_VALUES, false, out, limit);
  }
}

function usesIodineDigits(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 48 || c === 49) return true;
  }
  return false;
}

function decodeHex(text: string, start: number, end: number, out: Uint8Array, limit: number): number {
  let n = 0;
  let high = -1;
  for (let i = start; i < end && n < limit; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) continue;
    const v = hexValue(c);
    if (v < 0) return -1;
    if (high < 0) high = v;
    else {
      out[n++] = (high << 4) | v;
      high = -1;
    }
  }
  return n;
}

function decodeBits(text: string, start: number, end: number, width: number, table: Int8Array, foldCase: boolean, out: Uint8Array, limit: number): number {
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (let i = start; i < end && n < limit; i++) {
    let c = text.charCodeAt(i);
    if (c === 46) continue;
    if (foldCase && c >= 65 && c <= 90) c += 32;
    const v = c < 128 ? table[c]! : -1;
    if (v < 0) return -1;
    buffer = ((buffer << width) | v) & 0xffff;
    bits += width;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (buffer >>> bits) & 0xff;
    }
  }
  return n;
}

/** Share of `bytes[0, n)` that is printable ASCII or tab, CR, LF. */
export function printableShare(bytes: Uint8Array, n: number): number {
  if (n <= 0) return 0;
  let printable = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if ((b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d) printable++;
  }
  return printable / n;
}

/** Share of `bytes[0, n)` that is an ASCII letter, digit or space: text, not just printable noise. */
export function wordShare(bytes: Uint8Array, n: number): number {
  if (n <= 0) return 0;
  let words = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]! | 0x20;
    if ((b >= 0x61 && b <= 0x7a) || (bytes[i]! >= 0x30 && bytes[i]! <= 0x39) || bytes[i] === 0x20) words++;
  }
  return words / n;
}

/** The printable bytes of `bytes[0, n)` as text, each other byte as a space (what a DLP scan can read). */
export function bytesToText(bytes: Uint8Array, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    s += String.fromCharCode((b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d ? b : 0x20);
  }
  return s;
}

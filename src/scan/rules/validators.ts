/**
 * Checksum validators run after a rule's pattern matched, on the captured secret. Each one
 * turns a "looks like" into "is", which is what keeps the false-positive rate of short numeric
 * and token formats low. Pure: node:crypto is used for hashing only.
 */
import { createHash } from "node:crypto";
import { BIP39_ENGLISH, BIP39_INDEX } from "./bip39-words.ts";

export type ValidatorName = "luhn" | "mod97" | "crc32-github" | "base58check" | "bip39" | "discord-bot-token";

/** Luhn (ISO/IEC 7812-1 annex B) over the digits of `value`; spaces and dashes are ignored. */
export function luhn(value: string): boolean {
  const digits = value.replace(/[ -]/g, "");
  if (!/^\d{12,19}$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * IBAN lengths per country (ISO 13616 registry, SWIFT "IBAN Registry" release 99). An IBAN of a
 * country not listed here is refused: without its length the mod-97 check alone passes one
 * random string in 97.
 */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, CH: 21, CR: 22,
  CY: 28, CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22,
  GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IS: 26, IT: 27, JO: 30,
  KW: 30, KZ: 20, LB: 28, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27,
  MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24,
  SE: 24, SI: 19, SK: 24, SM: 27, TN: 24, TR: 26, UA: 29, VG: 24, XK: 20,
};

/** IBAN check digits (ISO 13616-1 §6.1, ISO 7064 MOD 97-10): rearranged number mod 97 == 1. */
export function mod97(value: string): boolean {
  const iban = value.replace(/[ -]/g, "").toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(iban)) return false;
  const expected = IBAN_LENGTHS[iban.slice(0, 2)];
  if (expected === undefined || iban.length !== expected) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    // Letters count as two digits, A = 10 ... Z = 35 (ISO 13616-1 §6.2).
    if (c >= 65) rest = (rest * 100 + (c - 55)) % 97;
    else rest = (rest * 10 + (c - 48)) % 97;
  }
  return rest === 1;
}

const CRC32_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO-HDLC, the zlib one) of the UTF-8/ASCII bytes of `text`. */
export function crc32(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = CRC32_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `n` in base 62 (digits, upper, lower), left-padded with "0" to `width`. */
export function base62(n: number, width: number): string {
  let out = "";
  let v = n;
  while (v > 0) {
    out = BASE62[v % 62]! + out;
    v = Math.floor(v / 62);
  }
  return out.padStart(width, "0");
}

/**
 * GitHub token checksum ("Behind GitHub's new authentication token formats", 2021): after the
 * `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` prefix come 30 random base62 characters and 6 characters
 * that are the CRC32 of those 30, in base62. Fine-grained `github_pat_` tokens have no
 * documented checksum and are not validated here.
 */
export function crc32Github(value: string): boolean {
  const m = /^gh[pousr]_([0-9A-Za-z]{30})([0-9A-Za-z]{6})$/.exec(value);
  if (m === null) return false;
  return base62(crc32(m[1]!), 6) === m[2];
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE58_INDEX: Int8Array = (() => {
  const idx = new Int8Array(128).fill(-1);
  for (let i = 0; i < BASE58.length; i++) idx[BASE58.charCodeAt(i)] = i;
  return idx;
})();

/** Bitcoin base58 decoding; null when a character is outside the alphabet. */
export function base58Decode(text: string): Uint8Array | null {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? BASE58_INDEX[c]! : -1;
    if (v < 0) return null;
    let carry = v;
    for (let j = 0; j < bytes.length; j++) {
      carry += bytes[j]! * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  // Each leading "1" is a leading zero byte.
  for (let i = 0; i < text.length && text[i] === "1"; i++) bytes.push(0);
  return Uint8Array.from(bytes.reverse());
}

/** Bitcoin base58 encoding (used to build test vectors). */
export function base58Encode(data: Uint8Array): string {
  const digits: number[] = [];
  for (const byte of data) {
    let carry = byte;
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j]! << 8;
      digits[j] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = "";
  for (let i = 0; i < data.length && data[i] === 0; i++) out += "1";
  for (let i = digits.length - 1; i >= 0; i--) out += BASE58[digits[i]!];
  return out;
}

function sha256d(data: Uint8Array): Buffer {
  return createHash("sha256").update(createHash("sha256").update(data).digest()).digest();
}

/** Base58Check: the last 4 bytes are the first 4 of SHA-256(SHA-256(payload)). */
export function base58check(value: string): boolean {
  const raw = base58Decode(value);
  if (raw === null || raw.length < 5) return false;
  const payload = raw.subarray(0, raw.length - 4);
  const sum = sha256d(payload);
  for (let i = 0; i < 4; i++) if (raw[raw.length - 4 + i] !== sum[i]) return false;
  return true;
}

/** Appends the Base58Check checksum to `payload` and encodes it (test vectors, WIF keys). */
export function base58checkEncode(payload: Uint8Array): string {
  const sum = sha256d(payload);
  const out = new Uint8Array(payload.length + 4);
  out.set(payload);
  out.set(sum.subarray(0, 4), payload.length);
  return base58Encode(out);
}

/** BIP-39 mnemonic lengths: 128 to 256 bits of entropy in 32-bit steps, 11 bits per word. */
export const BIP39_LENGTHS: readonly number[] = [24, 21, 18, 15, 12];

/**
 * BIP-39 checksum of one mnemonic (bitcoin/bips bip-0039, "Generating the mnemonic"): the words'
 * 11-bit indices concatenated are ENT bits of entropy then ENT/32 bits of SHA-256(entropy).
 */
function bip39Window(indices: readonly number[]): boolean {
  const n = indices.length;
  const checksumBits = n / 3;
  const entropy = new Uint8Array((n * 11 - checksumBits) / 8);
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const idx of indices) {
    acc = (acc << 11) | idx;
    bits += 11;
    while (bits >= 8 && at < entropy.length) {
      bits -= 8;
      entropy[at++] = (acc >>> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  // What is left in `acc` is the checksum: `bits` == checksumBits here.
  const expected = createHash("sha256").update(entropy).digest()[0]! >>> (8 - checksumBits);
  return acc === expected;
}

/**
 * A BIP-39 English mnemonic: the words of `value` (split on whitespace), less any words off the
 * wordlist at either end and then up to two list words at either end (labels such as "seed
 * phrase" are list words too), are 12, 15, 18, 21 or 24 wordlist words carrying a valid
 * checksum. Only these few windows are tried: every window of a long run of list words would
 * let one pass by chance (1 in 16 for 12 words), so a rule could flag word salad.
 */
export function bip39(value: string): boolean {
  const indices = value
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .map((w) => BIP39_INDEX.get(w) ?? -1);
  let from = 0;
  let to = indices.length;
  while (from < to && indices[from]! < 0) from++;
  while (to > from && indices[to - 1]! < 0) to--;
  for (let a = 0; a <= 2; a++) {
    for (let b = 0; b <= 2; b++) {
      const window = indices.slice(from + a, to - b);
      if (!BIP39_LENGTHS.includes(window.length) || window.some((i) => i < 0)) continue;
      if (bip39Window(window)) return true;
    }
  }
  return false;
}

/** The mnemonic for `entropy` (16, 20, 24, 28 or 32 bytes): test vectors and corpus tokens. */
export function bip39Mnemonic(entropy: Uint8Array): string {
  if (entropy.length < 16 || entropy.length > 32 || entropy.length % 4 !== 0) throw new RangeError("BIP-39 entropy is 16 to 32 bytes, a multiple of 4");
  const checksumBits = entropy.length / 4;
  const sum = createHash("sha256").update(entropy).digest()[0]!;
  let bitString = "";
  for (const b of entropy) bitString += b.toString(2).padStart(8, "0");
  bitString += sum.toString(2).padStart(8, "0").slice(0, checksumBits);
  const words: string[] = [];
  for (let i = 0; i < bitString.length; i += 11) words.push(BIP39_ENGLISH[parseInt(bitString.slice(i, i + 11), 2)]!);
  return words.join(" ");
}

/**
 * Discord bot token: its first segment is the bot's user id (a decimal snowflake, 17 to 20
 * digits) in base64 (Discord developer docs, "Authorizing your bot"; the id is public, the rest
 * is the secret). Anything else with the same three-segment shape is not a bot token.
 */
export function discordBotToken(value: string): boolean {
  const first = value.slice(0, value.indexOf("."));
  if (!/^[A-Za-z0-9_-]{23,28}$/.test(first)) return false;
  const id = Buffer.from(first.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("latin1");
  return /^[1-9]\d{16,19}$/.test(id);
}

export const VALIDATORS: Readonly<Record<ValidatorName, (value: string) => boolean>> = {
  luhn,
  mod97,
  "crc32-github": crc32Github,
  base58check,
  bip39,
  "discord-bot-token": discordBotToken,
};

/** Shannon entropy of `text` in bits per character. */
export function shannonEntropy(text: string): number {
  if (text.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  const n = [...text].length;
  let h = 0;
  for (const c of counts.values()) {
    const p = c / n;
    h -= p * Math.log2(p);
  }
  return h;
}

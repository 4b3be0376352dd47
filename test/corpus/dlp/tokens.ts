/**
 * Fresh fake secrets, one per planted entry, derived from each rule's own `examples.match`:
 * the secret span of an example is found with the rule, the positions that can change without
 * breaking the rule are learned one by one (a literal prefix like `sk-ant-api03-` or `T3BlbkFJ`
 * cannot), and new tokens randomise those positions with the seeded PRNG, keeping each
 * character's class. Checksummed formats are re-sealed (Luhn digit, GitHub CRC32, base58check,
 * IBAN check digits) so a validating rule sees a valid value. Never a real secret: every token
 * is random output of the PRNG.
 */
import { createHash } from "node:crypto";
import type { CompiledRule, CompiledRules } from "../../../src/scan/rules/compile.ts";
import { BIP39_INDEX } from "../../../src/scan/rules/bip39-words.ts";
import { base58Decode, base58Encode, base62, bip39Mnemonic, BIP39_LENGTHS, crc32 } from "../../../src/scan/rules/validators.ts";
import type { Rng } from "./rng.ts";

export interface Template {
  readonly rule: CompiledRule;
  /** The example, split around its secret. */
  readonly before: string;
  readonly after: string;
  readonly secret: string;
  readonly mutable: readonly number[];
}

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const DIGIT = "0123456789";

function classOf(c: string, hexLower: boolean, hexUpper: boolean): string | null {
  if (DIGIT.includes(c)) return hexLower ? "0123456789abcdef" : hexUpper ? "0123456789ABCDEF" : DIGIT;
  if (hexLower && "abcdef".includes(c)) return "0123456789abcdef";
  if (hexUpper && "ABCDEF".includes(c)) return "0123456789ABCDEF";
  if (UPPER.includes(c)) return UPPER;
  if (LOWER.includes(c)) return LOWER;
  return null;
}

/**
 * Character class per position. A hex secret keeps hex characters; so does the hex tail of a
 * prefixed one (`sk-or-v1-<64 hex>`, `SK<32 hex>`, `0x<64 hex>`, `v1.0-<24 hex>-<146 hex>`):
 * from the first position of its longest all-hex tail of 16 or more, runs of hex separated by
 * punctuation included, when it has a hex letter (an IBAN's digits stay digits).
 */
function alphabetFor(secret: string): (c: string, i: number) => string | null {
  const alnum = secret.replace(/[^0-9A-Za-z]/g, "");
  const hexLower = alnum.length >= 16 && /^[0-9a-f]+$/.test(alnum);
  const hexUpper = alnum.length >= 16 && /^[0-9A-F]+$/.test(alnum);
  const lowerTail = /(?:[0-9a-f]{16,}[^0-9A-Za-z])*[0-9a-f]{16,}$/.exec(secret);
  const upperTail = /(?:[0-9A-F]{16,}[^0-9A-Za-z])*[0-9A-F]{16,}$/.exec(secret);
  // A tail of digits only (an IBAN, a card number) is decimal, not hex.
  const lowerFrom = lowerTail !== null && /[a-f]/.test(lowerTail[0]) ? lowerTail.index : Infinity;
  const upperFrom = upperTail !== null && /[A-F]/.test(upperTail[0]) ? upperTail.index : Infinity;
  return (c, i) => classOf(c, hexLower || i >= lowerFrom, hexUpper || i >= upperFrom);
}

/**
 * BIP-39 re-seal: every word that is not in the wordlist (a letter was changed) becomes a list
 * word picked by the PRNG, then the last word is rewritten to carry the checksum of the others,
 * so the phrase is a valid mnemonic again (the longest valid length from its first word).
 */
function sealBip39(secret: string, rng: Rng): string {
  const parts = secret.split(/(\s+)/);
  const words = parts.filter((_, k) => k % 2 === 0);
  const n = BIP39_LENGTHS.find((len) => len <= words.length);
  if (n === undefined) return secret;
  const indices = words.slice(0, n).map((w) => BIP39_INDEX.get(w) ?? rng.int(2048));
  let bits = indices.map((x) => x.toString(2).padStart(11, "0")).join("");
  bits = bits.slice(0, (n * 32) / 3);
  const entropy = Uint8Array.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  const sealed = bip39Mnemonic(entropy).split(" ");
  for (let k = 0; k < n; k++) parts[k * 2] = sealed[k]!;
  return parts.join("");
}

/** Re-seals a checksum after the characters changed. */
export function seal(validator: string | undefined, secret: string, rng: Rng): string {
  switch (validator) {
    case "luhn": {
      const digits = secret.replace(/\D/g, "").split("").map(Number);
      digits[digits.length - 1] = 0;
      let sum = 0;
      for (let i = digits.length - 1, dbl = false; i >= 0; i--, dbl = !dbl) {
        let d = digits[i]!;
        if (dbl) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
      }
      const check = (10 - (sum % 10)) % 10;
      return secret.slice(0, -1) + String(check);
    }
    case "crc32-github": {
      const m = /^(gh[pousr]_)([0-9A-Za-z]{30})[0-9A-Za-z]{6}$/.exec(secret);
      return m === null ? secret : m[1]! + m[2]! + base62(crc32(m[2]!), 6);
    }
    case "base58check": {
      const raw = base58Decode(secret);
      if (raw === null || raw.length < 37) return secret;
      const payload = Uint8Array.from(raw.subarray(0, raw.length - 4));
      const from = payload[0] === 0x80 ? 1 : payload.length - 32;
      for (let i = from; i < from + 32; i++) payload[i] = rng.int(256);
      const sum = createHash("sha256").update(createHash("sha256").update(payload).digest()).digest().subarray(0, 4);
      const out = new Uint8Array(payload.length + 4);
      out.set(payload);
      out.set(sum, payload.length);
      return base58Encode(out);
    }
    case "mod97": {
      const compact = secret.replace(/ /g, "");
      const body = compact.slice(4) + compact.slice(0, 2);
      let rest = 0;
      for (const ch of `${body}00`) {
        const c = ch.charCodeAt(0);
        rest = c >= 65 ? (rest * 100 + (c - 55)) % 97 : (rest * 10 + (c - 48)) % 97;
      }
      const check = String(98 - rest).padStart(2, "0");
      // Check digits sit at positions 2-3 of the printed form too (no space before them).
      return secret.slice(0, 2) + check + secret.slice(4);
    }
    case "bip39":
      return sealBip39(secret, rng);
    case "discord-bot-token": {
      // The first segment is base64 of the bot's decimal id: a fresh id of the same length.
      const dot = secret.indexOf(".");
      const digits = Buffer.from(secret.slice(0, dot), "base64").length;
      let id = String(1 + rng.int(9));
      while (id.length < digits) id += String(rng.int(10));
      return Buffer.from(id).toString("base64url") + secret.slice(dot);
    }
    default:
      return secret;
  }
}

function spanOf(rules: CompiledRules, rule: string, text: string): { start: number; end: number }[] {
  return rules.scan(text).filter((f) => f.rule === rule);
}

/** The rule finds exactly `secret` in `before + secret + after`. */
function holds(rules: CompiledRules, t: { rule: CompiledRule; before: string; after: string }, secret: string): boolean {
  const hits = spanOf(rules, t.rule.id, t.before + secret + t.after);
  return hits.length === 1 && hits[0]!.start === t.before.length && hits[0]!.end === t.before.length + secret.length;
}

export function learnTemplates(rules: CompiledRules, rng: Rng): Map<string, Template[]> {
  const out = new Map<string, Template[]>();
  for (const rule of rules.rules) {
    const list: Template[] = [];
    for (const example of rule.examples.match) {
      const hits = spanOf(rules, rule.id, example);
      if (hits.length !== 1) continue; // examples holding two secrets would plant two
      const { start, end } = hits[0]!;
      const base = { rule, before: example.slice(0, start), after: example.slice(end) };
      const secret = example.slice(start, end);
      const cls = alphabetFor(secret);
      const mutable: number[] = [];
      for (let i = 0; i < secret.length; i++) {
        const alphabet = cls(secret[i]!, i);
        if (alphabet === null) continue;
        let ok = false;
        for (let k = 0; k < 3 && !ok; k++) {
          const c = rng.pick(alphabet.split("").filter((x) => x !== secret[i]));
          const changed = seal(rule.validator, secret.slice(0, i) + c + secret.slice(i + 1), rng);
          ok = holds(rules, base, changed);
        }
        if (ok) mutable.push(i);
      }
      list.push({ ...base, secret, mutable });
    }
    out.set(rule.id, list);
  }
  return out;
}

/** A fresh token for the template, or null when none could be made (reported as a corpus gap). */
export function freshToken(rules: CompiledRules, t: Template, rng: Rng): string | null {
  const cls = alphabetFor(t.secret);
  for (let attempt = 0; attempt < 40; attempt++) {
    const chars = t.secret.split("");
    // Later attempts change fewer positions, for rules whose positions interact.
    const p = attempt < 20 ? 1 : 0.5;
    for (const i of t.mutable) if (rng.next() < p) chars[i] = rng.pick(cls(chars[i]!, i)!.split(""));
    const token = seal(t.rule.validator, chars.join(""), rng);
    if (token !== t.secret && holds(rules, t, token)) return token;
  }
  return null;
}

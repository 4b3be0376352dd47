/**
 * The flight recorder's on-disk format, shared by the writer (recorder.ts) and the verifier
 * (verify.ts) so the two cannot drift. README "Flight recorder" describes the same thing for
 * outside tools. Pure: no files here.
 *
 * One record is one line of RFC 8785 (JCS) canonical JSON. `hash` is the lowercase hex SHA-256
 * of the canonical JSON of the record without its `hash` member; since JCS sorts members, that
 * is exactly the line with the `"hash":"…"` member (and its comma) cut out.
 */
import { createPublicKey, verify as verifySignature, type KeyObject } from "node:crypto";
import { canonicalCopy, canonicalJson } from "./canonical-json.ts";
import { sha256 } from "./merkle.ts";

/** `prev` of the very first record (seq 0): 32 zero bytes, hex. */
export const GENESIS_PREV = "0".repeat(64);
/** The latest signed tree head, copied out of the log at every checkpoint (atomically). */
export const HEAD_FILE = "head.json";
/** Held while a recorder writes the directory: one writer per chain. */
export const LOCK_FILE = "LOCK";
/** Domain separation for the signature: the signed bytes can never be mistaken for a record. */
export const TREE_HEAD_TYPE = "sluice.tree_head.v1";
export const TREE_HEAD_KIND = "tree_head";
/** A record handing signing from one key to the next (recorder.ts rotateKey). */
export const KEY_ROTATION_KIND = "key_rotation";

const SEGMENT_RE = /^audit-(\d{6,})\.jsonl$/;
export const segmentName = (index: number): string => `audit-${String(index).padStart(6, "0")}.jsonl`;
/** The segment's index, or null for a file that is not a segment. */
export function segmentIndex(name: string): number | null {
  const m = SEGMENT_RE.exec(name);
  return m ? Number(m[1]) : null;
}

const HEX64 = /^[0-9a-f]{64}$/;
export const isHex64 = (v: unknown): v is string => typeof v === "string" && HEX64.test(v);

/**
 * The record's line and hash. `body` holds every member but `hash`; `chain`, when given, adds
 * `seq` and `prev` (over any the body has: the chain fields are the recorder's). The members are
 * split around where `hash` goes and each half serialised natively (objects built in sorted order
 * are written canonically), so the line with and without `hash` share the work: one
 * serialisation and one SHA-256 per record. A body whose members are already in sorted order
 * (the proxy writes its records so) is not sorted again.
 */
export function sealRecord(body: Record<string, unknown>, chain?: { readonly seq: number; readonly prev: string }): { line: string; hash: string; digest: Buffer } {
  let names = Object.keys(body);
  if (chain) {
    // Merged in where they sort among the body's own (in order, as the proxy writes them).
    const own = names;
    names = [];
    let prev = false;
    let seq = false;
    for (const k of own) {
      if (k === "seq" || k === "prev") continue;
      if (!prev && k > "prev") prev = names.push("prev") > 0;
      if (!seq && k > "seq") seq = names.push("seq") > 0;
      names.push(k);
    }
    if (!prev) names.push("prev");
    if (!seq) names.push("seq");
  }
  // RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their names (what < and the default sort compare).
  for (let i = 1; i < names.length; i++) {
    if (names[i - 1]! < names[i]!) continue;
    names.sort();
    break;
  }
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  let nBefore = 0;
  let nAfter = 0;
  for (const k of names) {
    if (k === "hash") continue;
    let v = chain === undefined ? body[k] : k === "seq" ? chain.seq : k === "prev" ? chain.prev : body[k];
    if (v === undefined) continue;
    if (typeof v === "object" && v !== null) {
      v = canonicalCopy(v);
      if (v === null) return sealRecordSlowly(chain ? { ...body, seq: chain.seq, prev: chain.prev } : body);
    } else if (typeof v === "number" && !Number.isFinite(v)) throw new TypeError("canonical JSON has no Infinity or NaN");
    // Names of records are words; one that could be an array index would be listed first.
    if (k.charCodeAt(0) >= 48 && k.charCodeAt(0) <= 57) return sealRecordSlowly(chain ? { ...body, seq: chain.seq, prev: chain.prev } : body);
    if (k < "hash") {
      before[k] = v;
      nBefore++;
    } else {
      after[k] = v;
      nAfter++;
    }
  }
  // "{a,b" and "c,d}": the record without hash is their join, the line has the hash between.
  const head = nBefore > 0 ? JSON.stringify(before).slice(0, -1) : "{";
  const tail = nAfter > 0 ? JSON.stringify(after).slice(1) : "}";
  const digest = sha256(nBefore > 0 && nAfter > 0 ? `${head},${tail}` : head + tail);
  const hash = digest.toString("hex");
  return { line: `${head}${nBefore > 0 ? "," : ""}"hash":"${hash}"${nAfter > 0 ? "," : ""}${tail}`, hash, digest };
}

/** sealRecord for a record that holds an object the native order cannot give, member by member. */
function sealRecordSlowly(body: Record<string, unknown>): { line: string; hash: string; digest: Buffer } {
  const keys = Object.keys(body).sort();
  const parts: string[] = [];
  let at = -1;
  for (const k of keys) {
    const v = body[k];
    if (k === "hash") continue;
    if (at < 0 && k > "hash") at = parts.length;
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  if (at < 0) at = parts.length;
  const digest = sha256(`{${parts.join(",")}}`);
  const hash = digest.toString("hex");
  parts.splice(at, 0, `"hash":"${hash}"`);
  return { line: `{${parts.join(",")}}`, hash, digest };
}

/**
 * Recomputes a line's hash: SHA-256 over the line with its `"hash":"<claimed>"` member cut out.
 * Null when the line has no such member. A line that is not canonical hashes to something else
 * than the writer's hash, so any change of its bytes shows.
 */
export function hashOfLine(line: string, claimed: string): string | null {
  const member = `"hash":"${claimed}"`;
  const at = line.indexOf(member);
  if (at < 1) return null;
  let without: string;
  if (line[at - 1] === ",") without = line.slice(0, at - 1) + line.slice(at + member.length);
  else if (line[at - 1] === "{") without = line[at + member.length] === "," ? line.slice(0, at) + line.slice(at + member.length + 1) : line.slice(0, at) + line.slice(at + member.length);
  else return null;
  return sha256(without).toString("hex");
}

/** What a tree head's signature covers: UTF-8 bytes of this canonical JSON. */
export function treeHeadStatement(h: { key_id: string; root: string; time: string; tree_size: number }): string {
  return canonicalJson({ key_id: h.key_id, root: h.root, time: h.time, tree_size: h.tree_size, type: TREE_HEAD_TYPE });
}

/** Key id: lowercase hex SHA-256 of the raw 32-byte Ed25519 public key (RFC 8032 encoding). */
export function keyIdOf(publicKey: KeyObject): string {
  return sha256(rawPublicKey(publicKey)).toString("hex");
}

export function rawPublicKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: "jwk" });
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") throw new TypeError("not an Ed25519 public key");
  return Buffer.from(jwk.x, "base64url");
}

/** Checks a tree head's `sig` (base64 Ed25519 signature over treeHeadStatement). */
export function checkTreeHeadSignature(h: { key_id: string; root: string; time: string; tree_size: number; sig: string }, publicKey: KeyObject): boolean {
  try {
    return verifySignature(null, Buffer.from(treeHeadStatement(h), "utf8"), publicKey, Buffer.from(h.sig, "base64"));
  } catch {
    return false;
  }
}

/** A public key from PEM text: an SPKI public key, or a PKCS#8 private key (its public half). Ed25519 only. */
export function publicKeyFromPem(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== "ed25519") throw new TypeError(`an Ed25519 key is needed, not ${key.asymmetricKeyType ?? "an unknown key type"}`);
  return key;
}

/**
 * Offline verification of a flight-recorder directory (README "Flight recorder"): walks the hash
 * chain across segments, recomputes the Merkle root at every tree head, checks every signature
 * against the trusted key, and compares head.json with the end of the log. Stops at the first
 * problem and says where it is: seq, segment, line, kind. Shares no state with the writer, only
 * the format (log-format.ts).
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkTreeHeadSignature, GENESIS_PREV, HEAD_FILE, hashOfLine, isHex64, KEY_ROTATION_KIND, keyIdOf, segmentIndex, segmentName, TREE_HEAD_KIND } from "./log-format.ts";
import { createMerkleFrontier } from "./merkle.ts";

export type ProblemKind = "modified" | "deleted" | "inserted" | "reordered" | "truncated" | "bad_signature" | "unknown_key";

export interface Problem {
  readonly kind: ProblemKind;
  /** The sequence number where the log stops being what was written. */
  readonly seq: number;
  readonly segment: string;
  /** 1-based line in the segment, when one line is at fault. */
  readonly line?: number;
  readonly detail: string;
}

export interface VerifyReport {
  readonly records: number;
  readonly segments: number;
  readonly treeHeads: number;
  /** The last signed tree head seen in the log. */
  readonly lastSigned: { readonly treeSize: number; readonly root: string; readonly time: string } | null;
  /** Chained records after the last tree head: a live log or a crash, not signed yet. */
  readonly unsignedTail: number;
  readonly keyId: string;
  /** Every key that signed the log, oldest first, when it was handed over (key_rotation records). */
  readonly keys: readonly string[];
  readonly problem: Problem | null;
  /** Where the check began: 0, or with `fromTreeHead` the first line's seq (a signed tree head). */
  readonly from: number;
}

/** The directory or a file in it cannot be read at all (exit 2, not tampering). */
export class UnreadableLogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnreadableLogError";
  }
}

interface Parsed {
  readonly r: Record<string, unknown>;
  readonly hash: string;
  readonly seq: number;
  readonly prev: string;
}

/** A line as a record whose hash matches its bytes, or why not. */
function parseLine(text: string): Parsed | string {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    return "not a JSON record";
  }
  if (r === null || typeof r !== "object" || Array.isArray(r)) return "not a JSON object";
  const o = r as Record<string, unknown>;
  if (!isHex64(o.hash) || !isHex64(o.prev) || !Number.isSafeInteger(o.seq) || (o.seq as number) < 0) return "seq, prev or hash missing or malformed";
  if (hashOfLine(text, o.hash) !== o.hash) return "its bytes do not match its hash";
  return { r: o, hash: o.hash, seq: o.seq as number, prev: o.prev };
}

interface Rotation {
  readonly oldId: string;
  readonly newId: string;
  readonly oldKey: KeyObject;
  readonly newKey: KeyObject;
}

/** A key_rotation record's keys, each checked against its id, or why not. */
function rotationOf(r: Record<string, unknown>): Rotation | string {
  const key = (raw: unknown, id: unknown): KeyObject | null => {
    if (typeof raw !== "string" || !isHex64(id)) return null;
    try {
      const k = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw, "base64").toString("base64url") }, format: "jwk" });
      return keyIdOf(k) === id ? k : null;
    } catch {
      return null;
    }
  };
  const oldKey = key(r.old_public_key, r.old_key_id);
  const newKey = key(r.new_public_key, r.new_key_id);
  if (oldKey === null || newKey === null) return "a key rotation whose public keys do not match their ids";
  if (r.old_key_id === r.new_key_id) return "a key rotation to the same key";
  return { oldId: r.old_key_id as string, newId: r.new_key_id as string, oldKey, newKey };
}

/**
 * The key_rotation records of the log, in order (a first, cheap pass: the trusted key may be a
 * later one, and the earlier keys are then known only from the records that handed them over).
 */
function rotationsIn(texts: () => Iterable<string>): Rotation[] {
  const out: Rotation[] = [];
  for (const text of texts()) {
    let at = text.indexOf(`"kind":"${KEY_ROTATION_KIND}"`);
    while (at >= 0) {
      const line = text.slice(text.lastIndexOf("\n", at) + 1, text.indexOf("\n", at) < 0 ? undefined : text.indexOf("\n", at));
      try {
        const r = rotationOf(JSON.parse(line) as Record<string, unknown>);
        if (typeof r !== "string") out.push(r);
      } catch {
        // The main pass says what is wrong with the line.
      }
      at = text.indexOf(`"kind":"${KEY_ROTATION_KIND}"`, at + 1);
    }
  }
  return out;
}

/**
 * `fromTreeHead`: the log may begin with a signed tree head instead of the first record (a
 * collection whose start was not kept): the chain and the Merkle tree resume from that head (its
 * seq, prev and frontier), which its signature vouches for; what came before is not checked.
 */
export function verifyLog(opts: { dir: string; publicKey: KeyObject; fromTreeHead?: boolean }): VerifyReport {
  // Most logs never rotated their key: one pass. A key_rotation record met on the way, or a head
  // of a key other than the trusted one (which may be an earlier key of the chain), means the
  // keys must be known first: a second pass, with them.
  const once = walk(opts, false);
  return once === RESCAN || once.problem?.kind === "unknown_key" ? (walk(opts, true) as VerifyReport) : once;
}

const RESCAN = Symbol("rescan");

function walk(opts: { dir: string; publicKey: KeyObject; fromTreeHead?: boolean }, withRotations: boolean): VerifyReport | typeof RESCAN {
  const keyId = keyIdOf(opts.publicKey);
  let names: string[];
  try {
    names = readdirSync(opts.dir);
  } catch (err) {
    throw new UnreadableLogError(`cannot read ${opts.dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const indexes = names.map(segmentIndex).filter((i): i is number => i !== null).sort((a, b) => a - b);
  if (indexes.length === 0) throw new UnreadableLogError(`no audit segments (audit-NNNNNN.jsonl) in ${opts.dir}`);

  let expected = 0;
  let prev = GENESIS_PREV;
  let prevLine = 0;
  let tree = createMerkleFrontier();
  let from = 0;
  let treeHeads = 0;
  let lastSigned: VerifyReport["lastSigned"] = null;
  let sinceHead = 0;
  const headHashes = new Map<number, string>();
  let problem: Problem | null = null;

  // Key rotations: the log's keys in order (K0 -> K1 -> ...), each handed over by a record that
  // the next tree head, signed by the outgoing key, covers. Trusting a key trusts the keys after
  // it (its signature covers the record naming the next) and the keys before it once one of its
  // own tree heads covers the records that named them.
  const read = (i: number) => {
    try {
      return readFileSync(join(opts.dir, segmentName(i)), "utf8");
    } catch (err) {
      throw new UnreadableLogError(`cannot read ${join(opts.dir, segmentName(i))}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  const rotations = withRotations
    ? rotationsIn(function* () {
        for (const i of indexes) yield read(i);
      })
    : [];
  const chain = rotations.length > 0 && rotations.every((r, i) => i === 0 || r.oldId === rotations[i - 1]!.newId) ? [rotations[0]!.oldId, ...rotations.map((r) => r.newId)] : [keyId];
  const keys = new Map<string, KeyObject>();
  for (const r of rotations) keys.set(r.oldId, r.oldKey).set(r.newId, r.newKey);
  keys.set(keyId, opts.publicKey);
  const trustedAt = chain.indexOf(keyId);
  // Before the trusted key's epoch, heads are vouched for only by a later head of the trusted key.
  let vouched = trustedAt <= 0;
  let epoch = 0;
  let pending: Rotation | null = null;

  const report = (): VerifyReport => ({ records: expected, segments: indexes.length, treeHeads, lastSigned, unsignedTail: sinceHead, keyId, keys: trustedAt < 0 ? [keyId] : chain.slice(0, epoch + 1), problem, from });

  for (let k = 0; k < indexes.length && problem === null; k++) {
    const segment = segmentName(indexes[k]!);
    const lines = read(indexes[k]!).split("\n");
    // The line numbers reported are this segment's: the record before lives in another one.
    prevLine = -1;
    // A whole segment ends with a newline, so the split leaves one empty string last.
    const torn = lines.pop() !== "";
    const at = (kind: ProblemKind, seq: number, line: number | undefined, detail: string) => {
      problem = { kind, seq, segment, ...(line !== undefined ? { line: line + 1 } : {}), detail };
    };
    for (let j = 0; j < lines.length; j++) {
      const p = parseLine(lines[j]!);
      if (typeof p === "string") {
        at("modified", expected, j, `the record at seq ${expected}: ${p}`);
        break;
      }
      if (opts.fromTreeHead === true && k === 0 && j === 0 && p.seq > 0) {
        // Resume from this head: its own checks below (root from its frontier, its signature)
        // are what vouch for the state it hands on.
        const h = p.r;
        const frontier = Array.isArray(h.frontier) && h.frontier.every(isHex64) ? (h.frontier as string[]).map((x) => Buffer.from(x, "hex")) : null;
        if (h.kind !== TREE_HEAD_KIND || frontier === null || h.tree_size !== p.seq) {
          at("modified", p.seq, j, "a log checked from a tree head must begin with one, with its frontier");
          break;
        }
        try {
          tree = createMerkleFrontier({ size: p.seq, frontier });
        } catch {
          at("modified", p.seq, j, "the tree head's frontier does not fit its size");
          break;
        }
        expected = from = p.seq;
        prev = p.prev;
      }
      if (p.seq !== expected || p.prev !== prev) {
        classify(p, lines, j, expected, prev, prevLine, at);
        break;
      }
      if (p.r.kind === KEY_ROTATION_KIND && !withRotations) return RESCAN;
      // Under a key not in the log's chain of keys, rotations name nothing trusted: the first head says so.
      if (p.r.kind === KEY_ROTATION_KIND && trustedAt >= 0) {
        const r = rotationOf(p.r);
        if (typeof r === "string" || r.oldId !== chain[epoch] || r.newId !== chain[epoch + 1] || pending !== null) {
          at("modified", p.seq, j, typeof r === "string" ? `the record at seq ${p.seq}: ${r}` : `a key rotation at seq ${p.seq} that does not hand over from the key signing then (${(chain[epoch] ?? keyId).slice(0, 16)}…)`);
          break;
        }
        pending = r;
      }
      if (p.r.kind === TREE_HEAD_KIND) {
        const h = p.r;
        const root = tree.root().toString("hex");
        if (h.tree_size !== p.seq || h.root !== root) {
          at("modified", p.seq, j, `the tree head's root does not match the ${p.seq} records before it (signed ${String(h.root).slice(0, 16)}…, recomputed ${root.slice(0, 16)}…): records before it were rewritten`);
          break;
        }
        const frontier = tree.frontier().map((b) => b.toString("hex"));
        if (!Array.isArray(h.frontier) || h.frontier.join(",") !== frontier.join(",")) {
          at("modified", p.seq, j, "the tree head's frontier does not match the tree");
          break;
        }
        const signer = trustedAt < 0 ? keyId : chain[epoch]!;
        if (h.key_id !== signer) {
          const why = signer === keyId ? `not the trusted key ${keyId}` : `not the key signing then, ${signer} (handed over by the log's key rotations${trustedAt >= 0 ? `; trusted: ${keyId}` : ""})`;
          at("unknown_key", p.seq, j, `tree head signed by key ${String(h.key_id)}, ${why}`);
          break;
        }
        if (typeof h.time !== "string" || typeof h.sig !== "string" || !checkTreeHeadSignature({ key_id: h.key_id, root, time: h.time, tree_size: p.seq, sig: h.sig }, keys.get(signer)!)) {
          at("bad_signature", p.seq, j, `the tree head's signature does not verify with ${signer === keyId ? "the trusted key" : `key ${signer}`}`);
          break;
        }
        if (signer === keyId) vouched = true;
        // The head that covers a key rotation is the outgoing key's last.
        if (pending !== null) {
          epoch++;
          pending = null;
        }
        treeHeads++;
        lastSigned = { treeSize: p.seq, root, time: h.time };
        headHashes.set(p.seq, p.hash);
        sinceHead = -1;
      }
      tree.append(Buffer.from(p.hash, "hex"));
      prev = p.hash;
      prevLine = j;
      expected++;
      sinceHead++;
    }
    if (problem === null && torn) at("truncated", expected, lines.length, `the last line of ${segment} is cut short (no newline): the log was truncated, or the writer crashed mid-line`);
  }
  if (problem === null && !vouched) {
    problem = { kind: "unknown_key", seq: expected, segment: segmentName(indexes[indexes.length - 1]!), detail: `no tree head signed by the trusted key ${keyId} covers the key rotation that names it: the earlier keys are not vouched for` };
  }
  if (problem !== null) return report();

  // head.json names the latest tree head the writer published; the log must still hold it.
  const lastSegment = segmentName(indexes[indexes.length - 1]!);
  let headText: string;
  try {
    headText = readFileSync(join(opts.dir, HEAD_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new UnreadableLogError(`cannot read ${join(opts.dir, HEAD_FILE)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    if (treeHeads > 0) problem = { kind: "truncated", seq: expected, segment: HEAD_FILE, detail: `${HEAD_FILE} is missing, so a cut tail cannot be ruled out` };
    return report();
  }
  const head = parseLine(headText.trimEnd());
  if (typeof head === "string" || head.r.kind !== TREE_HEAD_KIND) {
    problem = { kind: "modified", seq: expected, segment: HEAD_FILE, detail: `${HEAD_FILE} is not a tree head record${typeof head === "string" ? `: ${head}` : ""}` };
  } else if (!keys.has(String(head.r.key_id)) || (trustedAt < 0 && head.r.key_id !== keyId)) {
    problem = { kind: "unknown_key", seq: head.seq, segment: HEAD_FILE, detail: `${HEAD_FILE} is signed by key ${String(head.r.key_id)}, not the trusted key ${keyId}` };
  } else if (!checkTreeHeadSignature({ key_id: String(head.r.key_id), root: String(head.r.root), time: String(head.r.time), tree_size: head.seq, sig: String(head.r.sig) }, keys.get(String(head.r.key_id))!) || head.r.tree_size !== head.seq) {
    problem = { kind: "bad_signature", seq: head.seq, segment: HEAD_FILE, detail: `the signature in ${HEAD_FILE} does not verify with the key it names` };
  } else if (head.seq >= expected) {
    problem = { kind: "truncated", seq: expected, segment: lastSegment, detail: `the log ends before seq ${expected}, but ${HEAD_FILE} holds a signed tree head at seq ${head.seq} (size ${head.seq}): records ${expected}..${head.seq} are gone` };
  } else if (headHashes.get(head.seq) !== head.hash) {
    problem = { kind: "modified", seq: head.seq, segment: HEAD_FILE, detail: `the signed tree head in ${HEAD_FILE} (seq ${head.seq}) is not the one in the log` };
  }
  return report();
}

/** Names a break in the chain at line `j` (seq or prev not what was expected). */
function classify(p: Parsed, lines: readonly string[], j: number, expected: number, prev: string, prevLine: number, at: (kind: ProblemKind, seq: number, line: number | undefined, detail: string) => void): void {
  const next = j + 1 < lines.length ? parseLine(lines[j + 1]!) : null;
  const nextOk = next !== null && typeof next !== "string" ? next : null;
  if (p.seq < expected) {
    // A seq seen already. The copy the following record chains to is the original one.
    const forgedIsEarlier = nextOk !== null && nextOk.prev === p.hash && p.seq === expected - 1 && prevLine >= 0;
    at("inserted", p.seq, forgedIsEarlier ? prevLine : j, `seq ${p.seq} appears twice; the copy at line ${(forgedIsEarlier ? prevLine : j) + 1} is not part of the chain`);
    return;
  }
  if (p.seq > expected) {
    if (nextOk !== null && nextOk.seq === expected && nextOk.prev === prev && p.prev !== nextOk.hash) {
      at("inserted", expected, j, `a record claiming seq ${p.seq} sits before seq ${expected} and is not part of the chain`);
      return;
    }
    for (let i = j + 1; i < lines.length; i++) {
      const later = parseLine(lines[i]!);
      if (typeof later !== "string" && later.seq === expected) {
        at("reordered", expected, j, `seq ${expected} is at line ${i + 1}, after seq ${p.seq} (line ${j + 1})`);
        return;
      }
    }
    at("deleted", expected, j, `seq ${expected}${p.seq - 1 > expected ? `..${p.seq - 1}` : ""} missing (${p.seq - expected} record${p.seq - expected === 1 ? "" : "s"}): line ${j + 1} holds seq ${p.seq}`);
    return;
  }
  // The right seq, chained to something else: the record before it was replaced by one with a
  // recomputed hash (or this one's prev was rewritten with it).
  const seq = Math.max(expected - 1, 0);
  at("modified", seq, prevLine >= 0 ? prevLine : j, `seq ${expected} does not chain to the record before it: seq ${seq} was rewritten with a recomputed hash`);
}

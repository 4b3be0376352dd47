/**
 * Offline verification of a flight-recorder directory (README "Flight recorder"): walks the hash
 * chain across segments, recomputes the Merkle root at every tree head, checks every signature
 * against the trusted key, and compares head.json with the end of the log. Stops at the first
 * problem and says where it is: seq, segment, line, kind. Shares no state with the writer, only
 * the format (log-format.ts).
 */
import type { KeyObject } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkTreeHeadSignature, GENESIS_PREV, HEAD_FILE, hashOfLine, isHex64, keyIdOf, segmentIndex, segmentName, TREE_HEAD_KIND } from "./log-format.ts";
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
  readonly problem: Problem | null;
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

export function verifyLog(opts: { dir: string; publicKey: KeyObject }): VerifyReport {
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
  const tree = createMerkleFrontier();
  let treeHeads = 0;
  let lastSigned: VerifyReport["lastSigned"] = null;
  let sinceHead = 0;
  const headHashes = new Map<number, string>();
  let problem: Problem | null = null;

  const report = (): VerifyReport => ({ records: expected, segments: indexes.length, treeHeads, lastSigned, unsignedTail: sinceHead, keyId, problem });

  for (let k = 0; k < indexes.length && problem === null; k++) {
    const segment = segmentName(indexes[k]!);
    let text: string;
    try {
      text = readFileSync(join(opts.dir, segment), "utf8");
    } catch (err) {
      throw new UnreadableLogError(`cannot read ${join(opts.dir, segment)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const lines = text.split("\n");
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
      if (p.seq !== expected || p.prev !== prev) {
        classify(p, lines, j, expected, prev, prevLine, at);
        break;
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
        if (h.key_id !== keyId) {
          at("unknown_key", p.seq, j, `tree head signed by key ${String(h.key_id)}, not the trusted key ${keyId}`);
          break;
        }
        if (typeof h.time !== "string" || typeof h.sig !== "string" || !checkTreeHeadSignature({ key_id: h.key_id, root, time: h.time, tree_size: p.seq, sig: h.sig }, opts.publicKey)) {
          at("bad_signature", p.seq, j, "the tree head's signature does not verify with the trusted key");
          break;
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
  } else if (head.r.key_id !== keyId) {
    problem = { kind: "unknown_key", seq: head.seq, segment: HEAD_FILE, detail: `${HEAD_FILE} is signed by key ${String(head.r.key_id)}, not the trusted key ${keyId}` };
  } else if (!checkTreeHeadSignature({ key_id: keyId, root: String(head.r.root), time: String(head.r.time), tree_size: head.seq, sig: String(head.r.sig) }, opts.publicKey) || head.r.tree_size !== head.seq) {
    problem = { kind: "bad_signature", seq: head.seq, segment: HEAD_FILE, detail: `the signature in ${HEAD_FILE} does not verify with the trusted key` };
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

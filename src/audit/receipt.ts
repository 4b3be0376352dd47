/**
 * Receipts: one record of the flight recorder with an RFC 6962 inclusion proof against a signed
 * tree head, so that anyone holding the public key can check, offline and with nothing else,
 * that sluice logged exactly this record at this position (README "Flight recorder", Receipts).
 *
 * `buildReceipt` works on records already read from the log (read-log.ts); `verifyReceipt` shares
 * nothing with the writer but the format: it recomputes the record's hash from the record, folds
 * the audit path to a root and checks the tree head's signature as verify.ts does.
 */
import type { KeyObject } from "node:crypto";
import { canonicalJson } from "./canonical-json.ts";
import { checkTreeHeadSignature, hashOfLine, isHex64, keyIdOf, TREE_HEAD_KIND } from "./log-format.ts";
import { auditPath, leafHash, merkleRootOf, rootFromAuditPath, sha256 } from "./merkle.ts";
import type { LogLine } from "./read-log.ts";

export const RECEIPT_TYPE = "sluice.receipt.v1";

export interface Receipt {
  readonly type: typeof RECEIPT_TYPE;
  /** The record as logged, `hash` included. */
  readonly record: Record<string, unknown>;
  /** The record's leaf index in the Merkle tree: its seq. */
  readonly leaf_index: number;
  /** RFC 6962 §2.1.1 PATH(leaf_index, D[tree_head.tree_size]): hex sibling hashes, leaf level first. */
  readonly audit_path: string[];
  /** The signed tree head the path leads to, exactly the members its signature covers plus `sig`. */
  readonly tree_head: { readonly tree_size: number; readonly root: string; readonly time: string; readonly key_id: string; readonly sig: string };
}

/** The log does not allow a receipt for that record: not there, not signed yet, or not intact. */
export class ReceiptError extends Error {
  constructor(
    message: string,
    readonly code: "not_found" | "unsigned" | "broken" = "broken",
  ) {
    super(message);
    this.name = "ReceiptError";
  }
}

/** The seq of the record that carries receipt id `id` (audit/receipt-id.ts). */
export function seqOfReceipt(lines: readonly LogLine[], id: string): number {
  // The newest first: a receipt is most often asked for soon after its decision.
  const found = lines.findLast((l) => l.record.receipt === id);
  if (found === undefined || typeof found.record.seq !== "number") throw new ReceiptError(`no record with receipt ${id} in the log`, "not_found");
  return found.record.seq;
}

/**
 * A receipt for record `seq` against the latest tree head that covers it (tree_size > seq).
 * Refuses rather than hand out a receipt that would not verify: the records up to that head must
 * be seq 0, 1, 2, … in order, the record's bytes must match its hash, and the leaves must give
 * the head's root.
 */
export function buildReceipt(lines: readonly LogLine[], seq: number): Receipt {
  const head = lines.findLast((l) => l.record.kind === TREE_HEAD_KIND);
  const target = lines.find((l) => l.record.seq === seq);
  if (target === undefined) throw new ReceiptError(`no record with seq ${seq} in the log`, "not_found");
  if (head === undefined || typeof head.record.tree_size !== "number" || head.record.tree_size <= seq) {
    throw new ReceiptError(`seq ${seq} is not covered by a signed tree head yet (a tree head is written every audit.checkpoint_every, and at shutdown)`, "unsigned");
  }
  const h = head.record;
  const size = h.tree_size as number;
  const leaves: Buffer[] = [];
  for (let i = 0; i < size; i++) {
    const r = lines[i]?.record;
    if (r?.seq !== i || !isHex64(r.hash)) throw new ReceiptError(`the log is not intact before seq ${size} (seq ${i} missing or malformed): run \`sluice audit verify\``);
    leaves.push(Buffer.from(r.hash, "hex"));
  }
  if (hashOfLine(target.text, String(target.record.hash)) !== target.record.hash) {
    throw new ReceiptError(`the record at seq ${seq} (${target.segment} line ${target.line}) does not match its hash: run \`sluice audit verify\``);
  }
  if (merkleRootOf(leaves).toString("hex") !== h.root) {
    throw new ReceiptError(`the records before seq ${size} do not give the root of the tree head there: run \`sluice audit verify\``);
  }
  return {
    type: RECEIPT_TYPE,
    record: target.record,
    leaf_index: seq,
    audit_path: auditPath(seq, leaves).map((b) => b.toString("hex")),
    tree_head: { tree_size: size, root: String(h.root), time: String(h.time), key_id: String(h.key_id), sig: String(h.sig) },
  };
}

/** Why a receipt does not verify, or null when it does. */
export type ReceiptCheck = { ok: true; keyId: string } | { ok: false; reason: string };

/** The receipt is not shaped like one at all (usage error, not a failed proof). */
export class MalformedReceiptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedReceiptError";
  }
}

/** Checks a parsed receipt with `publicKey` alone. Throws MalformedReceiptError when it is not a receipt. */
export function verifyReceipt(input: unknown, publicKey: KeyObject): ReceiptCheck {
  const r = shape(input);
  const keyId = keyIdOf(publicKey);
  const { hash, ...body } = r.record;
  // The leaf data is the record's hash, recomputed here from the record itself (RFC 8785 JCS of
  // every member but `hash`), so a record edited in the receipt cannot keep its old leaf.
  const recomputed = sha256(canonicalJson(body)).toString("hex");
  if (recomputed !== hash) return { ok: false, reason: `the record's hash ${String(hash)} is not the SHA-256 of its canonical JSON (${recomputed}): the record was changed` };
  if (r.record.seq !== r.leaf_index) return { ok: false, reason: `the record's seq ${String(r.record.seq)} is not the leaf index ${r.leaf_index}` };
  if (r.leaf_index >= r.tree_head.tree_size) return { ok: false, reason: `leaf ${r.leaf_index} is outside a tree of ${r.tree_head.tree_size}` };
  const root = rootFromAuditPath(r.leaf_index, r.tree_head.tree_size, leafHash(Buffer.from(recomputed, "hex")), r.audit_path.map((p) => Buffer.from(p, "hex")));
  if (root === null) return { ok: false, reason: `an audit path of ${r.audit_path.length} hashes does not fit leaf ${r.leaf_index} of a tree of ${r.tree_head.tree_size}` };
  if (root.toString("hex") !== r.tree_head.root) return { ok: false, reason: `the audit path leads to root ${root.toString("hex")}, not the tree head's ${r.tree_head.root}` };
  if (r.tree_head.key_id !== keyId) return { ok: false, reason: `the tree head is signed by key ${r.tree_head.key_id}, not the trusted key ${keyId}` };
  if (!checkTreeHeadSignature(r.tree_head, publicKey)) return { ok: false, reason: "the tree head's signature does not verify with the trusted key" };
  return { ok: true, keyId };
}

function shape(input: unknown): Receipt {
  const o = input as Partial<Record<keyof Receipt, unknown>> | null;
  const bad = (what: string): never => {
    throw new MalformedReceiptError(`not a sluice receipt: ${what}`);
  };
  if (o === null || typeof o !== "object" || Array.isArray(o)) return bad("not a JSON object");
  if (o.type !== RECEIPT_TYPE) bad(`type is not "${RECEIPT_TYPE}"`);
  if (o.record === null || typeof o.record !== "object" || Array.isArray(o.record)) bad("record is not an object");
  if (!Number.isSafeInteger(o.leaf_index) || (o.leaf_index as number) < 0) bad("leaf_index is not a non-negative integer");
  if (!Array.isArray(o.audit_path) || !o.audit_path.every(isHex64)) bad("audit_path is not a list of hex SHA-256 hashes");
  const t = o.tree_head as Record<string, unknown> | null | undefined;
  if (t === null || typeof t !== "object") return bad("tree_head is not an object");
  if (!Number.isSafeInteger(t.tree_size) || (t.tree_size as number) < 1) bad("tree_head.tree_size is not a positive integer");
  if (!isHex64(t.root) || !isHex64(t.key_id)) bad("tree_head.root or key_id is not hex SHA-256");
  if (typeof t.time !== "string" || typeof t.sig !== "string") bad("tree_head.time or sig is not a string");
  return o as Receipt;
}

/**
 * `sluice audit receipt SEQ|ID [DIR]` and `sluice audit verify-proof RECEIPT.json --pubkey FILE`:
 * a record with its inclusion proof against a signed tree head, and the check of one receipt on
 * its own (src/audit/receipt.ts).
 */
import type { KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { publicKeyFromPem } from "../audit/log-format.ts";
import { readLogRecords } from "../audit/read-log.ts";
import { buildReceipt, MalformedReceiptError, ReceiptError, seqOfReceipt, verifyReceipt } from "../audit/receipt.ts";
import { RECEIPT_ID } from "../audit/receipt-id.ts";
import { UnreadableLogError } from "../audit/verify.ts";
import { EXIT, UsageError } from "./usage.ts";

export async function receiptCommand(args: string[], out: (s: string) => void, err: (s: string) => void, resolveDir: (dir: string | undefined, config: string | undefined) => Promise<string | null>): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: "string", short: "c" } }, strict: true, allowPositionals: true });
  const [which, dirArg, ...extra] = positionals;
  if (which === undefined) throw new UsageError("audit receipt needs the SEQ or the receipt ID of a record (see `sluice audit show`, or a response's x-sluice-receipt)");
  if (extra.length > 0) throw new UsageError(`audit receipt takes SEQ or ID and at most one DIR (got ${positionals.join(" ")})`);
  const bySeq = /^\d+$/.test(which) && Number.isSafeInteger(Number(which));
  if (!bySeq && !RECEIPT_ID.test(which)) throw new UsageError(`'${which}' is neither a record's sequence number (0, 1, 2, ...) nor a receipt id (as in x-sluice-receipt)`);
  const dir = await resolveDir(dirArg, values.config);
  if (dir === null) return EXIT.usage;
  try {
    const lines = readLogRecords(dir);
    const receipt = buildReceipt(lines, bySeq ? Number(which) : seqOfReceipt(lines, which));
    out(`${JSON.stringify(receipt, null, 2)}\n`);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof UnreadableLogError) {
      err(`sluice audit receipt: ${e.message}\n`);
      return EXIT.usage;
    }
    if (!(e instanceof ReceiptError)) throw e;
    err(`sluice audit receipt: ${e.message}\n`);
    return EXIT.failure;
  }
}

export async function verifyProofCommand(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { pubkey: { type: "string" }, json: { type: "boolean", default: false } }, strict: true, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError("audit verify-proof needs one RECEIPT file (or - for stdin)");
  // No default key: a receipt is checked against a key the checker trusts, never one found on
  // the host that wrote it.
  if (values.pubkey === undefined) throw new UsageError("audit verify-proof needs --pubkey FILE (the public key `sluice audit pubkey` prints)");
  const file = positionals[0]!;
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyFromPem(readFileSync(values.pubkey, "utf8"));
  } catch (e) {
    err(`sluice audit verify-proof: cannot load the public key ${values.pubkey}: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.usage;
  }
  let input: unknown;
  try {
    input = JSON.parse(file === "-" ? await Bun.stdin.text() : readFileSync(file, "utf8"));
  } catch (e) {
    err(`sluice audit verify-proof: cannot read the receipt ${file}: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.usage;
  }
  let check: ReturnType<typeof verifyReceipt>;
  try {
    check = verifyReceipt(input, publicKey);
  } catch (e) {
    if (!(e instanceof MalformedReceiptError)) throw e;
    err(`sluice audit verify-proof: ${e.message}\n`);
    return EXIT.usage;
  }
  const r = input as { leaf_index: number; record: Record<string, unknown>; tree_head: { tree_size: number; time: string } };
  if (values.json) out(`${JSON.stringify(check.ok ? { ok: true, seq: r.leaf_index, tree_size: r.tree_head.tree_size, key_id: check.keyId } : { ok: false, reason: check.reason })}\n`);
  else if (check.ok) out(`ok: seq ${r.leaf_index} (${String(r.record.kind)}, ${String(r.record.verdict)}, ${String(r.record.rule)}) is leaf ${r.leaf_index} of the tree of ${r.tree_head.tree_size} signed at ${r.tree_head.time} by key ${check.keyId}\n`);
  else out(`FAILED: ${check.reason}\n`);
  return check.ok ? EXIT.ok : EXIT.failure;
}

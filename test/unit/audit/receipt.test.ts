/**
 * Receipts (src/audit/receipt.ts): built from a real recorder's log, checked by a verifier that
 * gets only the receipt and the public key; every change to a receipt makes it fail.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readLogRecords } from "../../../src/audit/read-log.ts";
import { buildReceipt, MalformedReceiptError, ReceiptError, type Receipt, verifyReceipt } from "../../../src/audit/receipt.ts";
import { openRecorder } from "../../../src/audit/recorder.ts";
import { loadSigningKey } from "../../../src/audit/signing-key.ts";
import { parseTimeArg } from "../../../src/cli/audit-show.ts";
import { UsageError } from "../../../src/cli/usage.ts";

const root = mkdtempSync(join(tmpdir(), "sluice-receipt-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const KEY = loadSigningKey({ home: join(root, "home"), create: true });
const FOREIGN = loadSigningKey({ home: join(root, "foreign"), create: true });

/** 22 records in small segments (a tree head at each rotation), left open: unsigned records at the end. */
const dir = join(root, "log");
const recorder = openRecorder({ dir, key: KEY, segmentBytes: 2048, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "always" });
for (let i = 0; i < 22; i++) recorder.append({ time: `2026-01-01T00:00:${String(i).padStart(2, "0")}.000Z`, kind: "http", agent: "a", method: "GET", host: `h${i}.example`, port: 80, path: "/", verdict: i % 3 === 0 ? "block" : "allow", rule: "egress.allow-host", reason: "allowed", duration_ms: i / 7 });
const lines = readLogRecords(dir);
/** A deep, writable copy to tamper with. */
interface Editable {
  record: Record<string, unknown>;
  leaf_index: number;
  audit_path: string[];
  tree_head: { tree_size: number; root: string; time: string; key_id: string; sig: string };
}
const copy = (r: Receipt): Editable => JSON.parse(JSON.stringify(r)) as Editable;

describe("receipts", () => {
  test("the log spans several segments, and every signed record gets a receipt that verifies with the public key alone", () => {
    expect(new Set(lines.map((l) => l.segment)).size).toBeGreaterThan(1);
    const heads = lines.filter((l) => l.record.kind === "tree_head").map((l) => l.record.seq as number);
    expect(heads.length).toBeGreaterThan(1);
    const last = heads.at(-1)!;
    expect(lines.length).toBeGreaterThan(last + 1);
    // Against the latest tree head, whichever segment the record is in; tree heads are leaves too.
    for (let seq = 0; seq < last; seq++) {
      const r = buildReceipt(lines, seq);
      expect(r).toMatchObject({ type: "sluice.receipt.v1", leaf_index: seq, record: { seq }, tree_head: { tree_size: last, key_id: KEY.keyId } });
      // Through JSON, as a file would carry it: floats and all.
      expect([seq, verifyReceipt(JSON.parse(JSON.stringify(r)), KEY.publicKey)]).toEqual([seq, { ok: true, keyId: KEY.keyId }]);
    }
  });

  test("records after the last tree head, and seqs that are not there, get no receipt", () => {
    const tail = lines.length - 1;
    expect(() => buildReceipt(lines, tail)).toThrow(ReceiptError);
    expect(() => buildReceipt(lines, tail)).toThrow(/not covered by a signed tree head/);
    expect(() => buildReceipt(lines, 999)).toThrow(/no record with seq 999/);
  });

  test("any change to the record, the path, the index, the tree head or the key fails", () => {
    const good = buildReceipt(lines, 4);
    const fails = (edit: (r: Editable) => void, why: RegExp, key = KEY.publicKey) => {
      const r = copy(good);
      edit(r);
      const c = verifyReceipt(r, key);
      expect(c.ok).toBe(false);
      if (!c.ok) expect(c.reason).toMatch(why);
    };
    fails((r) => (r.record.verdict = "block"), /record was changed/);
    fails((r) => (r.record.host = "evil.example"), /record was changed/);
    fails((r) => (r.leaf_index = 5), /not the leaf index/);
    fails((r) => (r.audit_path[0] = "0".repeat(64)), /leads to root/);
    fails((r) => r.audit_path.pop(), /does not fit|leads to root/);
    // A leaf in a full left subtree folds the same in a bigger tree: the signature binds the size.
    fails((r) => (r.tree_head.tree_size += 1), /does not fit|leads to root|signature/);
    fails((r) => (r.tree_head.time = "2030-01-01T00:00:00.000Z"), /signature/);
    fails((r) => (r.tree_head.sig = Buffer.alloc(64).toString("base64")), /signature/);
    fails(() => {}, /not the trusted key/, FOREIGN.publicKey);
    // Swapping in another record with its own (valid) hash does not move it into this leaf.
    const other = buildReceipt(lines, 5);
    fails((r) => (r.record = { ...other.record, seq: 4 }), /record was changed/);
    fails((r) => {
      r.record = other.record;
    }, /not the leaf index/);
  });

  test("something that is not a receipt is malformed, not a failed proof", () => {
    expect(() => verifyReceipt({ type: "x" }, KEY.publicKey)).toThrow(MalformedReceiptError);
    expect(() => verifyReceipt({ ...copy(buildReceipt(lines, 1)), audit_path: ["zz"] }, KEY.publicKey)).toThrow(/audit_path/);
    expect(() => verifyReceipt(null, KEY.publicKey)).toThrow(MalformedReceiptError);
  });
});

describe("audit show times", () => {
  const now = Date.parse("2026-11-27T12:00:00Z");
  test("ISO 8601 (UTC without a zone) and durations ago", () => {
    expect(parseTimeArg("--since", "2026-11-27", now)).toBe(Date.parse("2026-11-27T00:00:00Z"));
    expect(parseTimeArg("--since", "2026-11-27T08:30", now)).toBe(Date.parse("2026-11-27T08:30:00Z"));
    expect(parseTimeArg("--since", "2026-11-27 08:30:15.5", now)).toBe(Date.parse("2026-11-27T08:30:15.500Z"));
    expect(parseTimeArg("--since", "2026-11-27T08:30:00+02:00", now)).toBe(Date.parse("2026-11-27T06:30:00Z"));
    expect(parseTimeArg("--since", "90m", now)).toBe(now - 90 * 60_000);
    expect(parseTimeArg("--until", "2d", now)).toBe(now - 2 * 86_400_000);
  });
  test("anything else is a usage error naming the flag", () => {
    for (const bad of ["yesterday", "2026-13-45", "2026-11-27T25:00", "10", "-5m", "1w", ""]) {
      expect(() => parseTimeArg("--since", bad, now)).toThrow(UsageError);
    }
    expect(() => parseTimeArg("--until", "soon", now)).toThrow(/--until 'soon' is not a time/);
  });
});

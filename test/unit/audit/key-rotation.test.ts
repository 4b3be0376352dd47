/**
 * Key rotation in the flight recorder: a key_rotation record naming both keys, covered by a tree
 * head of the outgoing key, after which the new key signs. verify trusts forward (the old key's
 * signature covers the record naming the new one) and backward (a head of the trusted new key
 * covers the record naming the old one), and refuses what a rotation cannot justify: a forged
 * rotation, a head by the retired key, a rotation no trusted head covers. The log resumes under
 * the new key and not the old. rotateSigningKey swaps the key file.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { sign } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rawPublicKey, sealRecord, treeHeadStatement } from "../../../src/audit/log-format.ts";
import { createMerkleFrontier } from "../../../src/audit/merkle.ts";
import { AuditLogError, openRecorder } from "../../../src/audit/recorder.ts";
import { rotateSigningKey } from "../../../src/audit/rotate-key.ts";
import { loadSigningKey, type SigningKey } from "../../../src/audit/signing-key.ts";
import { verifyLog } from "../../../src/audit/verify.ts";

const root = mkdtempSync(join(tmpdir(), "sluice-key-rotation-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `case-${++n}`);
const key = (name: string): SigningKey => loadSigningKey({ home: join(root, `home-${name}`), create: true });
const K0 = key("k0");
const K1 = key("k1");
const K2 = key("k2");
const EVIL = key("evil");
const rec = (i: number) => ({ time: "2025-01-01T00:00:00.000Z", kind: "http", agent: "a", host: `h${i}.example`, verdict: "allow", rule: "egress.allow-host", reason: "allowed", status: 200 });
const open = (dir: string, k: SigningKey) => openRecorder({ dir, key: k, segmentBytes: 1 << 20, checkpointRecords: 5, checkpointMs: 3_600_000, fsync: "interval" });
const lines = (dir: string) => readFileSync(join(dir, "audit-000001.jsonl"), "utf8").trimEnd().split("\n");
const parsed = (dir: string) => lines(dir).map((l) => JSON.parse(l) as Record<string, unknown>);

/** 12 records under K0, a rotation to K1, 12 more (across a restart), a rotation to K2, 3 more. */
function rotatedLog(): string {
  const dir = fresh();
  let r = open(dir, K0);
  for (let i = 0; i < 12; i++) r.append(rec(i));
  r.rotateKey(K1);
  for (let i = 12; i < 18; i++) r.append(rec(i));
  r.close();
  r = open(dir, K1);
  for (let i = 18; i < 24; i++) r.append(rec(i));
  r.rotateKey(K2);
  for (let i = 24; i < 27; i++) r.append(rec(i));
  r.close();
  return dir;
}

describe("key rotation", () => {
  test("the log: a key_rotation record naming both keys, the old key's head over it, the new key's after", () => {
    const dir = rotatedLog();
    const all = parsed(dir);
    const rot = all.find((r) => r.kind === "key_rotation")!;
    expect(rot).toMatchObject({ old_key_id: K0.keyId, new_key_id: K1.keyId, old_public_key: rawPublicKey(K0.publicKey).toString("base64"), new_public_key: rawPublicKey(K1.publicKey).toString("base64"), rule: "audit.key-rotation" });
    const after = all[(rot.seq as number) + 1]!;
    expect(after).toMatchObject({ kind: "tree_head", key_id: K0.keyId, trigger: "key_rotation", next_key_id: K1.keyId });
    const heads = all.filter((r) => r.kind === "tree_head").map((r) => r.key_id);
    expect(heads.at(-1)).toBe(K2.keyId);
    expect(new Set(heads)).toEqual(new Set([K0.keyId, K1.keyId, K2.keyId]));
  });

  test("verifies under any key of the chain: forward from the first, backward from the last, both ways from the middle", () => {
    const dir = rotatedLog();
    for (const k of [K0, K1, K2]) {
      const report = verifyLog({ dir, publicKey: k.publicKey });
      expect([k.keyId, report.problem]).toEqual([k.keyId, null]);
      expect(report.keys).toEqual([K0.keyId, K1.keyId, K2.keyId]);
    }
    expect(verifyLog({ dir, publicKey: EVIL.publicKey }).problem).toMatchObject({ kind: "unknown_key", seq: 5 });
  });

  test("resumes under the new key only", () => {
    const dir = fresh();
    const r = open(dir, K0);
    r.append(rec(0));
    r.rotateKey(K1);
    r.close();
    expect(() => open(dir, K0)).toThrow(AuditLogError);
    expect(() => open(dir, K0)).toThrow(/sluice audit rotate-key/);
    const again = open(dir, K1);
    again.append(rec(1));
    again.close();
    expect(verifyLog({ dir, publicKey: K0.publicKey }).problem).toBeNull();
    expect(() => r.rotateKey(K2)).toThrow(/closed/);
  });

  test("a forged rotation and a head of the forger's key, appended by someone without the old key: unknown_key", () => {
    const dir = fresh();
    const r = open(dir, K0);
    for (let i = 0; i < 3; i++) r.append(rec(i));
    r.close();
    // The forger chains a rotation to their key, then a head signed by it over a correct tree.
    const all = parsed(dir);
    const tree = createMerkleFrontier();
    for (const x of all) tree.append(Buffer.from(x.hash as string, "hex"));
    const last = all.at(-1)!;
    const rotSeq = (last.seq as number) + 1;
    const rot = sealRecord(
      { ...rec(9), kind: "key_rotation", old_key_id: K0.keyId, old_public_key: rawPublicKey(K0.publicKey).toString("base64"), new_key_id: EVIL.keyId, new_public_key: rawPublicKey(EVIL.publicKey).toString("base64") },
      { seq: rotSeq, prev: last.hash as string },
    );
    tree.append(rot.digest);
    const head = { key_id: EVIL.keyId, root: tree.root().toString("hex"), time: "2025-01-01T00:00:00.000Z", tree_size: rotSeq + 1 };
    const sig = sign(null, Buffer.from(treeHeadStatement(head)), EVIL.privateKey).toString("base64");
    const forgedHead = sealRecord({ kind: "tree_head", ...head, sig, frontier: tree.frontier().map((h) => h.toString("hex")), trigger: "key_rotation" }, { seq: rotSeq + 1, prev: rot.hash });
    writeFileSync(join(dir, "audit-000001.jsonl"), `${lines(dir).join("\n")}\n${rot.line}\n${forgedHead.line}\n`);
    for (const k of [K0, EVIL]) {
      expect([k === K0 ? "K0" : "EVIL", verifyLog({ dir, publicKey: k.publicKey }).problem]).toMatchObject([k === K0 ? "K0" : "EVIL", { kind: "unknown_key", seq: rotSeq + 1 }]);
    }
  });

  test("a head signed by the retired key after the handover, or a rotation record edited: found", () => {
    const dir = rotatedLog();
    const all = lines(dir);
    const i = parsed(dir).findLastIndex((r) => r.kind === "tree_head" && r.key_id === K1.keyId && r.trigger !== "key_rotation");
    const r = JSON.parse(all[i]!) as Record<string, unknown>;
    delete r.hash;
    r.key_id = K0.keyId;
    r.sig = sign(null, Buffer.from(treeHeadStatement(r as { key_id: string; root: string; time: string; tree_size: number })), K0.privateKey).toString("base64");
    const edited = [...all];
    edited[i] = sealRecord(r).line;
    writeFileSync(join(dir, "audit-000001.jsonl"), `${edited.join("\n")}\n`);
    expect(verifyLog({ dir, publicKey: K0.publicKey }).problem).toMatchObject({ kind: "unknown_key", seq: r.seq, detail: expect.stringContaining("not the key signing then") });

    const dir2 = rotatedLog();
    const all2 = lines(dir2);
    const j = parsed(dir2).findIndex((x) => x.kind === "key_rotation");
    all2[j] = all2[j]!.replace(K1.keyId, EVIL.keyId);
    writeFileSync(join(dir2, "audit-000001.jsonl"), `${all2.join("\n")}\n`);
    expect(verifyLog({ dir: dir2, publicKey: K0.publicKey }).problem).toMatchObject({ kind: "modified", seq: j });
  });

  test("rotateSigningKey: a new key in place of the old, the old kept 0600 as retired, the log verifies under both", () => {
    const home = fresh();
    const dir = join(home, "audit");
    const old = loadSigningKey({ home, create: true });
    const r = open(dir, old);
    r.append(rec(0));
    r.close();
    const { next, retired } = rotateSigningKey({ dir, home, old, next: null, segmentBytes: 1 << 20 });
    expect(next.path).toBe(old.path);
    expect(next.keyId).not.toBe(old.keyId);
    expect(loadSigningKey({ home, create: false }).keyId).toBe(next.keyId);
    expect(retired).not.toBeNull();
    expect(loadSigningKey({ home, file: retired!, create: false }).keyId).toBe(old.keyId);
    expect(statSync(retired!).mode & 0o777).toBe(0o600);
    expect(existsSync(`${old.path}.next`)).toBe(false);
    expect(verifyLog({ dir, publicKey: old.publicKey }).problem).toBeNull();
    expect(verifyLog({ dir, publicKey: next.publicKey }).problem).toBeNull();
    // While a writer holds the log, no handover.
    const live = open(dir, next);
    expect(() => rotateSigningKey({ dir, home, old: next, next: null, segmentBytes: 1 << 20 })).toThrow(/another process/);
    expect(existsSync(`${next.path}.next`)).toBe(false);
    live.close();
  });
});

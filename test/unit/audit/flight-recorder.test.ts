/**
 * The flight recorder (src/audit/recorder.ts) against its verifier (src/audit/verify.ts): a clean
 * log verifies, and each kind of tampering is found at its exact seq, segment and line.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync, sign } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalJson } from "../../../src/audit/canonical-json.ts";
import { HEAD_FILE, keyIdOf, sealRecord, treeHeadStatement } from "../../../src/audit/log-format.ts";
import { AuditLogError, openRecorder } from "../../../src/audit/recorder.ts";
import { loadSigningKey, type SigningKey, SigningKeyError } from "../../../src/audit/signing-key.ts";
import { verifyLog } from "../../../src/audit/verify.ts";

const root = mkdtempSync(join(tmpdir(), "sluice-recorder-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `case-${++n}`);

const KEY: SigningKey = loadSigningKey({ home: join(root, "home"), create: true });
const FOREIGN: SigningKey = loadSigningKey({ home: join(root, "foreign-home"), create: true });

const rec = (i: number) => ({ time: `2025-01-01T00:00:${String(i % 60).padStart(2, "0")}.000Z`, kind: "http", agent: "anonymous", method: "GET", host: `h${i}.example`, port: 80, path: "/", verdict: "allow", rule: "egress.allow-host", reason: "allowed", status: 200 });

/** 50 records, a tree head every 10 (seq 10, 21, 32, 43, 54) and one at close (seq 55): 56 lines. */
function writeLog(opts: { key?: SigningKey; records?: number; segmentBytes?: number } = {}): string {
  const dir = fresh();
  const r = openRecorder({ dir, key: opts.key ?? KEY, segmentBytes: opts.segmentBytes ?? 1 << 20, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "interval" });
  for (let i = 0; i < (opts.records ?? 50); i++) r.append(rec(i));
  r.close();
  return dir;
}

const segments = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".jsonl")).sort();
const linesOf = (dir: string, seg = segments(dir)[0]!) => readFileSync(join(dir, seg), "utf8").split("\n").slice(0, -1);
const writeLines = (dir: string, lines: string[], seg = segments(dir)[0]!) => writeFileSync(join(dir, seg), lines.map((l) => `${l}\n`).join(""));
const check = (dir: string, key = KEY) => verifyLog({ dir, publicKey: key.publicKey });
/** A record re-sealed after `edit`: a forger who recomputes the hash. */
function reseal(line: string, edit: (r: Record<string, unknown>) => void): string {
  const r = JSON.parse(line) as Record<string, unknown>;
  delete r.hash;
  edit(r);
  return sealRecord(r).line;
}

describe("a clean log", () => {
  test("verifies: every record chained, every tree head signed, head.json at the end", () => {
    const dir = writeLog();
    const report = check(dir);
    expect(report.problem).toBeNull();
    expect(report.records).toBe(56);
    expect(report.treeHeads).toBe(6);
    expect(report.lastSigned?.treeSize).toBe(55);
    expect(report.unsignedTail).toBe(0);
    const lines = linesOf(dir);
    // Each line is canonical JSON, and the chain fields are where the format says.
    for (const [i, l] of lines.entries()) {
      const r = JSON.parse(l) as Record<string, unknown>;
      expect(canonicalJson(r)).toBe(l);
      expect(r.seq).toBe(i);
    }
    expect((JSON.parse(lines[10]!) as { kind: string; tree_size: number }).tree_size).toBe(10);
    expect(JSON.parse(readFileSync(join(dir, HEAD_FILE), "utf8"))).toEqual(JSON.parse(lines[55]!));
  });

  test("rotates by size, chains across segments and verifies", () => {
    const dir = writeLog({ segmentBytes: 4096, records: 80 });
    expect(segments(dir).length).toBeGreaterThan(3);
    // Each segment but the last ends with its rotation tree head.
    for (const seg of segments(dir).slice(0, -1)) expect(JSON.parse(linesOf(dir, seg).at(-1)!).trigger).toBe("rotate");
    expect(check(dir).problem).toBeNull();
  });

  test("a record cannot bring its own seq, prev or hash", () => {
    const dir = fresh();
    const r = openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "always" });
    const line = JSON.parse(r.append({ ...rec(0), seq: 99, prev: "f".repeat(64), hash: "e".repeat(64) })) as Record<string, unknown>;
    r.close();
    expect(line.seq).toBe(0);
    expect(line.prev).toBe("0".repeat(64));
    expect(line.hash).not.toBe("e".repeat(64));
    expect(check(dir).problem).toBeNull();
  });
});

describe("tampering is found where it happened", () => {
  test("a byte edited: modified at that seq", () => {
    const dir = writeLog();
    const lines = linesOf(dir);
    lines[4] = lines[4]!.replace("h4.example", "h5.example");
    writeLines(dir, lines);
    expect(check(dir).problem).toMatchObject({ kind: "modified", seq: 4, segment: "audit-000001.jsonl", line: 5 });
  });

  test("a line deleted: deleted at its seq", () => {
    const dir = writeLog();
    const lines = linesOf(dir);
    lines.splice(4, 1);
    writeLines(dir, lines);
    expect(check(dir).problem).toMatchObject({ kind: "deleted", seq: 4, line: 5 });
  });

  test("a forged line with a recomputed hash inserted: inserted, the forged line named", () => {
    const dir = writeLog();
    const lines = linesOf(dir);
    const three = JSON.parse(lines[3]!) as { hash: string };
    const forged = sealRecord({ ...rec(4), host: "innocent.example", seq: 4, prev: three.hash }).line;
    lines.splice(4, 0, forged);
    writeLines(dir, lines);
    expect(check(dir).problem).toMatchObject({ kind: "inserted", seq: 4, line: 5 });
  });

  test("a forged line claiming a far seq inserted: inserted before the seq it displaces", () => {
    const dir = writeLog();
    const lines = linesOf(dir);
    lines.splice(4, 0, sealRecord({ ...rec(4), seq: 900, prev: "a".repeat(64) }).line);
    writeLines(dir, lines);
    expect(check(dir).problem).toMatchObject({ kind: "inserted", seq: 4, line: 5 });
  });

  test("two lines swapped: reordered at the first seq out of place", () => {
    const dir = writeLog();
    const lines = linesOf(dir);
    [lines[4], lines[5]] = [lines[5]!, lines[4]!];
    writeLines(dir, lines);
    expect(check(dir).problem).toMatchObject({ kind: "reordered", seq: 4, line: 5 });
  });

  test("a record rewritten with a recomputed hash: modified, at that record", () => {
    const dir = writeLog();
    const lines = linesOf(dir);
    lines[4] = reseal(lines[4]!, (r) => (r.verdict = "block"));
    writeLines(dir, lines);
    expect(check(dir).problem).toMatchObject({ kind: "modified", seq: 4, line: 5 });
  });

  test("the tail cut after a signed tree head: truncated, head.json still names the end", () => {
    const dir = writeLog();
    const lines = linesOf(dir);
    writeLines(dir, lines.slice(0, 44)); // up to and including the tree head at seq 43
    expect(check(dir).problem).toMatchObject({ kind: "truncated", seq: 44, segment: "audit-000001.jsonl" });
  });

  test("the tail cut mid-line: truncated at the torn record", () => {
    const dir = writeLog();
    const path = join(dir, segments(dir)[0]!);
    const text = readFileSync(path, "utf8");
    writeFileSync(path, text.slice(0, text.length - 40));
    expect(check(dir).problem).toMatchObject({ kind: "truncated", seq: 55 });
  });

  test("head.json deleted along with the tail: truncated", () => {
    const dir = writeLog();
    writeLines(dir, linesOf(dir).slice(0, 44));
    unlinkSync(join(dir, HEAD_FILE));
    expect(check(dir).problem).toMatchObject({ kind: "truncated", segment: HEAD_FILE });
  });

  test("a signature replaced by another tree head's: bad_signature at that tree head", () => {
    const dir = writeLog();
    const lines = linesOf(dir);
    const other = (JSON.parse(lines[10]!) as { sig: string }).sig;
    lines[21] = reseal(lines[21]!, (r) => (r.sig = other));
    writeLines(dir, lines);
    expect(check(dir).problem).toMatchObject({ kind: "bad_signature", seq: 21, line: 22 });
  });

  test("a tree head re-signed with a foreign key: unknown_key at that tree head", () => {
    const dir = writeLog();
    const lines = linesOf(dir);
    lines[21] = reseal(lines[21]!, (r) => {
      r.key_id = FOREIGN.keyId;
      r.sig = sign(null, Buffer.from(treeHeadStatement(r as { key_id: string; root: string; time: string; tree_size: number })), FOREIGN.privateKey).toString("base64");
    });
    writeLines(dir, lines);
    expect(check(dir).problem).toMatchObject({ kind: "unknown_key", seq: 21, line: 22 });
  });

  test("a whole log signed by another key: unknown_key at its first tree head; its own key verifies it", () => {
    const dir = writeLog({ key: FOREIGN });
    expect(check(dir).problem).toMatchObject({ kind: "unknown_key", seq: 10, line: 11 });
    expect(check(dir, FOREIGN).problem).toBeNull();
  });

  test("a middle segment deleted: deleted at its first seq", () => {
    const dir = writeLog({ segmentBytes: 4096, records: 80 });
    const segs = segments(dir);
    const firstSeqOfThird = (JSON.parse(linesOf(dir, segs[2]!)[0]!) as { seq: number }).seq;
    unlinkSync(join(dir, segs[2]!));
    expect(check(dir).problem).toMatchObject({ kind: "deleted", seq: firstSeqOfThird, segment: segs[3]!, line: 1 });
  });
});

describe("resuming", () => {
  test("a reopened log continues the chain and the tree, and still verifies", () => {
    const dir = writeLog();
    const r = openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "interval" });
    expect(r.opened.resumedAt).toBe(56);
    const first = JSON.parse(r.append(rec(100))) as { seq: number };
    r.close();
    expect(first.seq).toBe(56);
    const report = check(dir);
    expect(report.problem).toBeNull();
    expect(report.records).toBe(58);
  });

  test("a torn last line (crash) is cut off and a recovered record says so", () => {
    const dir = writeLog();
    const path = join(dir, segments(dir)[0]!);
    writeFileSync(path, `${readFileSync(path, "utf8")}{"agent":"anonym`);
    const r = openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "interval" });
    expect(r.opened.repaired).toMatch(/torn last line \(16 bytes/);
    r.close();
    const recovered = linesOf(dir).map((l) => JSON.parse(l) as { kind: string; seq: number }).find((x) => x.kind === "recovered");
    expect(recovered?.seq).toBe(56);
    expect(check(dir).problem).toBeNull();
  });

  test("a log whose tail was tampered with refuses to be appended to", () => {
    // Records 55..59 after the last periodic tree head (seq 54), as after a crash (no close head).
    const dir = writeLog({ records: 55 });
    const lines = linesOf(dir).slice(0, -1);
    lines[57] = lines[57]!.replace("allow", "block");
    writeLines(dir, lines);
    expect(() => openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "interval" })).toThrow(/does not continue cleanly at audit-000001.jsonl line 58/);
    expect(existsSync(join(dir, "LOCK"))).toBe(false);
  });

  test("a log signed by another key is not continued with this one", () => {
    const dir = writeLog({ key: FOREIGN });
    expect(() => openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "interval" })).toThrow(AuditLogError);
  });

  test("one writer per directory", () => {
    const dir = fresh();
    const a = openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "interval" });
    expect(() => openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "interval" })).toThrow(/another process/);
    a.close();
    openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 10, checkpointMs: 3_600_000, fsync: "interval" }).close();
  });
});

describe("the signing key", () => {
  test("is made once, 0600, and loaded the same next time", () => {
    const home = fresh();
    const a = loadSigningKey({ home, create: true });
    expect(a.created).toBe(true);
    expect(statSync(a.path).mode & 0o777).toBe(0o600);
    const b = loadSigningKey({ home, create: true });
    expect(b.created).toBe(false);
    expect(b.keyId).toBe(a.keyId);
    expect(b.keyId).toBe(keyIdOf(b.publicKey));
  });

  test("a key others can read, a missing named key, a non-Ed25519 key: clear errors", () => {
    const home = fresh();
    const k = loadSigningKey({ home, create: true });
    chmodSync(k.path, 0o644);
    expect(() => loadSigningKey({ home, create: true })).toThrow(/readable by group or others.*chmod 600/);
    expect(() => loadSigningKey({ home, file: join(home, "nope.pem"), create: true })).toThrow(/does not exist/);
    const rsa = join(home, "rsa.pem");
    writeFileSync(rsa, generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    expect(() => loadSigningKey({ home, file: rsa, create: false })).toThrow(SigningKeyError);
    expect(() => loadSigningKey({ home: fresh(), create: false })).toThrow(/no audit signing key/);
  });
});

describe("rotation by age", () => {
  test("a segment whose first record is segmentMs old is closed with a tree head at the next tick, also after a restart", async () => {
    const dir = fresh();
    let clock = Date.parse("2025-01-01T00:00:00.000Z");
    const opts = { dir, key: KEY, segmentBytes: 1 << 20, segmentMs: 60_000, checkpointRecords: 1000, checkpointMs: 3_600_000, fsync: "interval" as const, tickMs: 5, now: () => clock };
    let r = openRecorder(opts);
    r.append({ ...rec(0), time: new Date(clock).toISOString() });
    clock += 30_000;
    await Bun.sleep(30);
    expect(segments(dir)).toEqual(["audit-000001.jsonl"]);
    r.close();
    // Restarted: the age counts from the segment's first record, not from the restart.
    r = openRecorder(opts);
    clock += 31_000;
    await Bun.sleep(30);
    r.append({ ...rec(1), time: new Date(clock).toISOString() });
    await Bun.sleep(30);
    r.close();
    expect(segments(dir)).toEqual(["audit-000001.jsonl", "audit-000002.jsonl"]);
    const first = linesOf(dir).map((l) => JSON.parse(l) as { kind: string; trigger?: string });
    expect(first.at(-1)).toMatchObject({ kind: "tree_head", trigger: "rotate-age" });
    expect(check(dir).problem).toBeNull();
  });
});

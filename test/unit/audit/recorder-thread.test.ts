/**
 * The flight recorder on its own thread (audit/recorder-thread.ts + recorder-worker.ts): records
 * are sealed in the order they were made and the log verifies; audit.file's copy gets the same
 * lines; with fsync always a record is on disk when record() returns; a log that cannot be
 * written shows in failure() without a message round trip; a log that cannot be opened is an
 * error at start.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RecorderStartError, startRecorderThread, type ThreadOptions } from "../../../src/audit/recorder-thread.ts";
import { loadSigningKey } from "../../../src/audit/signing-key.ts";
import { verifyLog } from "../../../src/audit/verify.ts";

const root = mkdtempSync(join(tmpdir(), "sluice-recorder-thread-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const KEY = loadSigningKey({ home: join(root, "home"), create: true });
let n = 0;
const fresh = () => join(root, `case-${++n}`);
const rec = (i: number) => ({ time: "2025-01-01T00:00:00.000Z", kind: "http", agent: "a", host: `h${i}.example`, verdict: "allow", rule: "egress.allow-host", reason: "allowed", status: 200 });
const options = (dir: string, over: Partial<ThreadOptions> = {}): ThreadOptions => ({ dir, segmentBytes: 1 << 20, checkpointRecords: 1000, checkpointMs: 3_600_000, fsync: "interval", tickMs: 20, ...over });
const logLines = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n").filter(Boolean))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

describe("records through the recorder's thread", () => {
  test("are sealed in order across rotations and checkpoints, the copy gets the same lines, and the log verifies", async () => {
    const dir = fresh();
    const copy = join(root, `copy-${n}.jsonl`);
    const errors: string[] = [];
    const r = await startRecorderThread({ options: options(dir, { segmentBytes: 8192, checkpointRecords: 7 }), keyFile: KEY.path, copy, onError: (e) => errors.push(e) });
    expect(r.opened).toEqual({ resumedAt: 0, segment: "audit-000001.jsonl", repaired: null });
    for (let i = 0; i < 300; i++) r.record(rec(i) as never);
    r.checkpoint("test");
    for (let i = 300; i < 400; i++) r.recordLine(JSON.stringify(rec(i)));
    await r.close();
    expect(errors).toEqual([]);

    const lines = logLines(dir);
    const records = lines.filter((l) => l.kind === "http");
    expect(records.map((l) => l.host)).toEqual(Array.from({ length: 400 }, (_, i) => `h${i}.example`));
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i));
    expect(lines.some((l) => l.trigger === "test")).toBe(true);
    expect(lines.at(-1)).toMatchObject({ kind: "tree_head", trigger: "close" });
    expect(readdirSync(dir).filter((f) => f.endsWith(".jsonl")).length).toBeGreaterThan(1);
    // The copy is the records' sealed lines (tree heads are the log's own).
    const copied = readFileSync(copy, "utf8").trimEnd().split("\n");
    expect(copied).toEqual(lines.filter((l) => l.kind === "http").map((l) => JSON.stringify(l)));
    const report = verifyLog({ dir, publicKey: KEY.publicKey });
    expect(report.problem).toBeNull();
    expect(report.records).toBe(lines.length);
  });

  test("fsync always: each record is in the segment when record() returns", async () => {
    const dir = fresh();
    const r = await startRecorderThread({ options: options(dir, { fsync: "always", tickMs: 60_000 }), keyFile: KEY.path, copy: "off", onError: () => {} });
    for (let i = 0; i < 20; i++) {
      r.record(rec(i) as never);
      expect(readFileSync(join(dir, "audit-000001.jsonl"), "utf8")).toContain(`"host":"h${i}.example"`);
    }
    expect(r.failure()).toBeNull();
    await r.close();
  });

  test("a disk that refuses writes shows in failure(), and the errors reach the caller", async () => {
    const dir = fresh();
    const errors: string[] = [];
    const r = await startRecorderThread({ options: options(dir, { segmentBytes: 4096 }), keyFile: KEY.path, copy: "off", onError: (e) => errors.push(e) });
    // The next segment is /dev/full: every write to it fails with ENOSPC, as on a full disk.
    symlinkSync("/dev/full", join(dir, "audit-000002.jsonl"));
    let i = 0;
    await until(() => {
      for (let k = 0; k < 20; k++) r.record(rec(i++) as never);
      return r.failure() !== null;
    }, "failure()");
    // The flag is shared memory; the error's text comes by message, a moment later.
    await until(() => r.failure()?.error.startsWith("ENOSPC") === true && errors.some((e) => e.startsWith("ENOSPC")), "the error's text");
    await r.close();
  });

  test("a log that cannot be opened is an error at start, with openRecorder's message", async () => {
    const dir = fresh();
    const locked = startRecorderThread({ options: options(dir), keyFile: KEY.path, copy: "off", onError: () => {} });
    const first = await locked;
    // A second writer on the same directory: refused, naming the live process.
    const second = startRecorderThread({ options: options(dir), keyFile: KEY.path, copy: "off", onError: () => {} });
    await expect(second).rejects.toThrow(RecorderStartError);
    await expect(second).rejects.toThrow(/another process \(pid \d+\) is writing the audit log/);
    await first.close();
    const badKey = join(root, "not-a-key.pem");
    writeFileSync(badKey, "nope", { mode: 0o600 });
    await expect(startRecorderThread({ options: options(fresh()), keyFile: badKey, copy: "off", onError: () => {} })).rejects.toThrow(/not a PEM private key/);
  });
});

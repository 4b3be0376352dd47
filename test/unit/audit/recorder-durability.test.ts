/**
 * The flight recorder when the disk says no, and when it is asked to sync each record: a write
 * that fails never throws into the caller, failure() says why (what audit.on_failure acts on),
 * and with fsync always an appended record is in the file when append returns.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRecorder } from "../../../src/audit/recorder.ts";
import { loadSigningKey } from "../../../src/audit/signing-key.ts";

const root = mkdtempSync(join(tmpdir(), "sluice-recorder-durability-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const KEY = loadSigningKey({ home: join(root, "home"), create: true });
let n = 0;
const fresh = () => join(root, `case-${++n}`);
const rec = (i: number) => ({ time: "2025-01-01T00:00:00.000Z", kind: "http", agent: "a", host: `h${i}.example`, verdict: "allow", rule: "egress.allow-host", reason: "allowed", status: 200 });

describe("fsync", () => {
  test("always: each record is in the segment when append returns", () => {
    const dir = fresh();
    const r = openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 1000, checkpointMs: 3_600_000, fsync: "always", tickMs: 60_000 });
    for (let i = 0; i < 20; i++) {
      const line = r.append(rec(i));
      expect(readFileSync(join(dir, "audit-000001.jsonl"), "utf8").endsWith(`${line}\n`)).toBe(true);
    }
    expect(r.failure()).toBeNull();
    r.close();
  });

  test("interval: records are batched (not yet in the file) until the tick", () => {
    const dir = fresh();
    const r = openRecorder({ dir, key: KEY, segmentBytes: 1 << 20, checkpointRecords: 1000, checkpointMs: 3_600_000, fsync: "interval", tickMs: 60_000 });
    const line = r.append(rec(0));
    expect(readFileSync(join(dir, "audit-000001.jsonl"), "utf8")).not.toContain(line);
    r.close();
    expect(readFileSync(join(dir, "audit-000001.jsonl"), "utf8")).toContain(line);
  });
});

describe("a disk that refuses writes", () => {
  test("failure() names the error; append keeps working in memory and does not rotate past the failure", () => {
    const dir = fresh();
    const r = openRecorder({ dir, key: KEY, segmentBytes: 4096, checkpointRecords: 1000, checkpointMs: 3_600_000, fsync: "always", tickMs: 60_000 });
    // The next segment is /dev/full: every write to it fails with ENOSPC, as on a full disk.
    const next = join(dir, "audit-000002.jsonl");
    symlinkSync("/dev/full", next);
    try {
      let i = 0;
      while (r.failure() === null && i < 1000) r.append(rec(i++));
      const f = r.failure();
      expect(f?.error).toStartWith("ENOSPC");
      expect(Number.isNaN(Date.parse(f!.since))).toBe(false);
      // Still no throw into the request path, and no third segment while the second is unwritten.
      for (let j = 0; j < 50; j++) expect(() => r.append(rec(i + j))).not.toThrow();
      expect(r.failure()?.since).toBe(f!.since);
      expect(readdirSync(dir).filter((x) => x.endsWith(".jsonl")).sort()).toEqual(["audit-000001.jsonl", "audit-000002.jsonl"]);
      // The first segment ended with its rotation tree head, written before the failure.
      const first = readFileSync(join(dir, "audit-000001.jsonl"), "utf8").trimEnd().split("\n");
      expect(JSON.parse(first.at(-1)!)).toMatchObject({ kind: "tree_head", trigger: "rotate" });
      r.close();
    } finally {
      unlinkSync(next);
    }
  });
});

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createJsonlSink } from "../../../src/audit/sink.ts";
import type { AuditRecord, AuditSink } from "../../../src/core/types.ts";

let dir = "";
let n = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sluice-sink-test-"));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const file = () => join(dir, `audit-${++n}.jsonl`);

function rec(i: number, extra: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: `2025-01-01T00:00:${String(i % 60).padStart(2, "0")}.000Z`,
    kind: "http",
    agent: "anonymous",
    method: "GET",
    host: `h${i}.example`,
    port: 80,
    path: "/",
    verdict: i % 2 === 0 ? "allow" : "block",
    rule: i % 2 === 0 ? "egress.allow-host" : "egress.not-allowed",
    reason: i % 2 === 0 ? "allowlisted" : "not_allowlisted",
    ...extra,
  };
}

function readLines(path: string): unknown[] {
  const text = readFileSync(path, "utf8");
  if (text === "") return [];
  expect(text.endsWith("\n")).toBe(true);
  return text
    .slice(0, -1)
    .split("\n")
    .map((l) => JSON.parse(l) as unknown);
}

describe("createJsonlSink", () => {
  test("writes one JSON line per record, in order, by close()", async () => {
    const path = file();
    const sink = createJsonlSink({ file: path, flushMs: 60_000 });
    const records = Array.from({ length: 5 }, (_, i) => rec(i));
    for (const r of records) sink.record(r);
    await sink.close?.();
    expect(readLines(path)).toEqual(records);
  });

  test("creates the file with mode 0600", async () => {
    const path = file();
    const sink = createJsonlSink({ file: path, flushMs: 60_000 });
    await sink.close?.();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test("appends to an existing file and keeps what was there", async () => {
    const path = file();
    const before = rec(100, { kind: "lifecycle", verdict: "allow" });
    writeFileSync(path, `${JSON.stringify(before)}\n`, { mode: 0o600 });
    const first = createJsonlSink({ file: path, flushMs: 60_000 });
    first.record(rec(1));
    await first.close?.();
    const second = createJsonlSink({ file: path, flushMs: 60_000 });
    second.record(rec(2));
    second.record(rec(3));
    await second.close?.();
    expect(readLines(path)).toEqual([before, rec(1), rec(2), rec(3)]);
  });

  test("a batch over 64 KiB is written before close()", async () => {
    const path = file();
    const sink = createJsonlSink({ file: path, flushMs: 60_000 });
    const big = "x".repeat(1024);
    let i = 0;
    while (statSync(path).size === 0 && i < 200) sink.record(rec(i++, { detail: big }));
    expect(i).toBeLessThan(200);
    expect(statSync(path).size).toBeGreaterThanOrEqual(64 * 1024);
    await sink.close?.();
    expect(readLines(path)).toHaveLength(i);
  });

  test("records are flushed on the timer without close()", async () => {
    const path = file();
    const sink = createJsonlSink({ file: path, flushMs: 5 });
    sink.record(rec(7));
    const deadline = Date.now() + 5000;
    while (statSync(path).size === 0 && Date.now() < deadline) await Bun.sleep(5);
    expect(readLines(path)).toEqual([rec(7)]);
    await sink.close?.();
  });

  test("non-ASCII text round-trips as UTF-8", async () => {
    const path = file();
    const sink = createJsonlSink({ file: path, flushMs: 60_000 });
    const r = rec(1, { detail: "bücher.example — ✓ 🔒", host: "xn--bcher-kva.example" });
    sink.record(r);
    await sink.close?.();
    expect(readLines(path)).toEqual([r]);
  });
});

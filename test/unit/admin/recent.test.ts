import { describe, expect, test } from "bun:test";
import { createRecentDecisions } from "../../../src/admin/recent.ts";
import type { AuditRecord } from "../../../src/core/types.ts";

function rec(i: number): AuditRecord {
  return { time: `t${i}`, kind: "http", agent: "a", verdict: "allow", rule: `r${i}`, reason: "allowed" };
}

const rules = (list: AuditRecord[]) => list.map((r) => r.rule);

describe("createRecentDecisions", () => {
  test("empty ring lists nothing", () => {
    expect(createRecentDecisions(3).list(10)).toEqual([]);
  });

  test("newest first, limited", () => {
    const recent = createRecentDecisions(5);
    for (let i = 1; i <= 3; i++) recent.record(rec(i));
    expect(rules(recent.list(10))).toEqual(["r3", "r2", "r1"]);
    expect(rules(recent.list(2))).toEqual(["r3", "r2"]);
    expect(recent.list(0)).toEqual([]);
    expect(recent.list(-1)).toEqual([]);
  });

  test("keeps only the last `capacity` records after wrapping", () => {
    const recent = createRecentDecisions(3);
    for (let i = 1; i <= 8; i++) recent.record(rec(i));
    expect(rules(recent.list(100))).toEqual(["r8", "r7", "r6"]);
    recent.record(rec(9));
    expect(rules(recent.list(100))).toEqual(["r9", "r8", "r7"]);
    expect(rules(recent.list(1))).toEqual(["r9"]);
  });

  test("exactly full", () => {
    const recent = createRecentDecisions(4);
    for (let i = 1; i <= 4; i++) recent.record(rec(i));
    expect(rules(recent.list(4))).toEqual(["r4", "r3", "r2", "r1"]);
  });

  test("default capacity is 1000", () => {
    const recent = createRecentDecisions();
    expect(recent.capacity).toBe(1000);
    for (let i = 0; i < 1500; i++) recent.record(rec(i));
    const all = recent.list(5000);
    expect(all).toHaveLength(1000);
    expect(all[0]?.rule).toBe("r1499");
    expect(all[999]?.rule).toBe("r500");
  });

  test("record works detached, as an AuditSink method", () => {
    const recent = createRecentDecisions(2);
    const sink = { record: recent.record };
    sink.record(rec(1));
    expect(rules(recent.list(1))).toEqual(["r1"]);
  });

  test("rejects a capacity that is not a positive integer", () => {
    expect(() => createRecentDecisions(0)).toThrow(RangeError);
    expect(() => createRecentDecisions(1.5)).toThrow(RangeError);
    expect(() => createRecentDecisions(Number.NaN)).toThrow(RangeError);
  });
});

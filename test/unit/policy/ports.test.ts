import { describe, expect, test } from "bun:test";
import { compilePortSet } from "../../../src/policy/ports.ts";

describe("compilePortSet", () => {
  const set = compilePortSet([
    [80, 80],
    [443, 443],
    [8000, 8999],
  ]);

  const rows: [port: number, has: boolean][] = [
    [80, true],
    [443, true],
    [8000, true],
    [8500, true],
    [8999, true],
    [79, false],
    [81, false],
    [442, false],
    [7999, false],
    [9000, false],
    [0, false],
    [65535, false],
    [-1, false],
    [80.5, false],
  ];
  test.each(rows)("port %p -> %p", (port, has) => {
    expect(set.has(port)).toBe(has);
  });

  test("text lists single ports and ranges in order", () => {
    expect(set.text).toBe("80,443,8000-8999");
  });

  test("an empty set has nothing", () => {
    const empty = compilePortSet([]);
    expect(empty.has(80)).toBe(false);
    expect(empty.text).toBe("");
  });

  test("the full range", () => {
    const all = compilePortSet([[1, 65535]]);
    expect(all.has(1)).toBe(true);
    expect(all.has(65535)).toBe(true);
    expect(all.has(0)).toBe(false);
    expect(all.text).toBe("1-65535");
  });
});

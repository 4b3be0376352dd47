import { describe, expect, test } from "bun:test";
import { createUpstreamPool } from "../../../src/proxy/pool.ts";

function setup(max = 2, idleMs = 1000) {
  let now = 0;
  const closed: string[] = [];
  const pool = createUpstreamPool<string>({ maxPerKey: () => max, idleTimeoutMs: () => idleMs, close: (c) => closed.push(c), now: () => now });
  return { pool, closed, advance: (ms: number) => (now += ms) };
}

describe("createUpstreamPool", () => {
  test("take returns the most recently returned connection for the key, then null", () => {
    const { pool } = setup();
    pool.put("a|80", "c1");
    pool.put("a|80", "c2");
    pool.put("b|80", "c3");
    expect(pool.size()).toBe(3);
    expect(pool.take("a|80")).toBe("c2");
    expect(pool.take("a|80")).toBe("c1");
    expect(pool.take("a|80")).toBeNull();
    expect(pool.take("b|80")).toBe("c3");
    expect(pool.size()).toBe(0);
  });

  test("a key holds at most maxPerKey idle connections; extras are closed", () => {
    const { pool, closed } = setup(2);
    for (const c of ["c1", "c2", "c3"]) pool.put("k", c);
    expect(closed).toEqual(["c3"]);
    expect(pool.size()).toBe(2);
  });

  test("take skips and closes connections idle past the timeout", () => {
    const { pool, closed, advance } = setup(4, 1000);
    pool.put("k", "old");
    advance(600);
    pool.put("k", "new");
    advance(600);
    expect(pool.take("k")).toBe("new");
    expect(pool.take("k")).toBeNull();
    expect(closed).toEqual(["old"]);
  });

  test("sweep closes expired connections oldest first and keeps fresh ones", () => {
    const { pool, closed, advance } = setup(4, 1000);
    pool.put("k", "c1");
    pool.put("k", "c2");
    advance(800);
    pool.put("k", "c3");
    advance(300);
    pool.sweep();
    expect(closed).toEqual(["c1", "c2"]);
    expect(pool.size()).toBe(1);
    expect(pool.take("k")).toBe("c3");
  });

  test("remove takes out one connection; clear closes all", () => {
    const { pool, closed } = setup(4);
    pool.put("k", "c1");
    pool.put("k", "c2");
    pool.put("j", "c3");
    pool.remove("k", "c1");
    pool.remove("k", "absent");
    expect(pool.size()).toBe(2);
    pool.clear();
    expect(closed.sort()).toEqual(["c2", "c3"]);
    expect(pool.size()).toBe(0);
    expect(pool.take("k")).toBeNull();
  });
});

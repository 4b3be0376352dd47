import { describe, expect, test } from "bun:test";
import { svcbHints } from "../../../src/dns/svcb.ts";

/** RDATA: priority, target ".", then params as [key, bytes]. */
function rdata(params: [number, number[]][]): Uint8Array {
  const out: number[] = [0, 1, 0];
  for (const [key, bytes] of params) out.push(key >> 8, key & 0xff, bytes.length >> 8, bytes.length & 0xff, ...bytes);
  return Uint8Array.from(out);
}

describe("svcbHints", () => {
  test("reads ipv4hint and ipv6hint, skipping other params", () => {
    const v6 = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1];
    const r = svcbHints(rdata([[1, [2, 0x68, 0x32]], [4, [127, 0, 0, 1, 10, 0, 0, 1]], [6, v6]]));
    expect(r).toEqual({ ok: true, addresses: ["127.0.0.1", "10.0.0.1", "2001:db8::1"] });
  });

  test("a target name is skipped", () => {
    const out = Uint8Array.from([0, 1, 3, 0x63, 0x64, 0x6e, 0, 0, 4, 0, 4, 1, 2, 3, 4]);
    expect(svcbHints(out)).toEqual({ ok: true, addresses: ["1.2.3.4"] });
  });

  test("malformed: a param running past the end, or a hint of the wrong size", () => {
    expect(svcbHints(Uint8Array.from([0, 1, 0, 0, 4, 0, 8, 1, 2, 3, 4])).ok).toBe(false);
    expect(svcbHints(rdata([[4, [1, 2, 3]]])).ok).toBe(false);
  });
});

import { describe, expect, test } from "bun:test";
import { parseCounters, readJailRefusals, watchJailRefusals, type CounterReader } from "../../../src/jail/counters.ts";

/** `nft -j list counters` output for these counters (packets), as nftables 1.0 prints it. */
const listing = (table: string, counters: Record<string, number>) =>
  JSON.stringify({
    nftables: [{ metainfo: { version: "1.0.6", release_name: "Lester Gooch #5", json_schema_version: 1 } }, ...Object.entries(counters).map(([name, packets], handle) => ({ counter: { family: "inet", name, table, handle, packets, bytes: packets * 60 } }))],
  });

describe("parseCounters", () => {
  test("reads the refusal counters by name and ignores anything else", () => {
    expect(parseCounters(listing("sluice_ab12", { refused_udp: 3, refused_dot: 0, someone_elses: 9 }))).toEqual({ refused_udp: 3, refused_dot: 0 });
    expect(parseCounters('{"nftables":[]}')).toEqual({});
    expect(() => parseCounters("not json")).toThrow();
  });
});

describe("watchJailRefusals", () => {
  test("reports what grew since the last look, from both tables, and takes a last look on stop", async () => {
    const ns: Record<string, number> = { refused_udp: 0, refused_dot: 0, refused_ipv6: 0 };
    const host: Record<string, number> = { dropped: 0 };
    const asked: string[][] = [];
    const read: CounterReader = async (argv) => {
      asked.push([...argv]);
      return argv[0] === "ip" ? listing("sluice_ab12", ns) : listing("sluice_ab12", host);
    };
    const seen: [string, number][] = [];
    const w = watchJailRefusals({ id: "ab12", everyMs: 5, read, onRefused: (r, n) => seen.push([r, n]) });
    ns.refused_udp = 2;
    await Bun.sleep(40);
    ns.refused_udp = 5;
    ns.refused_dot = 1;
    host.dropped = 4;
    await w.stop();
    // Summed per counter: exactly the final totals, each increase reported once.
    const totals: Record<string, number> = {};
    for (const [r, n] of seen) totals[r] = (totals[r] ?? 0) + n;
    expect(totals).toEqual({ refused_udp: 5, refused_dot: 1, dropped: 4 });
    expect(seen.every(([, n]) => n > 0)).toBe(true);
    expect(asked).toContainEqual(["ip", "netns", "exec", "sluice-ab12", "nft", "-j", "list", "counters", "table", "inet", "sluice_ab12"]);
    expect(asked).toContainEqual(["nft", "-j", "list", "counters", "table", "inet", "sluice_ab12"]);
  });

  test("a reader that throws is reported and tried again; stop still resolves", async () => {
    const errors: string[] = [];
    let calls = 0;
    const read: CounterReader = async () => {
      calls++;
      throw new Error("spawn failed: EMFILE");
    };
    const w = watchJailRefusals({ id: "ab12", everyMs: 5, read, onRefused: () => {}, onError: (e) => errors.push(e) });
    await Bun.sleep(30);
    await w.stop();
    expect(calls).toBeGreaterThan(2);
    expect(errors[0]).toBe("spawn failed: EMFILE");
  });

  test("a table that is gone or output that is not JSON reports nothing; a bad id is refused", async () => {
    expect(await readJailRefusals("ab12", async () => null)).toEqual({});
    // Only counters that counted something, summed over both tables.
    expect(await readJailRefusals("ab12", async (argv) => (argv[0] === "ip" ? listing("sluice_ab12", { refused_udp: 2, refused_dot: 0 }) : listing("sluice_ab12", { dropped: 1 })))).toEqual({ refused_udp: 2, dropped: 1 });
    expect(await readJailRefusals("ab12", async () => "garbage")).toEqual({});
    expect(() => watchJailRefusals({ id: "ab; rm -rf /", everyMs: 5, onRefused: () => {} })).toThrow(/bad jail id/);
  });
});

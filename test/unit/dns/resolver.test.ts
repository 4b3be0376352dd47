import { describe, expect, test } from "bun:test";
import type { RecordType } from "dns-packet";
import { createHostsTable, parseHosts } from "../../../src/dns/hosts.ts";
import { cacheTtl, createDnsResolver, followChain } from "../../../src/dns/resolver.ts";
import type { UpstreamClient } from "../../../src/dns/upstream.ts";
import { RCODE, type Answer, type UpstreamResponse } from "../../../src/dns/wire.ts";
import { parseResolvConf } from "../../../src/config/resolv-conf.ts";
import type { DnsSettings } from "../../../src/policy/policy.ts";

const SETTINGS: DnsSettings = {
  listen: null,
  upstreams: [{ hostname: "127.0.0.1", port: 9 }],
  timeoutMs: 100,
  attempts: 1,
  minTtlMs: 0,
  maxTtlMs: 3_600_000,
  negativeTtlMs: 300_000,
  cacheSize: 100,
  ipv6: true,
  internalDomains: null,
  exfil: { enabled: false, allowDomains: [] },
};

const a = (name: string, data: string, ttl = 60): Answer => ({ name, type: "A", ttl, class: "IN", data });
const aaaa = (name: string, data: string, ttl = 60): Answer => ({ name, type: "AAAA", ttl, class: "IN", data });
const cname = (name: string, data: string, ttl = 60): Answer => ({ name, type: "CNAME", ttl, class: "IN", data });
const soa = (minimum: number, ttl = 3600): Answer => ({
  name: "example",
  type: "SOA",
  ttl,
  class: "IN",
  data: { mname: "ns.example", rname: "h.example", serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
});

/** An upstream answering from a table; counts exchanges; an optional gate delays answers. */
type Spec = Partial<UpstreamResponse> | Error | { hang: true };

function fakeUpstream(table: Record<string, Spec>) {
  const calls: string[] = [];
  let gate: Promise<void> = Promise.resolve();
  const client: UpstreamClient = {
    async exchange(name: string, type: RecordType) {
      calls.push(`${name}|${type}`);
      await gate;
      const spec = table[`${name}|${type}`] ?? table[name];
      if (spec instanceof Error) throw spec;
      if (spec && "hang" in spec) return new Promise<UpstreamResponse>(() => {});
      return { id: 1, rcode: RCODE.NOERROR, truncated: false, question: { name, type }, answers: [], authorities: [], ...(spec ?? { rcode: RCODE.NXDOMAIN }) };
    },
    close() {},
  };
  return { client, calls, hold: (p: Promise<void>) => (gate = p) };
}

function setup(table: Record<string, Spec>, settings: Partial<DnsSettings> = {}, hostsText = "") {
  let now = 1_000_000;
  const up = fakeUpstream(table);
  const hosts = createHostsTable(parseHosts(hostsText));
  const resolver = createDnsResolver({ settings: () => ({ ...SETTINGS, ...settings }), upstream: up.client, hosts: () => hosts, now: () => now });
  return { resolver, up, advance: (ms: number) => (now += ms) };
}

describe("createDnsResolver", () => {
  test("answers are cached for their TTL, with TTLs aged on the way out", async () => {
    const { resolver, up, advance } = setup({ "a.example|A": { answers: [a("a.example", "1.2.3.4", 30)] } });
    expect((await resolver.query("a.example", "A")).source).toBe("upstream");
    advance(10_000);
    const cached = await resolver.query("A.EXAMPLE.", "A");
    expect(cached.source).toBe("cache");
    expect(cached.answers[0]).toMatchObject({ data: "1.2.3.4", ttl: 20 });
    advance(21_000);
    expect((await resolver.query("a.example", "A")).source).toBe("upstream");
    expect(up.calls).toEqual(["a.example|A", "a.example|A"]);
  });

  test("min_ttl and max_ttl clamp how long an answer stays", async () => {
    const { resolver, up, advance } = setup({ "z.example|A": { answers: [a("z.example", "1.2.3.4", 0)] } }, { minTtlMs: 5000 });
    await resolver.query("z.example", "A");
    advance(4000);
    await resolver.query("z.example", "A");
    expect(up.calls.length).toBe(1);
    advance(2000);
    await resolver.query("z.example", "A");
    expect(up.calls.length).toBe(2);
    expect(cacheTtl({ rcode: 0, answers: [a("x", "1.1.1.1", 999_999)], authorities: [] }, { minTtlMs: 0, maxTtlMs: 60_000, negativeTtlMs: 1 })).toBe(60_000);
  });

  test("NXDOMAIN is cached for min(SOA TTL, SOA minimum), capped by negative_ttl (RFC 2308)", async () => {
    const { resolver, up, advance } = setup({ "gone.example|A": { rcode: RCODE.NXDOMAIN, authorities: [soa(20)] } });
    expect((await resolver.query("gone.example", "A")).rcode).toBe(RCODE.NXDOMAIN);
    advance(19_000);
    expect((await resolver.query("gone.example", "A")).source).toBe("cache");
    advance(2000);
    expect((await resolver.query("gone.example", "A")).source).toBe("upstream");
    expect(up.calls.length).toBe(2);
    expect(cacheTtl({ rcode: RCODE.NXDOMAIN, answers: [], authorities: [soa(86_400, 86_400)] }, SETTINGS)).toBe(300_000);
    expect(cacheTtl({ rcode: RCODE.NXDOMAIN, answers: [], authorities: [] }, SETTINGS)).toBe(0);
    expect(cacheTtl({ rcode: RCODE.SERVFAIL, answers: [], authorities: [soa(60)] }, SETTINGS)).toBe(0);
  });

  test("identical queries in flight share one upstream exchange", async () => {
    const { resolver, up } = setup({ "busy.example|A": { answers: [a("busy.example", "1.2.3.4")] } });
    let open: () => void = () => {};
    up.hold(new Promise<void>((r) => (open = r)));
    const all = Promise.all([resolver.query("busy.example", "A"), resolver.query("busy.example", "A"), resolver.query("busy.example", "A")]);
    open();
    const answers = await all;
    expect(answers.map((x) => x.answers[0]?.type === "A" && x.answers[0].data)).toEqual(["1.2.3.4", "1.2.3.4", "1.2.3.4"]);
    expect(up.calls).toEqual(["busy.example|A"]);
  });

  test("resolve follows CNAME chains inside an answer and across queries, bounded", async () => {
    const { resolver } = setup({
      "www.example|A": { answers: [cname("www.example", "edge.cdn.example"), a("edge.cdn.example", "5.6.7.8")] },
      "www.example|AAAA": { answers: [cname("www.example", "edge.cdn.example")] },
      "edge.cdn.example|AAAA": { answers: [aaaa("edge.cdn.example", "2001:4860::1")] },
      "loop.example|A": { answers: [cname("loop.example", "loop2.example")] },
      "loop2.example|A": { answers: [cname("loop2.example", "loop.example")] },
    }, { ipv6: true });
    expect(await resolver.resolve("www.example")).toEqual(["5.6.7.8", "2001:4860::1"]);
    await expect(resolver.resolve("loop.example")).rejects.toThrow(/CNAME chain/);
    expect(followChain("a", [cname("a", "b"), cname("b", "c"), a("c", "9.9.9.9"), a("x", "1.1.1.1")])).toEqual({ target: "c", addresses: ["9.9.9.9"] });
  });

  test("a silent AAAA does not hold up resolve once A has answered (RFC 8305 resolution delay)", async () => {
    const { resolver } = setup({ "slow6.example|A": { answers: [a("slow6.example", "1.2.3.4")] }, "slow6.example|AAAA": { hang: true } });
    // Without the resolution delay this would wait for the AAAA forever, and "hung" would win.
    const out = await Promise.race([resolver.resolve("slow6.example"), Bun.sleep(5000).then(() => "hung")]);
    expect(out).toEqual(["1.2.3.4"]);
  });

  test("resolve fails with dns_failure on NXDOMAIN and on upstream failure", async () => {
    const { resolver } = setup({ "down.example": new Error("timeout") }, { ipv6: false });
    await expect(resolver.resolve("missing.example")).rejects.toMatchObject({ code: "dns_failure" });
    await expect(resolver.resolve("down.example")).rejects.toThrow(/timeout/);
    expect(resolver.stats().upstreamFailures).toBe(1);
  });

  test("localhost and hosts-file names are answered locally, never asked upstream", async () => {
    const { resolver, up } = setup({}, {}, "10.9.8.7 intranet.corp intranet\n# comment\nfd00::7 intranet.corp\n");
    expect(await resolver.resolve("localhost")).toEqual(["127.0.0.1", "::1"]);
    expect(await resolver.resolve("api.localhost")).toEqual(["127.0.0.1", "::1"]);
    expect(await resolver.resolve("intranet.corp")).toEqual(["10.9.8.7", "fd00::7"]);
    expect((await resolver.query("intranet", "A")).source).toBe("local");
    expect(up.calls).toEqual([]);
  });

  test("the cache is bounded and clear() empties it", async () => {
    const table: Record<string, Partial<UpstreamResponse>> = {};
    for (let i = 0; i < 5; i++) table[`n${i}.example|A`] = { answers: [a(`n${i}.example`, `1.1.1.${i}`)] };
    const { resolver, up } = setup(table, { cacheSize: 2 });
    for (let i = 0; i < 5; i++) await resolver.query(`n${i}.example`, "A");
    await resolver.query("n4.example", "A");
    await resolver.query("n0.example", "A");
    expect(up.calls.filter((c) => c === "n0.example|A").length).toBe(2);
    expect(up.calls.filter((c) => c === "n4.example|A").length).toBe(1);
    resolver.clear();
    await resolver.query("n4.example", "A");
    expect(up.calls.filter((c) => c === "n4.example|A").length).toBe(2);
  });
});

describe("parseResolvConf", () => {
  test("reads nameserver lines, IPv4 and IPv6, ignores comments and junk", () => {
    expect(parseResolvConf("# x\nnameserver 10.255.255.53\nsearch a.b\nnameserver fe80::1%eth0 ; c\nnameserver bogus\noptions ndots:2\n")).toEqual([
      { hostname: "10.255.255.53", port: 53 },
      { hostname: "fe80::1", port: 53 },
    ]);
  });
});

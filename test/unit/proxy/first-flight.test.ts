/**
 * What a redirected connection is, from its first bytes (src/proxy/first-flight.ts): a real
 * client's TLS ClientHello and its server name, a plain HTTP request and its Host (port, case,
 * brackets and a trailing dot taken off), incomplete input waiting, and everything else refused
 * with a reason: the transparent listener checks the name against the address dialled.
 */
import { describe, expect, test } from "bun:test";
import { connect } from "node:tls";
import { classifyFirstFlight } from "../../../src/proxy/first-flight.ts";
import { normaliseCgroupPath, renderHostModeRules, renderHostRules } from "../../../src/jail/render.ts";

const MAX = 64 * 1024;
const http = (head: string) => new TextEncoder().encode(head);

/** The first flight of node:tls asking for `servername`, captured on a loopback listener. */
async function hello(servername: string | undefined): Promise<Uint8Array> {
  let got = new Uint8Array(0);
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (_s, d) => void (got = new Uint8Array([...got, ...d])) } });
  const sock = connect({ host: "127.0.0.1", port: listener.port, ...(servername ? { servername } : {}), rejectUnauthorized: false });
  sock.on("error", () => {});
  try {
    for (let i = 0; i < 250 && classifyFirstFlight(got, MAX).kind === "incomplete"; i++) await Bun.sleep(20);
    return got;
  } finally {
    sock.destroy();
    listener.stop(true);
  }
}

describe("classifyFirstFlight", () => {
  test("TLS: the ClientHello's server name; none when the client sent none; a cut hello waits", async () => {
    const h = await hello("Web.Test");
    expect(classifyFirstFlight(h, MAX)).toEqual({ kind: "tls", sni: "web.test" });
    expect(classifyFirstFlight(h.subarray(0, 40), MAX)).toEqual({ kind: "incomplete" });
    expect(classifyFirstFlight(await hello(undefined), MAX)).toEqual({ kind: "tls", sni: null });
  });

  test("HTTP: the Host, lower case, without its port, brackets or trailing dot", () => {
    expect(classifyFirstFlight(http("GET / HTTP/1.1\r\nHost: Web.Test:8080\r\n\r\n"), MAX)).toEqual({ kind: "http", host: "web.test" });
    expect(classifyFirstFlight(http("POST /x HTTP/1.1\r\nhost: web.test.\r\ncontent-length: 0\r\n\r\n"), MAX)).toEqual({ kind: "http", host: "web.test" });
    expect(classifyFirstFlight(http("GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n"), MAX)).toEqual({ kind: "http", host: "2001:db8::1" });
  });

  test("HTTP without exactly one usable Host gives no name (the listener refuses it); a head in pieces waits", () => {
    expect(classifyFirstFlight(http("GET / HTTP/1.1\r\n\r\n"), MAX)).toEqual({ kind: "http", host: null });
    expect(classifyFirstFlight(http("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"), MAX)).toEqual({ kind: "http", host: null });
    expect(classifyFirstFlight(http("GET / HTTP/1.1\r\nHost: a test\r\n\r\n"), MAX)).toEqual({ kind: "http", host: null });
    expect(classifyFirstFlight(http("GET / HTTP/1.1\r\nHost: web.te"), MAX)).toEqual({ kind: "incomplete" });
  });

  test("anything else is refused with a reason: other protocols, broken HTTP, a head past the limit", () => {
    expect(classifyFirstFlight(http("SSH-2.0-OpenSSH_9.2\r\n"), MAX)).toMatchObject({ kind: "other", reason: "neither TLS nor HTTP" });
    expect(classifyFirstFlight(new Uint8Array([0x00, 0x01, 0x02]), MAX)).toMatchObject({ kind: "other" });
    expect(classifyFirstFlight(http("GET / HTTP/2.0\r\nHost: a.test\r\n\r\n"), MAX)).toMatchObject({ kind: "other", reason: expect.stringContaining("not an HTTP request") });
    expect(classifyFirstFlight(http(`GET / HTTP/1.1\r\nX: ${"a".repeat(200)}`), 100)).toMatchObject({ kind: "other", reason: "no HTTP request head in the first 100 bytes" });
    expect(classifyFirstFlight(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 0, 0]), MAX)).toMatchObject({ kind: "other", reason: expect.stringContaining("not a TLS ClientHello") });
    expect(classifyFirstFlight(new Uint8Array(0), MAX)).toEqual({ kind: "incomplete" });
  });
});

describe("the nftables templates take only checked values", () => {
  test("names, addresses, ports and uids out of shape are refused before rendering", () => {
    const ok = { table: "sluice_abcdef", vethHost: "slabcdefh", hostIp: "10.200.0.1", proxyPort: 1, transparentPort: 2, dnsPort: 3 };
    expect(renderHostRules(ok)).toContain('iifname "slabcdefh"');
    expect(renderHostRules(ok, true)).toContain("dnat ip to 127.0.0.1:2");
    expect(() => renderHostRules({ ...ok, table: "other" })).toThrow(/table name/);
    expect(() => renderHostRules({ ...ok, hostIp: "10.200.0.1; flush ruleset" })).toThrow(/IPv4/);
    expect(() => renderHostRules({ ...ok, dnsPort: 70000 })).toThrow(/port/);
    expect(renderHostModeRules({ uid: 1000, proxyPort: 1, transparentPort: 2, dnsPort: 3 })).toContain("meta skuid 1000 goto agent_nat");
    expect(() => renderHostModeRules({ uid: 0, proxyPort: 1, transparentPort: 2, dnsPort: 3 })).toThrow(/never redirects root/);
    const ports = { proxyPort: 1, transparentPort: 2, dnsPort: 3 };
    expect(renderHostModeRules({ cgroup: "agents.slice/team-a.slice", ...ports })).toContain('socket cgroupv2 level 2 "agents.slice/team-a.slice" goto agent_nat');
    expect(renderHostModeRules({ cgroup: "/sys/fs/cgroup/unified/agents.slice/", ...ports })).toContain('socket cgroupv2 level 1 "agents.slice" goto agent_filter');
    for (const bad of ["", "/", "../etc", "a/../b", "a/./b", 'a" accept; "', "a b", "a\\b", "x/".repeat(40)]) {
      expect(normaliseCgroupPath(bad)).toBeNull();
      expect(() => renderHostModeRules({ cgroup: bad, ...ports })).toThrow(/bad cgroup path/);
    }
  });
});

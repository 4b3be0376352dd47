/**
 * Address classification end to end: loopback in every spelling, private, CGNAT, ULA and cloud
 * metadata addresses are refused after resolution (`net.*` rules), trusted_cidrs opens only what
 * it names, and sluice never proxies to its own listeners.
 *
 * Network rule: loopback targets run against a normal sluice. Every other target runs with
 * sluice and curl inside a fresh network namespace that has only a loopback interface (see
 * test/helpers/netns.ts), so a regression cannot send a packet off the machine. Those cases need
 * root and are skipped, with the reason printed, elsewhere.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { curlThrough, parseRawResponse, rawExchange, startEchoOrigin, stopSluices, type EchoOrigin } from "../helpers/origins.ts";
import { createNetns, netnsSupport, startSluiceInNetns, type Netns, type NetnsSluice } from "../helpers/netns.ts";
import { startSluice, type Running } from "../helpers/sluice.ts";

const T = 60_000;
const PORTS = `ports: { http: ["1-65535"], connect: ["1-65535"] }`;
const untrustedConfig = `version: 1
proxy: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
egress:
  ${PORTS}
`;

let untrusted: Running;
let trusted: Running;
let echo: EchoOrigin;

beforeAll(async () => {
  echo = await startEchoOrigin();
  untrusted = await startSluice(untrustedConfig);
  trusted = await startSluice(`version: 1
proxy: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
egress:
  ${PORTS}
  trusted_cidrs: [127.0.0.1/32]
`);
});

afterAll(async () => {
  await stopSluices(untrusted, trusted);
  await echo?.stop();
});

/** Sends one absolute-form request with the target spelled exactly as given (curl would normalise it). */
async function rawGet(proxyPort: number, target: string) {
  const r = await rawExchange(proxyPort, [`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
  const res = parseRawResponse(r.data);
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(res?.body.toString() ?? "") as Record<string, unknown>;
  } catch {
    // Not JSON: the assertions below will say what came back.
  }
  return { status: res?.status ?? null, rule: res?.headers.get("x-sluice-rule") ?? null, verdict: res?.headers.get("x-sluice-verdict") ?? null, body };
}

describe("loopback targets (no namespace needed)", () => {
  test("127.0.0.1 without trusted_cidrs is 403 net.private-address and the origin is not reached", async () => {
    const before = echo.requests.length;
    const r = await curlThrough(untrusted.proxyUrl, `${echo.url}/loopback`);
    expect(r.status).toBe(403);
    expect(r.headers.get("x-sluice-verdict")).toBe("block");
    expect(r.headers.get("x-sluice-rule")).toBe("net.private-address");
    expect(JSON.parse(r.body.toString())).toMatchObject({ error: "blocked by sluice", rule: "net.private-address", reason: "blocked_address" });
    const c = await curlThrough(untrusted.proxyUrl, `${echo.url}/loopback-tunnel`, ["--proxytunnel"]);
    expect(c.rawHeaders).toMatch(/^HTTP\/1\.1 403 /);
    expect(c.rawHeaders).toContain("x-sluice-rule: net.private-address");
    expect(echo.requests.length).toBe(before);
    const rec = await untrusted.waitForLine((l) => l.kind === "http" && l.path === "/loopback");
    expect(rec).toMatchObject({ verdict: "block", rule: "net.private-address", reason: "blocked_address", status: 403, host: "127.0.0.1" });
  }, T);

  test("other spellings of loopback are refused the same way", async () => {
    const before = echo.requests.length;
    const p = echo.port;
    const targets = [
      `http://2130706433:${p}/`,
      `http://0x7f.1:${p}/`,
      `http://0x7f000001:${p}/`,
      `http://0177.0.0.1:${p}/`,
      `http://127.1:${p}/`,
      `http://127.0.1:${p}/`,
      `http://127.255.255.254:${p}/`,
      `http://[::ffff:127.0.0.1]:${p}/`,
      `http://[::ffff:7f00:1]:${p}/`,
      `http://[::1]:${p}/`,
      `http://[0:0:0:0:0:0:0:1]:${p}/`,
      `http://localhost:${p}/`,
      `http://LOCALHOST.:${p}/`,
      `http://0.0.0.0:${p}/`,
      `http://0:${p}/`,
    ];
    const results = [];
    for (const t of targets) results.push({ target: t, ...(await rawGet(untrusted.proxyPort, t)) });
    for (const r of results) {
      expect({ target: r.target, status: r.status, verdict: r.verdict }).toEqual({ target: r.target, status: 403, verdict: "block" });
      expect(String(r.rule)).toMatch(/^net\./);
    }
    expect(echo.requests.length).toBe(before);
  }, T);

  test("a trusted 127.0.0.1/32 opens exactly that address, not the rest of loopback", async () => {
    expect((await curlThrough(trusted.proxyUrl, `${echo.url}/trusted-ok`)).status).toBe(200);
    // The same socket through another spelling is the same address, so it is trusted too.
    expect((await rawGet(trusted.proxyPort, `http://2130706433:${echo.port}/trusted-decimal`)).status).toBe(200);
    const other = await rawGet(trusted.proxyPort, `http://127.0.0.2:${echo.port}/`);
    expect(other.status).toBe(403);
    expect(other.rule).toBe("net.private-address");
    const v6 = await rawGet(trusted.proxyPort, `http://[::1]:${echo.port}/`);
    expect(v6.status).toBe(403);
  }, T);

  test("sluice's own admin and proxy ports are refused with net.self-address, even when trusted", async () => {
    for (const port of [trusted.adminPort, trusted.proxyPort]) {
      for (const host of ["127.0.0.1", "127.1", "2130706433", "[::ffff:127.0.0.1]"]) {
        const r = await rawGet(trusted.proxyPort, `http://${host}:${port}/healthz`);
        expect({ host, port, status: r.status, rule: r.rule }).toEqual({ host, port, status: 403, rule: "net.self-address" });
      }
      const tunnel = await rawExchange(trusted.proxyPort, [`CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`]);
      const res = parseRawResponse(tunnel.data);
      expect(res?.status).toBe(403);
      expect(res?.headers.get("x-sluice-rule")).toBe("net.self-address");
    }
    // The admin API behind it saw nothing that changes state: the kill switch is still off.
    const ks = await fetch(`${trusted.adminUrl}/v1/killswitch`, { headers: { authorization: `Bearer ${trusted.adminToken}` } });
    expect(await ks.json()).toEqual({ enabled: false });
  }, T);
});

const ns = netnsSupport();
if (!ns.ok) console.warn(`private-addresses.test.ts: skipping non-loopback targets: ${ns.reason}`);

describe("non-loopback targets, inside a loopback-only network namespace", () => {
  let netns: Netns | null = null;
  let inner: NetnsSluice | null = null;

  beforeAll(async () => {
    if (!ns.ok) return;
    // Names that resolve (from the namespace's own /etc/hosts, no DNS) to refused addresses.
    netns = createNetns({ hosts: { "intranet.slt.test": "10.1.2.3", "metadata.slt.test": "169.254.169.254", "ula.slt.test": "fd12:3456::1" } });
    inner = await startSluiceInNetns(netns, untrustedConfig);
  }, T);

  afterAll(async () => {
    await inner?.stop();
    netns?.destroy();
  });

  const through = (url: string, extra: string[] = []) => curlThrough(inner!.proxyUrl, url, extra, { prefix: netns!.prefix });

  test.skipIf(!ns.ok)("the namespace really has no way out", async () => {
    const links = await netns!.exec(["ip", "-o", "link", "show"]);
    expect(links.stdout.trim().split("\n").length).toBe(1);
    const routes = await netns!.exec(["ip", "route", "show"]);
    expect(routes.stdout.trim()).toBe("");
  }, T);

  test.skipIf(!ns.ok)("the metadata address is 403 net.metadata-address", async () => {
    const r = await through("http://169.254.169.254/latest/meta-data/");
    expect(r.status).toBe(403);
    expect(r.headers.get("x-sluice-verdict")).toBe("block");
    expect(r.headers.get("x-sluice-rule")).toBe("net.metadata-address");
    expect(JSON.parse(r.body.toString())).toMatchObject({ error: "blocked by sluice", rule: "net.metadata-address", reason: "blocked_address" });
    const rec = await inner!.waitForLine((l) => l.kind === "http" && l.path === "/latest/meta-data/");
    expect(rec).toMatchObject({ host: "169.254.169.254", verdict: "block", rule: "net.metadata-address", status: 403 });
    // The refused address is in the record (nothing was dialled), never in the agent's response.
    expect(rec.upstream).toBe("169.254.169.254");
  }, T);

  test.skipIf(!ns.ok)("metadata spelled other ways, and over CONNECT, is refused too", async () => {
    for (const url of ["http://169.254.170.2/v2/credentials", "http://[fd00:ec2::254]/latest/meta-data/", "http://100.100.100.200/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://[64:ff9b::a9fe:a9fe]/"]) {
      const r = await through(url);
      expect({ url, status: r.status, verdict: r.headers.get("x-sluice-verdict") }).toEqual({ url, status: 403, verdict: "block" });
      expect(r.headers.get("x-sluice-rule")).toMatch(/^net\.(metadata|private)-address$/);
    }
    const aws6 = await through("http://[fd00:ec2::254]/");
    expect(aws6.headers.get("x-sluice-rule")).toBe("net.metadata-address");
    const tunnel = await through("https://169.254.169.254/", ["--proxytunnel"]);
    expect(tunnel.rawHeaders).toMatch(/^HTTP\/1\.1 403 /);
    expect(tunnel.rawHeaders).toContain("x-sluice-rule: net.metadata-address");
  }, T);

  test.skipIf(!ns.ok)("private, CGNAT and ULA addresses are 403 net.private-address", async () => {
    for (const url of [
      "http://10.0.0.1/",
      "http://192.168.1.1/",
      "http://172.16.0.1/",
      "http://100.64.0.1/",
      "http://[fd00:ec2::1]/",
      "http://[fe80::1]/",
      "http://224.0.0.1/",
      "http://255.255.255.255/",
    ]) {
      const r = await through(url);
      expect({ url, status: r.status, rule: r.headers.get("x-sluice-rule") }).toEqual({ url, status: 403, rule: "net.private-address" });
    }
  }, T);

  test.skipIf(!ns.ok)("names that resolve to refused addresses are refused after resolution", async () => {
    const a = await through("http://intranet.slt.test/wiki");
    expect(a.status).toBe(403);
    expect(a.headers.get("x-sluice-rule")).toBe("net.private-address");
    // The response names the range, not the address: sluice is no resolver of internal names.
    expect(JSON.parse(a.body.toString()).detail).toContain("private 10.0.0.0/8");
    expect(a.body.toString()).not.toContain("10.1.2.3");
    expect((await inner!.waitForLine((l) => l.kind === "http" && l.path === "/wiki")).upstream).toBe("10.1.2.3");
    const b = await through("http://metadata.slt.test/latest/meta-data/iam/");
    expect(b.status).toBe(403);
    expect(b.headers.get("x-sluice-rule")).toBe("net.metadata-address");
    const c = await through("http://ula.slt.test/");
    expect(c.status).toBe(403);
    expect(c.headers.get("x-sluice-rule")).toBe("net.private-address");
    const rec = await inner!.waitForLine((l) => l.kind === "http" && l.path === "/wiki");
    expect(rec).toMatchObject({ host: "intranet.slt.test", verdict: "block", rule: "net.private-address" });
  }, T);
});

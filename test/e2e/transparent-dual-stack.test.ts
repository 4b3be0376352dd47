/**
 * The transparent listener's original destinations, IPv4 and IPv6, through dist/sluice (root; CI
 * is root), in a namespace of the test's own: sluice listens on `[::]` (dual stack), and the
 * test's own nftables tables in the namespace redirect TCP to 10.77.0.5:80 (ip) and
 * [2001:db8::5]:80 (ip6) to it. Each connection is an IP literal, so sluice refuses it as
 * net.unbound-address; its record names the destination that only SO_ORIGINAL_DST (IPv4, here
 * asked on an IPv6 socket, ::ffff:a.b.c.d) and IP6T_SO_ORIGINAL_DST (IPv6) can tell. A
 * connection straight to the listener is refused the same way.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { logRecords } from "../helpers/audit.ts";
import { createNetns, netnsSupport, startSluiceInNetns, type Netns, type NetnsSluice } from "../helpers/netns.ts";
import { tempDir } from "../helpers/sluice.ts";

const T = 60_000;
const support = netnsSupport();
const ok = support.ok && Bun.which("nft") !== null && Bun.which("curl") !== null;
if (!ok) console.warn(`transparent-dual-stack.test.ts: skipping: ${support.ok ? "nft or curl is not installed" : support.reason}`);

// A new namespace gets IPv6 (and ::1 on its loopback) unless the host has it off by default.
const ipv6 = existsSync("/proc/net/if_inet6") && readFileSync("/proc/sys/net/ipv6/conf/default/disable_ipv6", "utf8").trim() === "0";
if (ok && !ipv6) console.warn("transparent-dual-stack.test.ts: skipping the IPv6 part: IPv6 is off on this host (net.ipv6.conf.default.disable_ipv6)");

const PORT = 18896;
const dir = tempDir("slt-dual-stack-");
let ns: Netns | null = null;
let sluice: NetnsSluice | null = null;

const sh = (argv: string[], input?: string) => {
  const r = Bun.spawnSync(argv, { stdin: input === undefined ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
};

beforeAll(async () => {
  if (!ok) return;
  ns = createNetns();
  // Addresses to send to: a veth pair with both ends inside (no dummy driver needed).
  sh(["ip", "-n", ns.name, "link", "add", "slt0", "type", "veth", "peer", "name", "slt1"]);
  sh(["ip", "-n", ns.name, "addr", "add", "10.77.0.1/24", "dev", "slt0"]);
  if (ipv6) sh(["ip", "-n", ns.name, "-6", "addr", "add", "2001:db8::1/64", "dev", "slt0", "nodad"]);
  sh(["ip", "-n", ns.name, "link", "set", "slt0", "up"]);
  sh(["ip", "-n", ns.name, "link", "set", "slt1", "up"]);
  const rules = [
    "table ip slt_redirect {",
    "  chain out { type nat hook output priority -100; ip daddr 10.77.0.5 tcp dport 80 redirect to :" + PORT + "; }",
    "}",
    ...(ipv6 ? ["table ip6 slt_redirect {", "  chain out { type nat hook output priority -100; ip6 daddr 2001:db8::5 tcp dport 80 redirect to :" + PORT + "; }", "}"] : []),
    "",
  ].join("\n");
  sh([...ns.prefix, "nft", "-f", "-"], rules);
  sluice = await startSluiceInNetns(
    ns,
    [
      "version: 1",
      `proxy: { listen: "127.0.0.1:0", transparent_listen: "[::]:${PORT}" }`,
      'admin: { listen: "127.0.0.1:0" }',
      'dns: { listen: "off", upstreams: ["127.0.0.1:9"] }',
      "egress:",
      '  allow: ["web.test"]',
      '  ports: { http: ["1-65535"] }',
      `audit: { dir: ${JSON.stringify(join(dir, "log"))}, file: "off" }`,
      "",
    ].join("\n"),
  );
}, T);

afterAll(async () => {
  await sluice?.stop();
  ns?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const curl = async (url: string, family: "-4" | "-6") => (await ns!.exec(["curl", "-sS", family, "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", url])).stdout;
/** The first record `match` finds, waiting for it: records reach the signed log from the recorder's thread a moment later. */
const recordWhere = async (match: (r: Record<string, unknown>) => boolean) => {
  for (let i = 0; i < 40; i++) {
    const found = logRecords(join(dir, "log")).find(match);
    if (found) return found;
    await Bun.sleep(50);
  }
  return undefined;
};

describe("transparent listener on [::], IPv4 and IPv6 redirected to it", () => {
  test.skipIf(!ok)(
    "an IPv4 connection's original destination is read on the dual-stack socket; the connection is refused as an IP literal",
    async () => {
      expect(await curl("http://10.77.0.5/v4", "-4")).toBe("403");
      const rec = await recordWhere((r) => r.host === "10.77.0.5");
      expect(rec).toMatchObject({ kind: "connect", verdict: "block", rule: "net.unbound-address", host: "10.77.0.5", port: 80 });
    },
    T,
  );

  test.skipIf(!ok || !ipv6)(
    "an IPv6 connection's original destination (IP6T_SO_ORIGINAL_DST) is read and written in canonical form",
    async () => {
      expect(await curl("http://[2001:db8::5]/v6", "-6")).toBe("403");
      const rec = await recordWhere((r) => r.host === "2001:db8::5");
      expect(rec).toMatchObject({ kind: "connect", verdict: "block", rule: "net.unbound-address", host: "2001:db8::5", port: 80 });
    },
    T,
  );

  test.skipIf(!ok)(
    "a connection straight to the listener (not redirected) is refused too: its destination is the listener, an IP literal",
    async () => {
      expect(await curl(`http://127.0.0.1:${PORT}/direct`, "-4")).toBe("403");
      expect(await recordWhere((r) => r.host === "127.0.0.1" && r.port === PORT)).toMatchObject({ kind: "connect", verdict: "block", rule: "net.unbound-address" });
    },
    T,
  );
});

/**
 * TTL-0 rebinding through the proxy: the name first answers a public address, then a private
 * one. Whatever sluice is given, it must never connect to the private address. This dials
 * whatever the answers say, so sluice, the fake upstream and the origin all run inside a fresh
 * network namespace with only a loopback interface (ARCHITECTURE.md network rule): the public
 * address is unreachable there, and nothing can leave the machine.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { createNetns, netnsSupport, startSluiceInNetns, type Netns, type NetnsSluice } from "../helpers/netns.ts";
import { ROOT } from "../helpers/sluice.ts";

const T = 60_000;
const ns = netnsSupport();
if (!ns.ok) console.warn(`dns-netns.test.ts: skipping TTL-0 rebinding through the proxy: ${ns.reason}`);

let netns: Netns | null = null;
let helper: Subprocess<"ignore", "pipe", "pipe"> | null = null;
let sluice: NetnsSluice | null = null;
let dnsPort = 0;
let originPort = 0;
const originRequests: string[] = [];

beforeAll(async () => {
  if (!ns.ok) return;
  netns = createNetns();
  const names = {
    "rebind0.test": {
      sequence: [
        { answers: [{ type: "A", data: "93.184.216.34" }], ttl: 0 },
        { answers: [{ type: "A", data: "127.0.0.1" }], ttl: 0 },
      ],
    },
  };
  helper = Bun.spawn([...netns.prefix, process.execPath, join(ROOT, "test/helpers/fake-dns-cli.ts"), JSON.stringify(names), "--origin"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = helper.stdout.getReader();
  let text = "";
  const decoder = new TextDecoder();
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`fake-dns-cli exited: ${await new Response(helper.stderr).text()}`);
    text += decoder.decode(value, { stream: true });
  }
  const ready = JSON.parse(text.slice(0, text.indexOf("\n"))) as { dns: number; origin: number };
  dnsPort = ready.dns;
  originPort = ready.origin;
  // Keep reading: every request the origin serves is a line.
  void (async () => {
    let rest = text.slice(text.indexOf("\n") + 1);
    for (;;) {
      for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
        const line = JSON.parse(rest.slice(0, nl)) as { origin_request?: string };
        if (line.origin_request) originRequests.push(line.origin_request);
        rest = rest.slice(nl + 1);
      }
      const { value, done } = await reader.read();
      if (done) return;
      rest += decoder.decode(value, { stream: true });
    }
  })();
  sluice = await startSluiceInNetns(
    netns,
    `version: 1
proxy: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
dns: { listen: "127.0.0.1:0", upstreams: ["127.0.0.1:${dnsPort}"], timeout: 1s, attempts: 1 }
egress:
  ports: { http: ["1-65535"] }
`,
  );
});

afterAll(async () => {
  await sluice?.stop();
  helper?.kill("SIGTERM");
  await helper?.exited;
  netns?.destroy();
});

describe("TTL-0 rebinding (inside a loopback-only namespace)", () => {
  test.skipIf(!ns.ok)("public first, private next: the private address is never reached, by the agent's lookup or the proxy's", async () => {
    const n = netns!;
    const sl = sluice!;
    const dns = Number(String(sl.lines.find((l) => l.msg === "sluice ready")?.dns).split(":").pop());
    // The agent's own lookup through sluice gets the public answer.
    const dig = await n.exec(["dig", "+tries=1", "+time=3", "+short", "-p", String(dns), "@127.0.0.1", "rebind0.test", "A"]);
    expect(dig.stdout.trim()).toBe("93.184.216.34");
    // The proxy resolves again (TTL 0): the next answer is loopback, which is refused at dial time.
    for (let i = 0; i < 3; i++) {
      const r = await n.exec(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--noproxy", "", "-x", sl.proxyUrl, `http://rebind0.test:${originPort}/secret-${i}`]);
      expect(["403", "502"]).toContain(r.stdout.trim());
    }
    const recs = await Promise.all([0, 1, 2].map((i) => sl.waitForLine((l) => l.kind === "http" && l.path === `/secret-${i}`)));
    for (const rec of recs) expect(rec.verdict).toBe("block");
    expect(recs.some((r) => r.rule === "net.private-address")).toBe(true);
    // Control: the origin is up and its requests are seen, so an empty list above means something.
    const control = await n.exec(["curl", "-sS", "--max-time", "5", "--noproxy", "*", `http://127.0.0.1:${originPort}/control`]);
    expect(control.stdout).toBe("origin reached");
    const seen = performance.now() + 5000;
    while (!originRequests.includes("/control") && performance.now() < seen) await Bun.sleep(20);
    expect(originRequests).toEqual(["/control"]);
  }, T);
});

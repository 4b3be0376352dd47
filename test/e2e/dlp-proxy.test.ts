/**
 * DLP in the forward proxy, end to end against dist/sluice: secrets in the URL, headers and
 * bodies (JSON, form, chunked, gzip, base64, split across fields), held and streamed bodies,
 * the block / redact / warn actions, known secrets, custom rules, audit mode, and the records
 * (findings with previews, never values). The origin is a node:http server on loopback that
 * keeps what it received.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { sampleSecret } from "../helpers/dlp-samples.ts";
import { curlThrough, stopSluices } from "../helpers/origins.ts";
import { startSluice, tempDir, type Running } from "../helpers/sluice.ts";

const T = 60_000;

const GITHUB = sampleSecret("dlp.github-token");
const AWS_ID = sampleSecret("dlp.aws-access-key-id");
const STRIPE = sampleSecret("dlp.stripe-secret-key");
const KNOWN = "corp-internal-Secret-Value-91ax7Q";

interface Received {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** False when the connection ended before the body was complete. */
  complete: boolean;
}

let origin: Server;
let originUrl = "";
const received: Received[] = [];

function startOrigin(): Promise<void> {
  origin = createServer((req: IncomingMessage, res) => {
    const parts: Buffer[] = [];
    const entry: Received = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.alloc(0), complete: false };
    received.push(entry);
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("error", () => {});
    req.on("close", () => {
      entry.body = Buffer.concat(parts);
    });
    req.on("end", () => {
      entry.complete = true;
      entry.body = Buffer.concat(parts);
      res.setHeader("content-type", "text/plain");
      res.end(`got ${entry.body.length}\n`);
    });
  });
  return new Promise((done) =>
    origin.listen(0, "127.0.0.1", () => {
      originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
      done();
    }),
  );
}

const config = (dlp: string, mode = "enforce") => `version: 1
mode: ${mode}
proxy: { listen: "127.0.0.1:0", require_agent: false }
admin: { listen: "127.0.0.1:0" }
egress:
  ports: { http: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
dlp:
${dlp}
`;

let enforce: Running;
let redact: Running;
let audit: Running;
let tight: Running;
let short: Running;

beforeAll(async () => {
  await startOrigin();
  [enforce, redact, audit] = await Promise.all([
    startSluice(
      config(`  known_secrets: { env: [SLT_KNOWN_SECRET] }
  body: { max_buffer: 64KiB, overlap: 1KiB }
  actions: { dlp.card-number: warn }
  custom_rules:
    - id: dlp.custom.acme-key
      pattern: 'acme_(?P<secret>[a-z0-9]{24})'
      keywords: [acme_]`),
      { env: { SLT_KNOWN_SECRET: KNOWN } },
    ),
    startSluice(config(`  actions: { "dlp.github-*": redact, dlp.stripe-secret-key: redact }`)),
    startSluice(config("  action: block", "audit")),
  ]);
  tight = await startSluice(config("  body: { max_buffer: 64KiB, max_held_total: 64KiB }"));
  short = await startSluice(config("  body: { max_buffer: 64KiB, max_held_total: 64KiB }").replace("require_agent: false }", "require_agent: false, idle_timeout: 1s }"));
}, T);

afterAll(async () => {
  await stopSluices(enforce, redact, audit, tight, short);
  origin?.close();
});

/** Sends one request through the proxy with Bun's fetch. */
async function via(sl: Running, path: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(`${originUrl}${path}`, { ...init, proxy: sl.proxyUrl } as RequestInit);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** The decision record of the request whose path is `path`. */
async function recordFor(sl: Running, path: string): Promise<Record<string, unknown>> {
  return sl.waitForLine((l) => l.kind === "http" && l.path === path, 10_000);
}

function expectNoValue(sl: Running, ...values: string[]): void {
  const all = JSON.stringify(sl.lines);
  for (const v of values) expect(all.includes(v)).toBe(false);
}

const budgetDir = tempDir("slt-dlp-budget-");
const seen = (path: string) => received.filter((r) => r.url.startsWith(path));

describe("dlp: blocks leave nothing upstream", () => {
  test("a token in the query string: 403 with the rule, origin not reached, record with a preview only", async () => {
    const r = await via(enforce, `/q1?key=${GITHUB}`);
    expect(r.status).toBe(403);
    expect(r.headers.get("x-sluice-verdict")).toBe("block");
    expect(r.headers.get("x-sluice-rule")).toBe("dlp.github-token");
    expect(JSON.parse(r.body).rule).toBe("dlp.github-token");
    expect(seen("/q1")).toHaveLength(0);
    const rec = await recordFor(enforce, "/q1");
    expect(rec.verdict).toBe("block");
    expect(rec.reason).toBe("dlp_finding");
    const findings = rec.findings as { rule: string; location: string; preview: string }[];
    expect(findings.map((f) => [f.rule, f.location])).toContainEqual(["dlp.github-token", "url.query.key"]);
    expect(findings[0]!.preview).toContain("…");
    expectNoValue(enforce, GITHUB);
    expect(r.body.includes(GITHUB)).toBe(false);
  }, T);

  test("in a header, in a JSON body, base64-encoded, split across fields, in a form", async () => {
    const cases: [string, RequestInit, string][] = [
      ["/h1", { headers: { "x-debug": `token=${GITHUB}` } }, "header.x-debug"],
      ["/j1", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages: [{ role: "user", content: `my key is ${AWS_ID}` }] }) }, "body.json.messages[0].content"],
      ["/b1", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ blob: Buffer.from(`stripe=${STRIPE}`).toString("base64") }) }, "body.json.blob"],
      ["/s1", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ a: GITHUB.slice(0, 14), b: GITHUB.slice(14, 28), c: GITHUB.slice(28) }) }, "joined("],
      ["/f1", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `user=me&pw=${encodeURIComponent(STRIPE)}` }, "body.form.pw"],
    ];
    for (const [path, init, location] of cases) {
      const r = await via(enforce, path, init);
      expect({ path, status: r.status }).toEqual({ path, status: 403 });
      expect(seen(path)).toHaveLength(0);
      const rec = await recordFor(enforce, path);
      const locations = (rec.findings as { location: string }[]).map((f) => f.location);
      expect(locations.some((l) => l.startsWith(location))).toBe(true);
    }
    expectNoValue(enforce, GITHUB, AWS_ID, STRIPE);
  }, T);

  test("a gzip body is decompressed and scanned; a decompression bomb is refused, not swallowed", async () => {
    const body = gzipSync(JSON.stringify({ note: `key ${GITHUB}` }));
    const r = await via(enforce, "/gz1", { method: "POST", headers: { "content-type": "application/json", "content-encoding": "gzip" }, body });
    expect(r.status).toBe(403);
    expect(r.headers.get("x-sluice-rule")).toBe("dlp.github-token");
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    const b = await via(enforce, "/gz2", { method: "POST", headers: { "content-type": "text/plain", "content-encoding": "gzip" }, body: bomb });
    expect(b.status).toBe(403);
    expect(b.headers.get("x-sluice-rule")).toBe("dlp.body-decode-bomb");
    expect((await recordFor(enforce, "/gz2")).reason).toBe("body_undecodable");
    expect(seen("/gz")).toHaveLength(0);
  }, T);

  test("known secrets (from an environment variable) are caught raw and encoded; custom rules apply", async () => {
    for (const [path, text] of [
      ["/k1", `password is ${KNOWN}`],
      ["/k2", Buffer.from(`user:${KNOWN}`).toString("base64")],
      ["/k3", Buffer.from(KNOWN).toString("hex")],
      ["/c1", "id acme_0123abcd4567efgh89ij0k1l"],
    ] as const) {
      const r = await via(enforce, path, { method: "POST", headers: { "content-type": "text/plain" }, body: text });
      expect({ path, status: r.status }).toEqual({ path, status: 403 });
    }
    expect((await recordFor(enforce, "/k2")).rule).toBe("dlp.known-secret");
    expect((await recordFor(enforce, "/c1")).rule).toBe("dlp.custom.acme-key");
    expectNoValue(enforce, KNOWN);
  }, T);

  test("clean requests pass untouched, bodies byte for byte", async () => {
    const json = JSON.stringify({ id: "550e8400-e29b-41d4-a716-446655440000", sha: "da39a3ee5e6b4b0d3255bfef95601890afd80709", text: "hello" });
    const r = await via(enforce, "/ok1?page=2", { method: "POST", headers: { "content-type": "application/json" }, body: json });
    expect(r.status).toBe(200);
    expect(seen("/ok1")[0]!.body.toString()).toBe(json);
    expect((await recordFor(enforce, "/ok1")).verdict).toBe("allow");
  }, T);
});

describe("dlp: tricks from the security review", () => {
  test("a NUL before a secret, UTF-16 text, a PNG signature glued on: binary is scanned as the text inside it", async () => {
    const bodies: [string, Uint8Array, string][] = [
      ["/bin1", Uint8Array.from([0, ...Buffer.from(GITHUB)]), "text/plain"],
      ["/bin2", Buffer.from(`token ${GITHUB}`, "utf16le"), "text/plain"],
      ["/bin3", Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...Buffer.from(` ${GITHUB} `), 0xff]), "image/png"],
    ];
    for (const [path, body, type] of bodies) {
      const r = await via(enforce, path, { method: "POST", headers: { "content-type": type }, body });
      expect({ path, status: r.status }).toEqual({ path, status: 403 });
    }
    expect(seen("/bin")).toHaveLength(0);
  }, T);

  test("duplicate JSON keys: the value JSON.parse drops is scanned too", async () => {
    const r = await via(enforce, "/dup1", { method: "POST", headers: { "content-type": "application/json" }, body: `{"a":"${GITHUB}","a":"x"}` });
    expect(r.status).toBe(403);
  }, T);

  test("the host as written is scanned (an upper-case key id in a host name), and paths in records are masked", async () => {
    const r = await rawRequest(enforce.proxyPort, `GET http://${AWS_ID}.leak.test:${new URL(originUrl).port}/x HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n`);
    expect(r.split("\r\n")[0]).toBe("HTTP/1.1 403 Forbidden");
    expect(r).toContain("dlp.aws-access-key-id");
    const p = await via(enforce, `/seg/${GITHUB}/tail`);
    expect(p.status).toBe(403);
    const rec = await recordFor(enforce, "/seg/[REDACTED]/tail");
    expect(rec.rule).toBe("dlp.github-token");
    expectNoValue(enforce, GITHUB, AWS_ID);
  }, T);

  test("redact cannot fix a secret split across query values: it blocks", async () => {
    const r = await via(redact, `/rs1?p=${GITHUB.slice(0, 20)}&q=${GITHUB.slice(20)}`);
    expect(r.status).toBe(403);
    expect(seen("/rs1")).toHaveLength(0);
  }, T);
});

/** One raw request on a fresh connection; resolves with everything the proxy sent back. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((done, fail) => {
    const s = connect(port, "127.0.0.1", () => s.write(text));
    let data = "";
    s.on("data", (d) => (data += d.toString("latin1")));
    s.on("close", () => done(data));
    s.on("error", fail);
  });
}

describe("dlp: held and streamed bodies", () => {
  test("a chunked body is held, scanned and sent with a Content-Length; with a secret it is refused", async () => {
    const clean = await curlThrough(enforce.proxyUrl, `${originUrl}/ch1`, ["-H", "Transfer-Encoding: chunked", "-H", "content-type: text/plain", "--data-binary", "hello chunked world"]);
    expect(clean.status).toBe(200);
    const got = seen("/ch1")[0]!;
    expect(got.body.toString()).toBe("hello chunked world");
    expect(got.headers["content-length"]).toBe("19");
    expect(got.headers["transfer-encoding"]).toBeUndefined();
    const dirty = await curlThrough(enforce.proxyUrl, `${originUrl}/ch2`, ["-H", "Transfer-Encoding: chunked", "-H", "content-type: text/plain", "--data-binary", `x ${GITHUB} y`]);
    expect(dirty.status).toBe(403);
    expect(seen("/ch2")).toHaveLength(0);
  }, T);

  test("Expect: 100-continue does not make a body stream: sluice answers 100 itself and holds it", async () => {
    const dir = tempDir("slt-dlp-expect-");
    writeFileSync(join(dir, "clean"), JSON.stringify({ a: "x".repeat(2000) }));
    writeFileSync(join(dir, "split"), JSON.stringify({ x: GITHUB.slice(0, 20), y: GITHUB.slice(20) }));
    const clean = await curlThrough(enforce.proxyUrl, `${originUrl}/ex1`, ["-H", "Expect: 100-continue", "-H", "content-type: application/json", "--data-binary", `@${join(dir, "clean")}`]);
    expect(clean.status).toBe(200);
    expect(clean.rawHeaders).toContain("100 Continue");
    expect(seen("/ex1")[0]!.headers.expect).toBeUndefined();
    // Held, so parsed: a token split across two JSON fields is found.
    const split = await curlThrough(enforce.proxyUrl, `${originUrl}/ex2`, ["-H", "Expect: 100-continue", "-H", "content-type: application/json", "--data-binary", `@${join(dir, "split")}`]);
    expect(split.status).toBe(403);
    expect(seen("/ex2")).toHaveLength(0);
    rmSync(dir, { recursive: true, force: true });
  }, T);

  test("a body over max_buffer streams through intact when clean", async () => {
    const big = Buffer.from("lorem ipsum dolor sit amet, ".repeat(40_000)); // ~1.1 MB
    const r = await via(enforce, "/big1", { method: "POST", headers: { "content-type": "text/plain" }, body: big });
    expect(r.status).toBe(200);
    const got = seen("/big1")[0]!;
    expect(got.complete).toBe(true);
    expect(got.body.equals(big)).toBe(true);
  }, T);

  test("a chunked body over max_buffer streams re-chunked: intact when clean, refused with a late secret", async () => {
    const big = Buffer.from("chunk of clean text, nothing to see. ".repeat(8_000)); // ~300 KB
    const dir = tempDir("slt-dlp-");
    writeFileSync(join(dir, "clean"), big);
    writeFileSync(join(dir, "dirty"), `${big.toString()} ${GITHUB} end`);
    const clean = await curlThrough(enforce.proxyUrl, `${originUrl}/chs1`, ["-H", "Transfer-Encoding: chunked", "-H", "content-type: text/plain", "--data-binary", `@${join(dir, "clean")}`]);
    expect(clean.status).toBe(200);
    const got = seen("/chs1")[0]!;
    expect(got.headers["transfer-encoding"]).toBe("chunked");
    expect(got.body.equals(big)).toBe(true);
    const dirty = await curlThrough(enforce.proxyUrl, `${originUrl}/chs2`, ["-H", "Transfer-Encoding: chunked", "-H", "content-type: text/plain", "--data-binary", `@${join(dir, "dirty")}`]);
    expect(dirty.status).toBe(403);
    const partial = await waitFor(() => seen("/chs2")[0]);
    expect(partial.complete).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  }, T);

  test("past dlp.body.max_held_total, bodies stream instead of waiting in memory", async () => {
    // One client holds 60 KB of a chunked body, unfinished: most of the budget.
    const holder = connect(tight.proxyPort, "127.0.0.1");
    await new Promise<void>((ok) => holder.on("connect", () => ok()));
    holder.write(`POST ${originUrl}/hold1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`);
    holder.write(`${(60 * 1024).toString(16)}\r\n${"h".repeat(60 * 1024)}\r\n`);
    await Bun.sleep(200);
    // A second body no longer fits: it streams, so the origin sees it begin before it ends
    // (a held body would reach the origin only whole).
    const body = Buffer.from("second body, small, ".repeat(1000));
    const second = connect(tight.proxyPort, "127.0.0.1");
    await new Promise<void>((ok) => second.on("connect", () => ok()));
    second.write(`POST ${originUrl}/hold2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`);
    second.write(body.subarray(0, 10_000));
    const early = await waitFor(() => seen("/hold2")[0]);
    expect(early.complete).toBe(false);
    second.write(body.subarray(10_000));
    await waitFor(() => (early.complete ? early : undefined));
    expect(early.body.equals(body)).toBe(true);
    second.destroy();
    // The holder finishes: its body was held whole and goes with a length.
    holder.write("0\r\n\r\n");
    const first = await waitFor(() => seen("/hold1")[0]?.complete ? seen("/hold1")[0] : undefined);
    expect(first.headers["content-length"]).toBe(String(60 * 1024));
    holder.destroy();
    // With the budget free again, a body is held (and sent with a length).
    writeFileSync(join(budgetDir, "b"), body);
    const again = await curlThrough(tight.proxyUrl, `${originUrl}/hold3`, ["-H", "Transfer-Encoding: chunked", "-H", "content-type: text/plain", "--data-binary", `@${join(budgetDir, "b")}`]);
    expect(again.status).toBe(200);
    expect(seen("/hold3")[0]!.headers["content-length"]).toBe(String(body.length));
  }, T);

  test("a held body that breaks off gives its bytes back; one that stalls is cut off", async () => {
    const port = new URL(originUrl).port;
    // 60 KB held, then a malformed chunk: 400, and the budget is free again.
    const broken = await rawRequest(short.proxyPort, `POST http://127.0.0.1:${port}/brk1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${(60 * 1024).toString(16)}\r\n${"b".repeat(60 * 1024)}\r\nzz\r\n`);
    expect(broken.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
    writeFileSync(join(budgetDir, "c"), "c".repeat(50 * 1024));
    const after = await curlThrough(short.proxyUrl, `${originUrl}/brk2`, ["-H", "Transfer-Encoding: chunked", "-H", "content-type: text/plain", "--data-binary", `@${join(budgetDir, "c")}`]);
    expect(after.status).toBe(200);
    expect(seen("/brk2")[0]!.headers["content-length"]).toBe(String(50 * 1024));
    // A body that never comes: 408 after idle_timeout, not a connection held forever.
    const stalled = await rawRequest(short.proxyPort, `POST http://127.0.0.1:${port}/stall1 HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\nabc`);
    expect(stalled.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
    expect(seen("/stall1")).toHaveLength(0);
  }, T);

  test("a secret deep in a streamed body, across a read boundary: refused, the origin gets an incomplete body without it", async () => {
    const filler = "the quick brown fox jumps over the lazy dog. ";
    const before = filler.repeat(8_000); // ~360 KB, past max_buffer
    const body = `${before}${GITHUB} ${filler.repeat(200)}`;
    const bytes = Buffer.from(body);
    // A raw client, writing the secret in two halves with a pause between them.
    const cut = before.length + 20;
    const status = await new Promise<string>((done, fail) => {
      const s = connect(enforce.proxyPort, "127.0.0.1", () => {
        s.write(`POST ${originUrl}/st1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${bytes.length}\r\n\r\n`);
        s.write(bytes.subarray(0, cut));
        setTimeout(() => s.write(bytes.subarray(cut)), 200);
      });
      let data = "";
      s.on("data", (d) => (data += d.toString("latin1")));
      s.on("close", () => done(data.split("\r\n")[0] ?? ""));
      s.on("error", fail);
    });
    expect(status).toBe("HTTP/1.1 403 Forbidden");
    const got = await waitFor(() => seen("/st1")[0]);
    await waitFor(() => (got.body.length > 0 ? got : undefined));
    expect(got.complete).toBe(false);
    expect(got.body.toString().includes(GITHUB.slice(0, 8))).toBe(false);
    expect((await recordFor(enforce, "/st1")).rule).toBe("dlp.github-token");
  }, T);
});

async function waitFor<V>(fn: () => V | undefined, ms = 5000): Promise<V> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await Bun.sleep(20);
  }
}

describe("dlp: redact and warn", () => {
  test("redact: the token is replaced in the body and the query, lengths fixed, the request goes through", async () => {
    const body = JSON.stringify({ cfg: `GITHUB_TOKEN=${GITHUB}`, stripe: STRIPE });
    const r = await via(redact, `/r1?t=${GITHUB}`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(r.status).toBe(200);
    const got = seen("/r1")[0]!;
    const text = got.body.toString();
    expect(text).toContain("[REDACTED:dlp.github-token]");
    expect(text).toContain("[REDACTED:dlp.stripe-secret-key]");
    expect(text.includes(GITHUB) || text.includes(STRIPE)).toBe(false);
    expect(Number(got.headers["content-length"])).toBe(got.body.length);
    expect(got.url).toBe(`/r1?t=[REDACTED:dlp.github-token]`);
    const rec = await recordFor(redact, "/r1");
    expect(rec.verdict).toBe("redact");
    expectNoValue(redact, GITHUB, STRIPE);
  }, T);

  test("redact of a secret only visible encoded is a block: what cannot be cut out does not leave", async () => {
    const body = JSON.stringify({ b: Buffer.from(`token ${GITHUB}`).toString("base64") });
    const r = await via(redact, "/r2", { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(r.status).toBe(403);
    expect(seen("/r2")).toHaveLength(0);
  }, T);

  test("warn: forwarded as is, recorded with its findings", async () => {
    const body = "card 4539 1488 0343 6467 exp 12/30";
    const r = await via(enforce, "/w1", { method: "POST", headers: { "content-type": "text/plain" }, body });
    expect(r.status).toBe(200);
    expect(seen("/w1")[0]!.body.toString()).toBe(body);
    const rec = await recordFor(enforce, "/w1");
    expect(rec.verdict).toBe("warn");
    expect((rec.findings as { rule: string }[])[0]!.rule).toBe("dlp.card-number");
  }, T);

  test("audit mode: the request goes through, the record says it would have been blocked", async () => {
    const r = await via(audit, `/a1?k=${GITHUB}`);
    expect(r.status).toBe(200);
    const rec = await recordFor(audit, "/a1");
    expect(rec.verdict).toBe("warn");
    expect(rec.would_block).toBe(true);
    expect(rec.rule).toBe("dlp.github-token");
  }, T);
});

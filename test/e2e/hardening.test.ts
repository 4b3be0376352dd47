/**
 * Regressions for attacks found in review: framing headers named by Connection (smuggling and
 * response desync), stale pooled connections after a reload, pipelined refusals, IP deny
 * entries and resolved addresses, bodiless and over-long responses, self-dials in audit mode,
 * slowloris after a refusal, and clients that stop reading.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseRawResponse, rawExchange, startEchoOrigin, startRawOrigin, stopSluices, type EchoOrigin, type RawOrigin } from "../helpers/origins.ts";
import { rewriteConfig, startSluice, type Running } from "../helpers/sluice.ts";

const T = 60_000;

const config = (opts: { extra?: string; proxy?: string; trusted?: string[]; deny?: string[]; mode?: string } = {}) => `version: 1
mode: ${opts.mode ?? "enforce"}
proxy: { listen: "127.0.0.1:0"${opts.proxy ? `, ${opts.proxy}` : ""} }
admin: { listen: "127.0.0.1:0" }
egress:
  deny: ${JSON.stringify(opts.deny ?? [])}
  ports: { http: ["1-65535"], connect: ["1-65535"] }
  trusted_cidrs: ${JSON.stringify(opts.trusted ?? ["127.0.0.0/8"])}
${opts.extra ?? ""}`;

/** Counts complete HTTP/1.1 status lines in a byte stream. */
const statusLines = (data: Buffer, code: number) => data.toString("latin1").split(`HTTP/1.1 ${code} `).length - 1;

let echo: EchoOrigin;
const started: Running[] = [];
const origins: RawOrigin[] = [];

async function sluice(yaml: string): Promise<Running> {
  const r = await startSluice(yaml);
  started.push(r);
  return r;
}

function raw(handler: Parameters<typeof startRawOrigin>[0]): RawOrigin {
  const o = startRawOrigin(handler);
  origins.push(o);
  return o;
}

beforeAll(async () => {
  echo = await startEchoOrigin();
});

afterAll(async () => {
  await stopSluices(...started);
  for (const o of origins) o.stop();
  await echo?.stop();
});

describe("framing headers are never dropped on a Connection header's say-so", () => {
  test("a request whose Connection names Content-Length is refused, and the origin sees nothing", async () => {
    const sl = await sluice(config());
    const before = echo.requests.length;
    const inner = `GET /smuggled HTTP/1.1\r\nHost: internal.vhost\r\n\r\n`;
    const r = await rawExchange(sl.proxyPort, [
      `POST ${echo.url}/first HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nContent-Length: ${inner.length}\r\nConnection: content-length\r\n\r\n${inner}`,
    ]);
    expect(parseRawResponse(r.data)?.status).toBe(400);
    expect(echo.requests.length).toBe(before);
  }, T);

  test("a response whose Connection names Content-Length is a 502, not a desynced stream", async () => {
    const sl = await sluice(config());
    const origin = raw(async (conn) => {
      while ((await conn.readHead()) !== null) conn.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: content-length\r\n\r\nhello");
    });
    const r = await rawExchange(sl.proxyPort, [`GET ${origin.url}/a HTTP/1.1\r\nHost: x\r\n\r\nGET ${origin.url}/b HTTP/1.1\r\nHost: x\r\n\r\n`], {
      until: (d) => d.includes("\r\n\r\n"),
    });
    expect(parseRawResponse(r.data)?.status).toBe(502);
  }, T);
});

describe("upstream connections", () => {
  test("a connection pooled before a reload is not reused after it (trusted_cidrs removed)", async () => {
    const sl = await sluice(config());
    // The response is held until we have reloaded, so the connection returns to the pool after.
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const origin = raw(async (conn) => {
      let first = true;
      while ((await conn.readHead()) !== null) {
        if (first) await held;
        first = false;
        conn.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      }
    });
    const slow = rawExchange(sl.proxyPort, [`GET ${origin.url}/slow HTTP/1.1\r\nHost: x\r\n\r\n`], { until: (d) => d.includes("\r\n\r\nok") });
    const seen = performance.now() + 10_000;
    while (origin.heads() < 1 && performance.now() < seen) await Bun.sleep(20);
    expect(origin.heads()).toBe(1);
    rewriteConfig(sl, config({ trusted: [] }));
    await sl.waitForLine((l) => l.msg === "config reloaded", 15_000);
    release();
    expect(parseRawResponse((await slow).data)?.status).toBe(200);
    const after = await rawExchange(sl.proxyPort, [`GET ${origin.url}/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
    const res = parseRawResponse(after.data);
    expect(res?.status).toBe(403);
    expect(res?.headers.get("x-sluice-rule")).toBe("net.private-address");
  }, T);

  test("bytes past the end of a response keep the connection out of the pool", async () => {
    const sl = await sluice(config());
    const origin = raw(async (conn) => {
      while ((await conn.readHead()) !== null) conn.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison");
    });
    for (const path of ["/one", "/two"]) {
      const r = await rawExchange(sl.proxyPort, [`GET ${origin.url}${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
      expect(r.data.toString("latin1")).toEndWith("\r\n\r\nhello");
    }
    // Each request needed a connection of its own: the first one was never reused.
    expect(origin.connections()).toBe(2);
  }, T);

  test("an empty response with a re-serialised head (Content-Length: 0) does not stall the connection", async () => {
    const sl = await sluice(config({ proxy: "upstream_timeout: 30s" }));
    const origin = raw(async (conn) => {
      while ((await conn.readHead()) !== null) conn.write("HTTP/1.1 302 Found\r\nLocation: /x\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
    });
    const r = await rawExchange(sl.proxyPort, [`GET ${origin.url}/a HTTP/1.1\r\nHost: x\r\n\r\nGET ${origin.url}/b HTTP/1.1\r\nHost: x\r\n\r\n`], {
      until: (d) => statusLines(d, 302) === 2,
      timeoutMs: 10_000,
    });
    expect(r.timedOut).toBe(false);
    expect(statusLines(r.data, 302)).toBe(2);
    expect(r.data.toString("latin1").toLowerCase()).toContain("content-length: 0");
  }, T);
});

describe("refusals", () => {
  test("thousands of pipelined refused requests are answered in order without a 431 or a crash", async () => {
    const sl = await sluice(config({ deny: ["denied.example"] }));
    const n = 5000;
    const one = "GET http://denied.example/ HTTP/1.1\r\nHost: denied.example\r\n\r\n";
    const r = await rawExchange(sl.proxyPort, [one.repeat(n)], { until: (d) => statusLines(d, 403) === n, timeoutMs: 30_000 });
    expect(statusLines(r.data, 403)).toBe(n);
    expect(statusLines(r.data, 431)).toBe(0);
    const health = (await (await fetch(`${sl.adminUrl}/healthz`)).json()) as Record<string, unknown>;
    expect(health.status).toBe("ok");
  }, T);

  test("after a refused request, a slow partial head still meets header_timeout", async () => {
    const sl = await sluice(config({ deny: ["denied.example"], proxy: "header_timeout: 1s" }));
    const r = await rawExchange(sl.proxyPort, ["GET http://denied.example/ HTTP/1.1\r\nHost: denied.example\r\n\r\nGET http://denied.example/ HTTP/1.1\r\n"], {
      until: (d) => d.includes(" 408 "),
      timeoutMs: 15_000,
    });
    expect(r.timedOut).toBe(false);
    expect(statusLines(r.data, 403)).toBe(1);
    expect(r.data.toString("latin1")).toContain("HTTP/1.1 408 ");
  }, T);

  test("IP deny entries hold for every spelling and for what a name resolves to", async () => {
    const sl = await sluice(config({ deny: ["127.0.0.1"] }));
    for (const url of [`http://127.0.0.1:${echo.port}/`, `http://[::ffff:127.0.0.1]:${echo.port}/`, `http://[::ffff:7f00:1]:${echo.port}/`, `http://localhost:${echo.port}/`]) {
      const r = await rawExchange(sl.proxyPort, [`GET ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
      const res = parseRawResponse(r.data);
      expect({ url, status: res?.status, rule: res?.headers.get("x-sluice-rule") }).toEqual({ url, status: 403, rule: "egress.deny-host" });
    }
  }, T);

  test("dialling sluice's own listener is refused even in audit mode", async () => {
    const sl = await sluice(config({ mode: "audit" }));
    const r = await rawExchange(sl.proxyPort, [`CONNECT 127.0.0.1:${sl.proxyPort} HTTP/1.1\r\n\r\n`]);
    const res = parseRawResponse(r.data);
    expect(res?.status).toBe(403);
    expect(res?.headers.get("x-sluice-rule")).toBe("net.self-address");
  }, T);
});

describe("clients that stop reading", () => {
  test("a client that never reads a large response is cut off after idle_timeout", async () => {
    const sl = await sluice(config({ proxy: "idle_timeout: 2s" }));
    const client = await Bun.connect<undefined>({
      hostname: "127.0.0.1",
      port: sl.proxyPort,
      socket: {
        open(s) {
          s.pause();
        },
        data() {},
        error() {},
      },
    });
    client.write(`GET ${echo.url}/bytes/${64 * 1024 * 1024} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const connections = async () => ((await (await fetch(`${sl.adminUrl}/healthz`)).json()) as { connections: number }).connections;
    const deadline = performance.now() + 20_000;
    while ((await connections()) > 0 && performance.now() < deadline) await Bun.sleep(250);
    expect(await connections()).toBe(0);
    client.terminate();
  }, T);
});

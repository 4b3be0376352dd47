/**
 * CONNECT tunnels end to end: TLS to a local HTTPS origin through curl (the proxy never sees
 * inside), refusals by port and by host with the block contract, early data after the CONNECT
 * head, and the tunnel's decision record with bytes both ways.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  curl,
  curlThrough,
  parseRawResponse,
  rawExchange,
  startEchoOrigin,
  startHttpsOrigin,
  startRawOrigin,
  unusedPort,
  stopSluices,
  type EchoOrigin,
  type HttpsOrigin,
  type RawOrigin,
} from "../helpers/origins.ts";
import { startSluice, type Running } from "../helpers/sluice.ts";

const T = 60_000;
const ESTABLISHED = "HTTP/1.1 200 Connection Established\r\n\r\n";

let sl: Running;
let only443: Running;
let https: HttpsOrigin;
let echo: EchoOrigin;
let tcpEcho: RawOrigin;

beforeAll(async () => {
  https = startHttpsOrigin();
  echo = await startEchoOrigin();
  // Echoes every byte back, uppercased, so a reply cannot be mistaken for our own bytes.
  tcpEcho = startRawOrigin(async (conn) => {
    for (;;) {
      const chunk = await conn.readSome();
      if (chunk === null) return;
      if (chunk.toString("latin1").includes("QUIT")) {
        conn.write(Buffer.from(chunk.toString("latin1").toUpperCase(), "latin1"));
        conn.end();
        return;
      }
      conn.write(Buffer.from(chunk.toString("latin1").toUpperCase(), "latin1"));
    }
  });
  sl = await startSluice(`version: 1
proxy: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
egress:
  deny: ["localhost"]
  ports: { http: ["1-65535"], connect: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
`);
  only443 = await startSluice(`version: 1
proxy: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
egress:
  ports: { http: ["1-65535"], connect: [443] }
  trusted_cidrs: [127.0.0.1/32]
`);
});

afterAll(async () => {
  await stopSluices(sl, only443);
  https?.stop();
  await echo?.stop();
  tcpEcho?.stop();
});

const connectRecord = (r: Running, port: number) =>
  r.waitForLine((l) => l.kind === "connect" && l.port === port && l.host === "127.0.0.1");

describe("tunnels", () => {
  test("HTTPS through CONNECT with curl --cacert works end to end", async () => {
    const r = await curlThrough(sl.proxyUrl, `https://127.0.0.1:${https.port}/secure/path`, ["--cacert", https.caFile, "--data-binary", "tls body"]);
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.status).toBe(200);
    // curl saw the CONNECT answer before the TLS response.
    expect(r.rawHeaders).toMatch(/^HTTP\/1\.1 200 Connection Established\r\n/);
    expect(JSON.parse(r.body.toString())).toMatchObject({ secure: true, method: "POST", path: "/secure/path", bodyLength: 8 });
    const rec = await connectRecord(sl, https.port);
    expect(rec).toMatchObject({ kind: "connect", method: "CONNECT", verdict: "allow", status: 200, upstream: "127.0.0.1", inspected: false });
    expect(rec.bytes_out as number).toBeGreaterThan(0);
    expect(rec.bytes_in as number).toBeGreaterThan(0);
    // The tunnel is opaque: no path, nothing of the inner request.
    expect(rec.path).toBeUndefined();
  }, T);

  test("HTTPS through CONNECT with Bun fetch", async () => {
    const before = https.requests();
    const res = await fetch(`https://127.0.0.1:${https.port}/fetch-tls`, {
      proxy: sl.proxyUrl,
      tls: { ca: await Bun.file(https.caFile).text() },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Record<string, unknown>).path).toBe("/fetch-tls");
    expect(https.requests()).toBe(before + 1);
  }, T);

  test("a certificate the client does not trust fails in the client: sluice does not intercept", async () => {
    const r = await curl(["-x", sl.proxyUrl, `https://127.0.0.1:${https.port}/untrusted`]);
    // 60: peer certificate cannot be authenticated with known CA certificates.
    expect(r.exitCode).toBe(60);
  }, T);

  test("plain HTTP inside a tunnel (curl --proxytunnel) reaches the origin", async () => {
    const r = await curlThrough(sl.proxyUrl, `${echo.url}/inside-tunnel`, ["--proxytunnel"]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toMatchObject({ method: "GET", url: "/inside-tunnel" });
    const rec = await connectRecord(sl, echo.port);
    expect(rec.verdict).toBe("allow");
  }, T);

  test("bytes sent right after the CONNECT head (early data) are delivered", async () => {
    const r = await rawExchange(
      sl.proxyPort,
      [`CONNECT 127.0.0.1:${tcpEcho.port} HTTP/1.1\r\nHost: 127.0.0.1:${tcpEcho.port}\r\n\r\nearly-bytes-quit`],
      { until: (d) => d.toString("latin1").includes("EARLY-BYTES-QUIT") },
    );
    const text = r.data.toString("latin1");
    expect(text.startsWith(ESTABLISHED)).toBe(true);
    expect(text.slice(ESTABLISHED.length)).toBe("EARLY-BYTES-QUIT");
  }, T);

  test("a closed tunnel gets one connect record with bytes in both directions", async () => {
    // Bytes in two writes; the origin echoes them and closes on QUIT: the record is written
    // when the tunnel ends, and must count what went each way.
    const sent = ["hello-one ", "hello-two QUIT"];
    const chunks = [`CONNECT 127.0.0.1:${tcpEcho.port} HTTP/1.1\r\nHost: x\r\n\r\n`, ...sent];
    const r = await rawExchange(sl.proxyPort, chunks, { timeoutMs: 20_000 });
    expect(r.timedOut).toBe(false);
    expect(r.closed).toBe(true);
    const reply = r.data.toString("latin1").slice(ESTABLISHED.length);
    expect(reply).toBe(sent.join("").toUpperCase());
    const rec = await sl.waitForLine((l) => l.kind === "connect" && l.port === tcpEcho.port && l.bytes_out === sent.join("").length);
    expect(rec).toMatchObject({ method: "CONNECT", host: "127.0.0.1", verdict: "allow", status: 200 });
    expect(rec.bytes_in).toBe(sent.join("").length);
    expect(typeof rec.duration_ms).toBe("number");
  }, T);
});

describe("refusals", () => {
  test("CONNECT to a port outside egress.ports.connect is 403 egress.port-not-allowed", async () => {
    const before = https.requests();
    const c = await curl(["-x", only443.proxyUrl, "--cacert", https.caFile, "-w", "%{http_connect}", "-o", "/dev/null", `https://127.0.0.1:${https.port}/`]);
    expect(c.exitCode).not.toBe(0);
    expect(c.stdout.toString()).toBe("403");

    const r = await rawExchange(only443.proxyPort, [`CONNECT 127.0.0.1:${https.port} HTTP/1.1\r\nHost: 127.0.0.1:${https.port}\r\n\r\n`]);
    const res = parseRawResponse(r.data);
    expect(res?.status).toBe(403);
    expect(res?.headers.get("x-sluice-verdict")).toBe("block");
    expect(res?.headers.get("x-sluice-rule")).toBe("egress.port-not-allowed");
    expect(JSON.parse(res!.body.toString())).toMatchObject({ error: "blocked by sluice", rule: "egress.port-not-allowed", reason: "port_not_allowed" });
    // A refused CONNECT closes the connection: nothing may follow it into a tunnel.
    expect(r.closed).toBe(true);
    expect(https.requests()).toBe(before);
    const rec = await only443.waitForLine((l) => l.kind === "connect" && l.port === https.port);
    expect(rec).toMatchObject({ verdict: "block", rule: "egress.port-not-allowed", status: 403 });
  }, T);

  test("CONNECT to a denied host is 403 egress.deny-host, early data is not delivered", async () => {
    const before = tcpEcho.bytesReceived();
    const r = await rawExchange(sl.proxyPort, [`CONNECT localhost:${tcpEcho.port} HTTP/1.1\r\nHost: localhost\r\n\r\nsmuggled-early-data`]);
    const res = parseRawResponse(r.data);
    expect(res?.status).toBe(403);
    expect(res?.headers.get("x-sluice-verdict")).toBe("block");
    expect(res?.headers.get("x-sluice-rule")).toBe("egress.deny-host");
    expect(JSON.parse(res!.body.toString())).toMatchObject({ error: "blocked by sluice", rule: "egress.deny-host" });
    expect(r.closed).toBe(true);
    expect(tcpEcho.bytesReceived()).toBe(before);

    const c = await curl(["-x", sl.proxyUrl, "--cacert", https.caFile, "-w", "%{http_connect}", "-o", "/dev/null", `https://localhost:${https.port}/`]);
    expect(c.stdout.toString()).toBe("403");
  }, T);

  test("CONNECT to a port with nothing listening is 502", async () => {
    const port = unusedPort();
    const r = await rawExchange(sl.proxyPort, [`CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`]);
    const res = parseRawResponse(r.data);
    expect(res?.status).toBe(502);
    expect(res?.headers.get("x-sluice-rule")).toBe("proxy.upstream-unreachable");
  }, T);

  test("a CONNECT target that is not host:port is 400", async () => {
    for (const target of ["127.0.0.1", "user@127.0.0.1:443", "http://127.0.0.1:443/", "127.0.0.1:99999"]) {
      const r = await rawExchange(sl.proxyPort, [`CONNECT ${target} HTTP/1.1\r\n\r\n`]);
      expect({ target, status: parseRawResponse(r.data)?.status }).toEqual({ target, status: 400 });
    }
  }, T);
});

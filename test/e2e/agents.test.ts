/**
 * Agent identity by proxy token (Proxy-Authorization Basic or Bearer): records carry the agent,
 * unknown tokens and missing ones (with proxy.require_agent) get 407 with Proxy-Authenticate,
 * and an agent's own egress lists limit only that agent.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { curlThrough, parseRawResponse, rawExchange, sha256, startEchoOrigin, stopSluices, type EchoOrigin } from "../helpers/origins.ts";
import { startSluice, type Running } from "../helpers/sluice.ts";

const T = 60_000;
const ALPHA = "alpha-token-7c1d0e5b9a";
const NARROW = "narrow-token-33f0aa91c2";
const DENIER = "denier-token-5e6b7c8d9f";

let sl: Running;
let strict: Running;
let byDefault: Running;
let echo: EchoOrigin;
let other: EchoOrigin;

const agentsYaml = (echoPort: number) => `agents:
  - name: alpha
    token_sha256: ${sha256(ALPHA)}
  - name: narrow
    token_sha256: ${sha256(NARROW)}
    egress:
      allow: ["127.0.0.1:${echoPort}"]
  - name: denier
    token_sha256: ${sha256(DENIER)}
    egress:
      deny: ["127.0.0.1:${echoPort}"]
`;

const config = (echoPort: number, requireAgent: boolean | null) => `version: 1
proxy:
  listen: "127.0.0.1:0"
${requireAgent === null ? "" : `  require_agent: ${requireAgent}`}
admin: { listen: "127.0.0.1:0" }
egress:
  ports: { http: ["1-65535"], connect: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
${agentsYaml(echoPort)}`;

beforeAll(async () => {
  echo = await startEchoOrigin();
  other = await startEchoOrigin();
  sl = await startSluice(config(echo.port, false));
  strict = await startSluice(config(echo.port, true));
  byDefault = await startSluice(config(echo.port, null));
});

afterAll(async () => {
  await stopSluices(sl, strict, byDefault);
  await echo?.stop();
  await other?.stop();
});

const recordFor = (r: Running, path: string) => r.waitForLine((l) => l.kind === "http" && l.path === path);

describe("identified agents", () => {
  test("curl -U and --proxy-user identify the agent; the record carries its name", async () => {
    const a = await curlThrough(sl.proxyUrl, `${echo.url}/agent/curl-U`, ["-U", `any:${ALPHA}`]);
    expect(a.status).toBe(200);
    expect((await recordFor(sl, "/agent/curl-U")).agent).toBe("alpha");
    const b = await curlThrough(sl.proxyUrl, `${echo.url}/agent/proxy-user`, ["--proxy-user", `someone-else:${ALPHA}`]);
    expect(b.status).toBe(200);
    expect((await recordFor(sl, "/agent/proxy-user")).agent).toBe("alpha");
  }, T);

  test("fetch with credentials in the proxy URL identifies the agent", async () => {
    const u = new URL(sl.proxyUrl);
    u.username = "x";
    u.password = ALPHA;
    const res = await fetch(`${echo.url}/agent/fetch`, { proxy: u.toString() });
    expect(res.status).toBe(200);
    await res.text();
    expect((await recordFor(sl, "/agent/fetch")).agent).toBe("alpha");
  }, T);

  test("a Bearer proxy token identifies the agent too", async () => {
    const r = await curlThrough(sl.proxyUrl, `${echo.url}/agent/bearer`, ["-H", `Proxy-Authorization: Bearer ${ALPHA}`]);
    expect(r.status).toBe(200);
    expect((await recordFor(sl, "/agent/bearer")).agent).toBe("alpha");
  }, T);

  test("a CONNECT tunnel record carries the agent", async () => {
    const r = await curlThrough(sl.proxyUrl, `${other.url}/agent/tunnel`, ["--proxytunnel", "-U", `any:${ALPHA}`]);
    expect(r.status).toBe(200);
    const rec = await sl.waitForLine((l) => l.kind === "connect" && l.port === other.port);
    expect(rec).toMatchObject({ agent: "alpha", verdict: "allow" });
  }, T);

  test("without credentials the request is anonymous", async () => {
    const r = await curlThrough(sl.proxyUrl, `${echo.url}/agent/anonymous`);
    expect(r.status).toBe(200);
    expect((await recordFor(sl, "/agent/anonymous")).agent).toBe("anonymous");
  }, T);

  test("the token is never forwarded nor logged", async () => {
    await curlThrough(sl.proxyUrl, `${echo.url}/agent/hygiene`, ["-U", `any:${ALPHA}`]);
    await recordFor(sl, "/agent/hygiene");
    const seen = echo.requests.find((q) => q.url === "/agent/hygiene");
    expect(seen).toBeDefined();
    expect(JSON.stringify(seen)).not.toContain(ALPHA);
    expect(JSON.stringify(seen)).not.toContain(Buffer.from(`any:${ALPHA}`).toString("base64"));
    for (const l of [...sl.lines, ...strict.lines]) expect(JSON.stringify(l)).not.toContain(ALPHA);
  }, T);
});

describe("refused credentials", () => {
  test("an unknown token is 407 with Proxy-Authenticate, and never reaches the origin", async () => {
    const before = echo.requests.length;
    const r = await curlThrough(sl.proxyUrl, `${echo.url}/agent/unknown`, ["-U", "any:not-a-real-token"]);
    expect(r.status).toBe(407);
    expect(r.headers.get("proxy-authenticate")).toBe('Basic realm="sluice"');
    expect(r.headers.get("x-sluice-verdict")).toBe("block");
    expect(r.headers.get("x-sluice-rule")).toBe("agent.auth-failed");
    expect(JSON.parse(r.body.toString())).toMatchObject({ error: "blocked by sluice", rule: "agent.auth-failed", reason: "agent_auth_failed" });
    expect(echo.requests.length).toBe(before);
    const rec = await recordFor(sl, "/agent/unknown");
    expect(rec).toMatchObject({ verdict: "block", status: 407, rule: "agent.auth-failed" });
    for (const l of sl.lines) expect(JSON.stringify(l)).not.toContain("not-a-real-token");
  }, T);

  test("an unknown token on CONNECT is 407 too", async () => {
    const auth = Buffer.from("any:wrong-token").toString("base64");
    const r = await rawExchange(sl.proxyPort, [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`]);
    const res = parseRawResponse(r.data);
    expect(res?.status).toBe(407);
    expect(res?.headers.get("proxy-authenticate")).toBe('Basic realm="sluice"');
  }, T);

  test("two Proxy-Authorization headers are refused as ambiguous, even if one is valid", async () => {
    const good = Buffer.from(`any:${ALPHA}`).toString("base64");
    const r = await rawExchange(sl.proxyPort, [
      `GET ${echo.url}/agent/two-creds HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic ${good}\r\nProxy-Authorization: Bearer ${NARROW}\r\nConnection: close\r\n\r\n`,
    ]);
    expect(parseRawResponse(r.data)?.status).toBe(407);
  }, T);

  test("proxy.require_agent: no credentials is 407 agent.auth-required; a valid token passes", async () => {
    const r = await curlThrough(strict.proxyUrl, `${echo.url}/agent/required`);
    expect(r.status).toBe(407);
    expect(r.headers.get("proxy-authenticate")).toBe('Basic realm="sluice"');
    expect(r.headers.get("x-sluice-rule")).toBe("agent.auth-required");
    const res = await fetch(`${echo.url}/agent/required-fetch`, { proxy: strict.proxyUrl });
    expect(res.status).toBe(407);
    await res.text();
    const tunnel = await rawExchange(strict.proxyPort, [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n\r\n`]);
    expect(parseRawResponse(tunnel.data)?.status).toBe(407);

    // curl answers a 407 challenge with the credentials it has.
    const ok = await curlThrough(strict.proxyUrl, `${echo.url}/agent/required-ok`, ["-U", `any:${NARROW}`]);
    expect(ok.status).toBe(200);
    expect((await recordFor(strict, "/agent/required-ok")).agent).toBe("narrow");
  }, T);
  test("with token agents and require_agent unset, no credentials is 407: an agent cannot shed its own lists", async () => {
    const r = await curlThrough(byDefault.proxyUrl, `${echo.url}/agent/default-required`);
    expect(r.status).toBe(407);
    expect(r.headers.get("x-sluice-rule")).toBe("agent.auth-required");
    const ok = await curlThrough(byDefault.proxyUrl, `${echo.url}/agent/default-ok`, ["-U", `any:${ALPHA}`]);
    expect(ok.status).toBe(200);
  }, T);
});

describe("per-agent egress lists", () => {
  test("an agent with its own allow list is limited to it; others are not", async () => {
    const allowed = await curlThrough(sl.proxyUrl, `${echo.url}/agent/narrow-ok`, ["-U", `any:${NARROW}`]);
    expect(allowed.status).toBe(200);
    const refused = await curlThrough(sl.proxyUrl, `${other.url}/agent/narrow-refused`, ["-U", `any:${NARROW}`]);
    expect(refused.status).toBe(403);
    expect(refused.headers.get("x-sluice-rule")).toBe("egress.not-allowed");
    expect(JSON.parse(refused.body.toString())).toMatchObject({ rule: "egress.not-allowed", reason: "not_allowlisted" });
    const tunnel = await curlThrough(sl.proxyUrl, `${other.url}/agent/narrow-tunnel`, ["--proxytunnel", "-U", `any:${NARROW}`]);
    expect(tunnel.exitCode).not.toBe(0);
    expect(tunnel.rawHeaders).toMatch(/^HTTP\/1\.1 403 /);
    expect(tunnel.rawHeaders).toContain("x-sluice-rule: egress.not-allowed");
    const rec = await recordFor(sl, "/agent/narrow-refused");
    expect(rec).toMatchObject({ agent: "narrow", verdict: "block", rule: "egress.not-allowed" });
    // The same destination for another agent, and for no agent, is fine.
    expect((await curlThrough(sl.proxyUrl, `${other.url}/agent/alpha-other`, ["-U", `any:${ALPHA}`])).status).toBe(200);
    expect((await curlThrough(sl.proxyUrl, `${other.url}/agent/anon-other`)).status).toBe(200);
  }, T);

  test("an agent's own deny list applies to that agent only", async () => {
    const denied = await curlThrough(sl.proxyUrl, `${echo.url}/agent/denier`, ["-U", `any:${DENIER}`]);
    expect(denied.status).toBe(403);
    expect(denied.headers.get("x-sluice-rule")).toBe("egress.deny-host");
    expect((await curlThrough(sl.proxyUrl, `${other.url}/agent/denier-other`, ["-U", `any:${DENIER}`])).status).toBe(200);
    expect((await curlThrough(sl.proxyUrl, `${echo.url}/agent/alpha-echo`, ["-U", `any:${ALPHA}`])).status).toBe(200);
  }, T);
});

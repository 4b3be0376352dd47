/**
 * Running-policy changes without a restart, and the admin API that drives them: hot reload by
 * file change, SIGHUP and POST /v1/reload (invalid configs rejected, old policy kept), open
 * tunnels surviving a reload, audit mode, the kill switch, auth on /v1/*, /healthz and /metrics.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { curlThrough, rawExchange, parseRawResponse, sha256, startEchoOrigin, startRawOrigin, startUppercaseEcho, stopSluices, type EchoOrigin, type RawOrigin } from "../helpers/origins.ts";
import { rewriteConfig, startSluice, withTestDns, type Running } from "../helpers/sluice.ts";

const T = 60_000;

function config(opts: { deny?: string[]; mode?: "enforce" | "audit"; extra?: string } = {}): string {
  return `version: 1
mode: ${opts.mode ?? "enforce"}
proxy: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
egress:
  deny: ${JSON.stringify(opts.deny ?? [])}
  ports: { http: ["1-65535"], connect: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
${opts.extra ?? ""}`;
}

/** The digest sluice logs for a config text (sha256, first 16 hex digits). */
const digestOf = (text: string) => sha256(withTestDns(text)).slice(0, 16);

let sl: Running;
let audit: Running;
let echo: EchoOrigin;
let tcpEcho: RawOrigin;

beforeAll(async () => {
  echo = await startEchoOrigin();
  tcpEcho = startUppercaseEcho();
  sl = await startSluice(config());
  audit = await startSluice(config({ mode: "audit", deny: ["localhost"] }));
});

afterAll(async () => {
  await stopSluices(sl, audit);
  await echo?.stop();
  tcpEcho?.stop();
});

/** Writes a config and waits for sluice to log that exact text as reloaded (by digest). */
async function applyConfig(r: Running, text: string): Promise<Record<string, unknown>> {
  rewriteConfig(r, text);
  return r.waitForLine((l) => l.msg === "config reloaded" && l.digest === digestOf(text), 15_000);
}

/** Waits for a line matching `pred` that was printed after `mark` (an index into r.lines). */
function lineAfter(r: Running, mark: number, pred: (l: Record<string, unknown>) => boolean, timeoutMs = 15_000) {
  return r.waitForLine((l) => pred(l) && r.lines.indexOf(l) >= mark, timeoutMs);
}

const viaLocalhost = (r: Running, path: string) => curlThrough(r.proxyUrl, `http://localhost:${echo.port}${path}`);
const admin = (r: Running, path: string, init: RequestInit & { token?: string | null } = {}) => {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? r.adminToken : init.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  return fetch(`${r.adminUrl}${path}`, { ...init, headers });
};

describe("hot reload", () => {
  test("a changed config file takes effect for new requests without a restart", async () => {
    const pid = sl.proc.pid;
    expect((await viaLocalhost(sl, "/before-reload")).status).toBe(200);
    const line = await applyConfig(sl, config({ deny: ["localhost"] }));
    expect(line.trigger).toBe("file");
    const r = await viaLocalhost(sl, "/after-reload");
    expect(r.status).toBe(403);
    expect(r.headers.get("x-sluice-rule")).toBe("egress.deny-host");
    // Other hosts are unaffected, and it is the same process.
    expect((await curlThrough(sl.proxyUrl, `${echo.url}/still-fine`)).status).toBe(200);
    expect(sl.proc.pid).toBe(pid);
    expect(sl.proc.exitCode).toBeNull();
    const health = (await (await fetch(`${sl.adminUrl}/healthz`)).json()) as Record<string, unknown>;
    expect(health.policy).toBe(line.digest);
  }, T);

  test("an invalid config written to the file is rejected and the running policy stays", async () => {
    const mark = sl.lines.length;
    rewriteConfig(sl, `${config({ deny: ["localhost"] })}bogus_key: 1\n`);
    const rejected = await lineAfter(sl, mark, (l) => l.msg === "config reload rejected; the running policy stays");
    expect(rejected.trigger).toBe("file");
    expect(JSON.stringify(rejected.errors)).toContain("bogus_key");
    expect((await viaLocalhost(sl, "/after-rejected")).status).toBe(403);
    expect((await curlThrough(sl.proxyUrl, `${echo.url}/after-rejected-ok`)).status).toBe(200);
    // Put a valid file back (the deny stays) for the next tests.
    await applyConfig(sl, config({ deny: ["localhost"] }));
  }, T);

  test("SIGHUP reloads the config", async () => {
    const text = config({ deny: ["localhost"], extra: "# sighup\n" });
    // The file watch will also reload it; the SIGHUP reload is the one with trigger "sighup".
    await applyConfig(sl, text);
    const mark = sl.lines.length;
    sl.proc.kill("SIGHUP");
    const line = await lineAfter(sl, mark, (l) => l.msg === "config reloaded" && l.trigger === "sighup");
    expect(line.digest).toBe(digestOf(text));
    expect(sl.proc.exitCode).toBeNull();
    expect((await viaLocalhost(sl, "/after-sighup")).status).toBe(403);
  }, T);

  test("POST /v1/reload returns ok, or 422 with the errors for an invalid file", async () => {
    const okRes = await admin(sl, "/v1/reload", { method: "POST" });
    expect(okRes.status).toBe(200);
    expect(await okRes.json()).toEqual({ ok: true });

    rewriteConfig(sl, "version: 1\negress:\n  allow: [\"*.com\"]\n");
    const bad = await admin(sl, "/v1/reload", { method: "POST" });
    expect(bad.status).toBe(422);
    const body = (await bad.json()) as { ok: boolean; errors: string[] };
    expect(body.ok).toBe(false);
    expect(body.errors.join("\n")).toContain("egress.allow");
    expect((await viaLocalhost(sl, "/after-422")).status).toBe(403);

    await applyConfig(sl, config({ deny: ["localhost"] }));
    const unauth = await admin(sl, "/v1/reload", { method: "POST", token: null });
    expect(unauth.status).toBe(401);
  }, T);

  test("an open CONNECT tunnel keeps working across a reload", async () => {
    const tunnel = await openTunnel(sl.proxyPort, `127.0.0.1:${tcpEcho.port}`);
    try {
      expect(await tunnel.roundTrip("before-")).toBe("BEFORE-");
      await applyConfig(sl, config({ deny: ["localhost", "blocked.example"] }));
      expect(await tunnel.roundTrip("after-")).toBe("AFTER-");
    } finally {
      tunnel.close();
    }
    const rec = await sl.waitForLine((l) => l.kind === "connect" && l.port === tcpEcho.port);
    expect(rec.bytes_out).toBe("before-after-".length);
    expect(rec.bytes_in).toBe("before-after-".length);
  }, T);
});

describe("audit mode", () => {
  test("a denied request goes through, recorded as warn with would_block", async () => {
    const r = await viaLocalhost(audit, "/audit-only");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toMatchObject({ url: "/audit-only" });
    const rec = await audit.waitForLine((l) => l.kind === "http" && l.path === "/audit-only");
    expect(rec).toMatchObject({ verdict: "warn", would_block: true, rule: "egress.deny-host", status: 200 });
    const health = (await (await fetch(`${audit.adminUrl}/healthz`)).json()) as Record<string, unknown>;
    expect(health.mode).toBe("audit");
  }, T);
});

describe("kill switch", () => {
  test("blocks everything with admin.killswitch, even in audit mode, and turning it off restores traffic", async () => {
    for (const r of [sl, audit]) {
      const on = await admin(r, "/v1/killswitch", { method: "POST", body: JSON.stringify({ enabled: true }), headers: { "content-type": "application/json" } });
      expect(on.status).toBe(200);
      expect(await on.json()).toEqual({ enabled: true });
      expect(await (await admin(r, "/v1/killswitch")).json()).toEqual({ enabled: true });

      const blocked = await curlThrough(r.proxyUrl, `${echo.url}/during-killswitch`);
      expect(blocked.status).toBe(403);
      expect(blocked.headers.get("x-sluice-verdict")).toBe("block");
      expect(blocked.headers.get("x-sluice-rule")).toBe("admin.killswitch");
      expect(JSON.parse(blocked.body.toString())).toMatchObject({ error: "blocked by sluice", rule: "admin.killswitch", reason: "killswitch" });
      const tunnel = await rawExchange(r.proxyPort, [`CONNECT 127.0.0.1:${tcpEcho.port} HTTP/1.1\r\n\r\n`]);
      expect(parseRawResponse(tunnel.data)?.headers.get("x-sluice-rule")).toBe("admin.killswitch");
      const health = (await (await fetch(`${r.adminUrl}/healthz`)).json()) as Record<string, unknown>;
      expect(health.killswitch).toBe(true);

      const off = await admin(r, "/v1/killswitch", { method: "POST", body: JSON.stringify({ enabled: false }) });
      expect(await off.json()).toEqual({ enabled: false });
      expect((await curlThrough(r.proxyUrl, `${echo.url}/after-killswitch`)).status).toBe(200);
    }
    const rec = await audit.waitForLine((l) => l.kind === "http" && l.path === "/during-killswitch");
    expect(rec).toMatchObject({ verdict: "block", rule: "admin.killswitch" });
    expect(rec.would_block).toBeUndefined();
  }, T);

  test("turning the kill switch on also stops tunnels that are already open", async () => {
    // "All egress refused" (the kill switch's own log line) must include tunnels opened before
    // the switch: otherwise an agent holding a tunnel keeps its way out for tunnel_max_duration.
    const tunnel = await openTunnel(sl.proxyPort, `127.0.0.1:${tcpEcho.port}`);
    let after: string | Error;
    try {
      expect(await tunnel.roundTrip("open-")).toBe("OPEN-");
      const gauge = await (await fetch(`${sl.adminUrl}/metrics`)).text();
      expect(gauge).toMatch(/^sluice_open_tunnels [1-9]\d*$/m);
      const on = await admin(sl, "/v1/killswitch", { method: "POST", body: '{"enabled":true}' });
      expect(await on.json()).toEqual({ enabled: true });
      after = await tunnel.roundTrip("still-flowing-", 5_000).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    } finally {
      tunnel.close();
      await admin(sl, "/v1/killswitch", { method: "POST", body: '{"enabled":false}' });
    }
    // Either the tunnel was closed, or at least nothing more was relayed through it.
    expect(after).toBeInstanceOf(Error);
  }, T);

  test("turning the kill switch on cuts off a response that is still streaming", async () => {
    // The origin sends a head promising 1 MB, a first piece, then holds the rest.
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const slow = startRawOrigin(async (conn) => {
      if ((await conn.readHead()) === null) return;
      // Not a type sluice holds for injection scanning (text would be held whole before the agent gets any of it).
      conn.write("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\nfirst-piece");
      await held;
      conn.end();
    });
    let got = "";
    let closed = false;
    let wake: () => void = () => {};
    const client = await Bun.connect<undefined>({
      hostname: "127.0.0.1",
      port: sl.proxyPort,
      socket: {
        data(_s, chunk) {
          got += Buffer.from(chunk).toString("latin1");
          wake();
        },
        close() {
          closed = true;
          wake();
        },
        error() {},
      },
    });
    const until = async (pred: () => boolean) => {
      const deadline = performance.now() + 10_000;
      while (!pred() && performance.now() < deadline) await new Promise<void>((r) => ((wake = r), setTimeout(r, 500)));
      return pred();
    };
    try {
      client.write(`GET ${slow.url}/streaming HTTP/1.1\r\nHost: 127.0.0.1:${slow.port}\r\n\r\n`);
      expect(await until(() => got.includes("first-piece"))).toBe(true);
      await admin(sl, "/v1/killswitch", { method: "POST", body: '{"enabled":true}' });
      expect(await until(() => closed)).toBe(true);
      const rec = await sl.waitForLine((l) => l.kind === "http" && l.path === "/streaming");
      expect(rec).toMatchObject({ verdict: "block", rule: "admin.killswitch", reason: "killswitch" });
    } finally {
      client.end();
      release();
      slow.stop();
      await admin(sl, "/v1/killswitch", { method: "POST", body: '{"enabled":false}' });
    }
  }, T);

  test("a malformed kill switch body is 400 and changes nothing", async () => {
    for (const body of ["", "{", '{"enabled":"yes"}', '{"enable":true}', "[true]"]) {
      const res = await admin(sl, "/v1/killswitch", { method: "POST", body });
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
    }
    expect(await (await admin(sl, "/v1/killswitch")).json()).toEqual({ enabled: false });
  }, T);
});

describe("admin API", () => {
  test("/v1/* without a valid bearer token is 401", async () => {
    for (const [path, method] of [["/v1/decisions", "GET"], ["/v1/killswitch", "GET"], ["/v1/killswitch", "POST"], ["/v1/reload", "POST"]] as const) {
      for (const token of [null, "wrong-token", ""]) {
        const res = await admin(sl, path, { method, token, ...(method === "POST" ? { body: '{"enabled":true}' } : {}) });
        expect({ path, method, token, status: res.status }).toEqual({ path, method, token, status: 401 });
        expect(res.headers.get("www-authenticate")).toBe("Bearer");
      }
    }
    // Nothing of the above took effect.
    expect(await (await admin(sl, "/v1/killswitch")).json()).toEqual({ enabled: false });
  }, T);

  test("/v1/decisions lists recent records for the token holder", async () => {
    await curlThrough(sl.proxyUrl, `${echo.url}/listed-decision?secret=zzz`);
    await sl.waitForLine((l) => l.kind === "http" && l.path === "/listed-decision");
    const res = await admin(sl, "/v1/decisions?limit=1000");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as { decisions: Record<string, unknown>[] };
    const hit = body.decisions.find((d) => d.path === "/listed-decision");
    expect(hit).toMatchObject({ kind: "http", verdict: "allow", host: "127.0.0.1" });
    expect(JSON.stringify(body)).not.toContain("secret=zzz");
  }, T);

  test("/healthz and /metrics work without a token, and metrics count requests", async () => {
    const health = await fetch(`${sl.adminUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", mode: "enforce", killswitch: false });

    const count = async () => {
      const res = await fetch(`${sl.adminUrl}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/plain");
      const text = await res.text();
      let http = 0;
      for (const m of text.matchAll(/^sluice_requests_total\{kind="http",[^}]*\} (\d+)$/gm)) http += Number(m[1]);
      const reloads = Number(/^sluice_config_reloads_total\{result="ok"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
      const rejected = Number(/^sluice_config_reloads_total\{result="error"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
      return { http, reloads, rejected, text };
    };
    const before = await count();
    const paths = ["/metrics-1", "/metrics-2", "/metrics-3"];
    for (const p of paths) expect((await curlThrough(sl.proxyUrl, `${echo.url}${p}`)).status).toBe(200);
    expect((await viaLocalhost(sl, "/metrics-blocked")).status).toBe(403);
    for (const p of [...paths, "/metrics-blocked"]) await sl.waitForLine((l) => l.kind === "http" && l.path === p);
    const after = await count();
    expect(after.http - before.http).toBe(4);
    expect(after.text).toMatch(/^sluice_requests_total\{kind="http",verdict="block",rule="egress.deny-host"\} [1-9]\d*$/m);
    // Earlier tests reloaded several times and were rejected at least twice.
    expect(after.reloads).toBeGreaterThanOrEqual(4);
    expect(after.rejected).toBeGreaterThanOrEqual(2);
    expect(after.text).toMatch(/^sluice_killswitch 0$/m);
  }, T);
});

/** A CONNECT tunnel held open by the test, for request/response over time. */
async function openTunnel(proxyPort: number, target: string): Promise<{ roundTrip(s: string, timeoutMs?: number): Promise<string>; close(): void }> {
  let buffer = "";
  let wake: (() => void) | null = null;
  let closed = false;
  const socket: Socket<undefined> = await Bun.connect<undefined>({
    hostname: "127.0.0.1",
    port: proxyPort,
    socket: {
      data(_s, chunk) {
        buffer += Buffer.from(chunk).toString("latin1");
        wake?.();
      },
      close() {
        closed = true;
        wake?.();
      },
      error() {},
    },
  });
  const readUntil = async (pred: (s: string) => boolean, timeoutMs = 10_000) => {
    const deadline = setTimeout(() => wake?.(), timeoutMs);
    const started = performance.now();
    try {
      while (!pred(buffer)) {
        if (closed) throw new Error(`tunnel closed; got ${JSON.stringify(buffer)}`);
        if (performance.now() - started > timeoutMs) throw new Error(`no answer in ${timeoutMs} ms; got ${JSON.stringify(buffer)}`);
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      clearTimeout(deadline);
    }
  };
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  await readUntil((s) => s.includes("\r\n\r\n"));
  const head = buffer.slice(0, buffer.indexOf("\r\n\r\n") + 4);
  if (!head.startsWith("HTTP/1.1 200")) throw new Error(`CONNECT refused: ${head}`);
  buffer = buffer.slice(head.length);
  return {
    async roundTrip(s, timeoutMs) {
      if (closed) throw new Error("tunnel closed");
      socket.write(s);
      await readUntil((b) => b.length >= s.length, timeoutMs);
      const out = buffer.slice(0, s.length);
      buffer = buffer.slice(s.length);
      return out;
    },
    close: () => socket.end(),
  };
}

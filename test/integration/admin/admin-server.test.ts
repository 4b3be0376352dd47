/**
 * The admin API over a real socket on 127.0.0.1, port 0, driven with fetch.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createAdminApp } from "../../../src/admin/app.ts";
import { createMetrics } from "../../../src/admin/metrics.ts";
import { createRecentDecisions } from "../../../src/admin/recent.ts";
import { startAdminServer, type AdminServer } from "../../../src/admin/server.ts";
import type { AuditRecord } from "../../../src/core/types.ts";

const TOKEN = "test-admin-token-0123456789abcdef";

let server: AdminServer;
let base: string;
let killswitchOn = false;
const killswitchCalls: { on: boolean; by: string }[] = [];
let nextReload: { ok: boolean; errors: string[] } | Error = { ok: true, errors: [] };
let reloads = 0;
const unexpected: unknown[] = [];
const metrics = createMetrics();
const recent = createRecentDecisions(50);

function rec(i: number): AuditRecord {
  return { time: `2025-01-01T00:00:${String(i).padStart(2, "0")}.000Z`, kind: "http", agent: "a", host: `h${i}.example`, verdict: i % 2 ? "block" : "allow", rule: i % 2 ? "egress.deny-host" : "egress.allow-host", reason: i % 2 ? "deny_listed" : "allowlisted", duration_ms: i, bytes_out: 10 };
}

beforeAll(() => {
  metrics.registerGauge("sluice_killswitch", "1 when the kill switch is on.", () => (killswitchOn ? 1 : 0));
  const app = createAdminApp({
    token: TOKEN,
    metrics,
    recent,
    reload: async () => {
      reloads++;
      if (nextReload instanceof Error) throw nextReload;
      return nextReload;
    },
    killswitch: {
      get: () => killswitchOn,
      set: (on, by) => {
        killswitchCalls.push({ on, by });
        killswitchOn = on;
      },
    },
    health: () => ({ version: "0.1.0-test", killswitch: killswitchOn }),
    onError: (err) => unexpected.push(err),
  });
  server = startAdminServer({ hostname: "127.0.0.1", port: 0, app });
  base = `http://127.0.0.1:${server.port}`;
  for (let i = 1; i <= 30; i++) {
    recent.record(rec(i));
    metrics.observe(rec(i));
  }
});

afterAll(async () => {
  await server.stop();
});

beforeEach(() => {
  nextReload = { ok: true, errors: [] };
  unexpected.length = 0;
});

const auth = { authorization: `Bearer ${TOKEN}` };

function get(path: string, headers: Record<string, string> = auth): Promise<Response> {
  return fetch(`${base}${path}`, { headers });
}

function post(path: string, body?: string, headers: Record<string, string> = auth): Promise<Response> {
  return fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

describe("admin server", () => {
  test("binds a real port on loopback", () => {
    expect(server.hostname).toBe("127.0.0.1");
    expect(server.port).toBeGreaterThan(0);
  });

  test("GET /healthz needs no token and merges health()", async () => {
    const res = await get("/healthz", {});
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toEqual({ status: "ok", version: "0.1.0-test", killswitch: false });
  });

  test("GET /metrics needs no token and is exposition format 0.0.4", async () => {
    const res = await get("/metrics", {});
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain("# TYPE sluice_requests_total counter");
    expect(text).toContain('sluice_requests_total{kind="http",verdict="block",rule="egress.deny-host"} 15\n');
    expect(text).toContain('sluice_requests_total{kind="http",verdict="allow",rule="egress.allow-host"} 15\n');
    expect(text).toContain('sluice_request_duration_seconds_bucket{kind="http",le="+Inf"} 30\n');
    expect(text).toContain('sluice_bytes_total{direction="out"} 300\n');
    expect(text).toContain("sluice_killswitch 0\n");
  });

  describe("authentication", () => {
    const protectedRoutes: [string, string][] = [
      ["GET", "/v1/decisions"],
      ["POST", "/v1/reload"],
      ["GET", "/v1/killswitch"],
      ["POST", "/v1/killswitch"],
      ["GET", "/v1/does-not-exist"],
    ];
    for (const [method, path] of protectedRoutes) {
      test(`${method} ${path} without a token is 401`, async () => {
        const res = await fetch(`${base}${path}`, { method, body: method === "POST" ? '{"enabled":true}' : undefined });
        expect(res.status).toBe(401);
        expect(res.headers.get("www-authenticate")).toBe("Bearer");
        expect(await res.json()).toEqual({ error: expect.any(String) });
      });
    }

    const wrong = ["Bearer wrong-token-wrong-token", `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${btoa(`admin:${TOKEN}`)}`, TOKEN, "Bearer", "Bearer "];
    for (const header of wrong) {
      test(`a wrong authorization header is 401 and not echoed: ${JSON.stringify(header.slice(0, 20))}`, async () => {
        const res = await get("/v1/killswitch", { authorization: header });
        expect(res.status).toBe(401);
        expect(res.headers.get("www-authenticate")).toBe("Bearer");
        const text = await res.text();
        const presented = header.replace(/^\S+ ?/, "");
        if (presented.length > 0) expect(text).not.toContain(presented);
        expect(JSON.stringify([...res.headers])).not.toContain(TOKEN.slice(0, 12));
      });
    }

    test("a wrong token on POST /v1/killswitch changes nothing", async () => {
      const before = killswitchCalls.length;
      const res = await post("/v1/killswitch", '{"enabled":true}', { authorization: "Bearer nope-nope-nope-nope" });
      expect(res.status).toBe(401);
      expect(killswitchCalls.length).toBe(before);
      expect(killswitchOn).toBe(false);
    });

    test("the scheme is case-insensitive", async () => {
      const res = await get("/v1/killswitch", { authorization: `bearer ${TOKEN}` });
      expect(res.status).toBe(200);
    });
  });

  describe("GET /v1/decisions", () => {
    test("defaults to 100, newest first", async () => {
      const res = await get("/v1/decisions");
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      const body = (await res.json()) as { decisions: AuditRecord[] };
      expect(body.decisions).toHaveLength(30);
      expect(body.decisions[0]?.host).toBe("h30.example");
      expect(body.decisions[29]?.host).toBe("h1.example");
    });

    test("honours limit", async () => {
      const body = (await (await get("/v1/decisions?limit=3")).json()) as { decisions: AuditRecord[] };
      expect(body.decisions.map((d) => d.host)).toEqual(["h30.example", "h29.example", "h28.example"]);
      const max = (await (await get("/v1/decisions?limit=1000")).json()) as { decisions: AuditRecord[] };
      expect(max.decisions).toHaveLength(30);
    });

    for (const bad of ["0", "-1", "1001", "abc", "2.5", "", "1e2", "99999999999"]) {
      test(`limit=${JSON.stringify(bad)} is 400 with a clear error`, async () => {
        const res = await get(`/v1/decisions?limit=${encodeURIComponent(bad)}`);
        expect(res.status).toBe(400);
        expect(await res.json()).toEqual({ error: "limit must be an integer from 1 to 1000" });
      });
    }
  });

  describe("POST /v1/reload", () => {
    test("ok", async () => {
      const before = reloads;
      const res = await post("/v1/reload");
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ok: true });
      expect(reloads).toBe(before + 1);
    });

    test("errors are 422 with the list", async () => {
      nextReload = { ok: false, errors: ["egress.allow[0]: not a host glob", "mode: expected enforce | audit"] };
      const res = await post("/v1/reload");
      expect(res.status).toBe(422);
      expect(await res.json()).toEqual({ ok: false, errors: ["egress.allow[0]: not a host glob", "mode: expected enforce | audit"] });
    });

    test("a throwing reload is a 500 without internals", async () => {
      nextReload = new Error("ENOENT /etc/secret/path/sluice.yaml");
      const res = await post("/v1/reload");
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ error: "internal error" });
      expect(text).not.toContain("/etc/secret");
      expect(unexpected).toHaveLength(1);
    });

    test("GET is not a route", async () => {
      const res = await get("/v1/reload");
      expect(res.status).toBe(404);
    });
  });

  describe("kill switch", () => {
    test("on, off, and the state is visible in GET, healthz and metrics", async () => {
      expect(await (await get("/v1/killswitch")).json()).toEqual({ enabled: false });

      let res = await post("/v1/killswitch", JSON.stringify({ enabled: true }));
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ enabled: true });
      expect(killswitchCalls.at(-1)).toEqual({ on: true, by: "admin-api" });
      expect(await (await get("/v1/killswitch")).json()).toEqual({ enabled: true });
      expect(await (await get("/metrics", {})).text()).toContain("sluice_killswitch 1\n");
      expect(((await (await get("/healthz", {})).json()) as { killswitch: boolean }).killswitch).toBe(true);

      res = await post("/v1/killswitch", '{"enabled": false}');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ enabled: false });
      expect(killswitchCalls.at(-1)).toEqual({ on: false, by: "admin-api" });
      expect(await (await get("/v1/killswitch")).json()).toEqual({ enabled: false });
    });

    const badBodies: [string, string | undefined][] = [
      ["no body", undefined],
      ["not JSON", "enabled=true"],
      ["a string value", '{"enabled":"true"}'],
      ["a number", '{"enabled":1}'],
      ["null", "null"],
      ["an array", "[true]"],
      ["missing key", "{}"],
      ["an unknown key", '{"enabled":true,"extra":1}'],
      ["a misspelt key", '{"enable":true}'],
    ];
    for (const [name, body] of badBodies) {
      test(`body validation: ${name} is 400 and changes nothing`, async () => {
        const before = killswitchCalls.length;
        const res = await post("/v1/killswitch", body);
        expect(res.status).toBe(400);
        const json = (await res.json()) as { error: string };
        expect(json.error).toContain('{"enabled": true}');
        expect(killswitchCalls.length).toBe(before);
      });
    }

    test("an oversized body is refused", async () => {
      const res = await post("/v1/killswitch", JSON.stringify({ enabled: true, pad: "x".repeat(10_000) }));
      expect(res.status).toBe(413);
      expect(killswitchOn).toBe(false);
    });
  });

  test("unknown routes are 404 JSON", async () => {
    for (const path of ["/", "/nope", "/v1/nope"]) {
      const res = await get(path);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: "not found" });
    }
  });
});

describe("startAdminServer", () => {
  test("stop() closes the listener", async () => {
    const own = startAdminServer({ hostname: "127.0.0.1", port: 0, app: { fetch: () => new Response("hi") } });
    const url = `http://127.0.0.1:${own.port}/`;
    expect(await (await fetch(url)).text()).toBe("hi");
    await own.stop();
    await expect(fetch(url)).rejects.toThrow();
  });
});

describe("createAdminApp", () => {
  test("refuses an empty token", () => {
    expect(() =>
      createAdminApp({
        token: "",
        metrics,
        recent,
        reload: async () => ({ ok: true, errors: [] }),
        killswitch: { get: () => false, set: () => undefined },
        health: () => ({}),
      }),
    ).toThrow(/empty/);
  });
});

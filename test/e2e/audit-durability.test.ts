/**
 * The flight recorder when the disk fills, through dist/sluice: run under a file-size limit
 * (`ulimit -f`, with SIGXFSZ ignored so a write past it fails with EFBIG as on a full disk),
 * sluice serves until the log cannot be written; then with audit.on_failure: block every new
 * request, CONNECT and DNS query is refused (503 / NXDOMAIN) and /healthz says failing (503);
 * with continue it serves on and /healthz says degraded.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { rawExchange, startEchoOrigin, type EchoOrigin } from "../helpers/origins.ts";
import { auditTestConfig } from "../helpers/audit.ts";
import { launchSluice, tempDir, type Launched } from "../helpers/sluice.ts";

const T = 120_000;
const dir = tempDir("slt-audit-full-");
let echo: EchoOrigin;

// 400 KiB per file: room for SLUICE_HOME's CA bundle (~220 KiB), about 900 records in the segment.
const LIMITED = ["bash", "-c", `trap '' XFSZ; ulimit -f 400; exec "$0" "$@"`];

const config = (onFailure: string) => auditTestConfig({ audit: ["fsync: always", `on_failure: ${onFailure}`] });

beforeAll(async () => {
  echo = await startEchoOrigin();
});
afterAll(async () => {
  await echo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (s: Launched, path: string) => fetch(`${echo.url}${path}`, { proxy: s.proxyUrl, keepalive: false });
const health = async (s: Launched) => {
  const r = await fetch(`${s.adminUrl}/healthz`);
  return { code: r.status, body: (await r.json()) as { status: string; audit: Record<string, unknown> } };
};

/** Requests until one is not a 200 (or `max`): returns how many passed and the first other response. */
async function fill(s: Launched, max = 5000): Promise<{ passed: number; refused: Response | null }> {
  for (let i = 0; i < max; i++) {
    const r = await get(s, `/fill/${i}`);
    if (r.status !== 200) return { passed: i, refused: r };
    await r.arrayBuffer();
  }
  return { passed: max, refused: null };
}

describe("a full disk (file-size limit)", () => {
  test(
    "on_failure block: requests, CONNECT and DNS are refused once the log cannot be written; /healthz says failing",
    async () => {
      const d = sluiceDir("block");
      const s = await launchSluice({ configYaml: config("block"), dir: d, prefix: LIMITED, label: "ulimit -f 400" });
      try {
        expect((await health(s)).body).toMatchObject({ status: "ok", audit: { status: "ok" } });
        const { passed, refused } = await fill(s);
        // Served while the log took records, and refused once it did not.
        expect(passed).toBeGreaterThan(100);
        expect(refused?.status).toBe(503);
        expect(refused?.headers.get("x-sluice-rule")).toBe("audit.unavailable");
        expect(refused?.headers.get("x-sluice-reason")).toBe("audit_unavailable");
        const body = (await refused!.json()) as { error: string; rule: string; reason: string };
        expect(body).toMatchObject({ error: "blocked by sluice", rule: "audit.unavailable" });
        expect(JSON.stringify(body)).toContain("EFBIG");
        // And stays refused: nothing passes unrecorded.
        expect((await get(s, "/after")).status).toBe(503);

        const h = await health(s);
        expect(h.code).toBe(503);
        expect(h.body).toMatchObject({ status: "failing", audit: { status: "failing", on_failure: "block" } });
        expect(String(h.body.audit.error)).toStartWith("EFBIG");

        const connect = await rawExchange(s.proxyPort, [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`], { until: (b) => b.includes("\r\n\r\n") });
        expect(connect.data.toString("latin1")).toMatch(/^HTTP\/1\.1 503 .*\r\n[\s\S]*x-sluice-rule: audit\.unavailable/);

        const dnsPort = String(s.lines.find((l) => l.msg === "sluice ready")?.dns).split(":").pop();
        const dig = Bun.spawnSync(["dig", `@127.0.0.1`, "-p", dnsPort!, "allowed.example", "A", "+tries=1", "+time=3"]);
        const out = dig.stdout.toString();
        expect(out).toContain("status: NXDOMAIN");
        expect(out).toMatch(/EDE: 15 \(Blocked\).*audit\.unavailable/);

        const logged = s.lines.find((l) => l.msg === "cannot write decision records; keeping them in memory");
        expect(String(logged?.on_failure)).toStartWith("block");
        // The segment ends where the limit cut it; what it holds is still a chain.
        const seg = readdirSync(join(d, "log")).filter((f) => f.endsWith(".jsonl"))[0]!;
        expect(readFileSync(join(d, "log", seg)).length).toBe(400 * 1024);
      } finally {
        await s.stop();
      }
    },
    T,
  );

  test(
    "on_failure continue: requests keep passing; /healthz says degraded",
    async () => {
      const s = await launchSluice({ configYaml: config("continue"), dir: sluiceDir("continue"), prefix: LIMITED, label: "ulimit -f 400" });
      try {
        // Far more requests than the log can take: none is refused.
        const { passed } = await fill(s, 1500);
        expect(passed).toBe(1500);
        const h = await health(s);
        expect(h.code).toBe(200);
        expect(h.body).toMatchObject({ status: "degraded", audit: { status: "failing", on_failure: "continue" } });
        expect(String(h.body.audit.error)).toStartWith("EFBIG");
      } finally {
        await s.stop();
      }
    },
    T,
  );
});

/** A fresh directory for one sluice (config, home, log). */
function sluiceDir(name: string): string {
  const path = join(dir, name);
  mkdirSync(path);
  return path;
}

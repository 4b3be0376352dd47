/**
 * Crash recovery through dist/sluice: kill -9 while it proxies a stream of requests, restart on
 * the same audit.dir, and the log verifies (exit 0), a torn last line cut off and said in a
 * `recovered` record, the chain continuing across the restart with no gap in seq.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startEchoOrigin, type EchoOrigin } from "../helpers/origins.ts";
import { auditTestConfig, runSluice } from "../helpers/audit.ts";
import { launchSluice, tempDir } from "../helpers/sluice.ts";

const T = 120_000;
const dir = tempDir("slt-audit-crash-");
const logDir = join(dir, "log");
let echo: EchoOrigin;

const config = auditTestConfig({ audit: ["segment_size: 64KiB", "checkpoint_every: { records: 50 }"] });

beforeAll(async () => {
  echo = await startEchoOrigin();
});
afterAll(async () => {
  await echo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const segments = () => readdirSync(logDir).filter((f) => f.endsWith(".jsonl")).sort();
const allRecords = () => segments().flatMap((s) => readFileSync(join(logDir, s), "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>));
const verify = () => {
  const r = runSluice(join(dir, "home"), ["audit", "verify", logDir, "--json"]);
  return { code: r.code, report: JSON.parse(r.out || "{}") as Record<string, unknown>, err: r.err };
};

describe("kill -9 mid-load, restart, verify", () => {
  test(
    "the log verifies and the chain continues across the restart",
    async () => {
      const first = await launchSluice({ configYaml: config, dir });
      // Four clients stream requests; the process is killed while they are in flight.
      let ok = 0;
      let stop = false;
      const client = async (c: number) => {
        for (let i = 0; !stop; i++) {
          try {
            const r = await fetch(`${echo.url}/c${c}/${i}`, { proxy: first.proxyUrl, keepalive: false });
            await r.arrayBuffer();
            if (r.status === 200) ok++;
          } catch {
            return; // the proxy is gone
          }
        }
      };
      const clients = [0, 1, 2, 3].map(client);
      while (ok < 400) await Bun.sleep(5);
      first.proc.kill("SIGKILL");
      expect(await first.proc.exited).not.toBe(0);
      stop = true;
      await Promise.all(clients);

      // A crash rarely tears a line on a local disk (each batch is one write), so finish the job
      // a torn write would do: half a record at the end of the last segment.
      const last = join(logDir, segments().at(-1)!);
      appendFileSync(last, '{"agent":"anonymous","client":"127.0.0.1","detail":"torn by the te');

      const second = await launchSluice({ configYaml: config, dir });
      const ready = second.lines.find((l) => l.msg === "audit log ready");
      expect(String(ready?.repaired)).toContain("cut a torn last line");
      for (let i = 0; i < 5; i++) expect((await fetch(`${echo.url}/after/${i}`, { proxy: second.proxyUrl, keepalive: false })).status).toBe(200);
      expect(await second.stop()).toBe(0);

      const v = verify();
      expect(v.err).toBe("");
      expect(v.report).toMatchObject({ ok: true });
      expect(v.code).toBe(0);

      const records = allRecords();
      // One chain: seq 0..n-1 with no gap, each prev the hash before it, across segments and the restart.
      records.forEach((r, i) => {
        expect(r.seq).toBe(i);
        if (i > 0) expect(r.prev).toBe(records[i - 1]!.hash);
      });
      const recovered = records.findIndex((r) => r.kind === "recovered");
      // fsync interval: the lines still batched in memory (up to ~100 ms) die with the process.
      expect(recovered).toBeGreaterThan(200);
      expect(String(records[recovered]!.detail)).toMatch(/cut a torn last line \(\d+ bytes/);
      // Records of the first run before it, of the second after it.
      expect(records.slice(0, recovered).filter((r) => r.kind === "http").length).toBeGreaterThan(200);
      expect(records.slice(recovered).filter((r) => r.kind === "http" && String(r.path).startsWith("/after/")).length).toBe(5);
      expect(records.filter((r) => r.rule === "lifecycle.start").length).toBe(2);
      expect(records.at(-1)).toMatchObject({ kind: "tree_head", trigger: "close" });
    },
    T,
  );
});

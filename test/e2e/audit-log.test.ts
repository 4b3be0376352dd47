/**
 * The flight recorder end to end through dist/sluice: `sluice run` writes one proxied request
 * into the signed log, `sluice audit verify` says it is intact (exit 0), a tampered byte makes it
 * exit 1 with the seq, a missing directory exit 2; a restart continues the same chain.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { curlThrough, startEchoOrigin, type EchoOrigin } from "../helpers/origins.ts";
import { auditTestConfig, runSluice } from "../helpers/audit.ts";
import { launchSluice, tempDir } from "../helpers/sluice.ts";

const T = 60_000;
const dir = tempDir("slt-audit-");
const home = join(dir, "home");
const logDir = join(dir, "log");
let echo: EchoOrigin;

const config = auditTestConfig({ denyLocalhost: true, audit: ["checkpoint_every: { records: 2 }"] });
const run = (args: string[]) => runSluice(home, args);
const segment = () => join(logDir, readdirSync(logDir).filter((f) => f.endsWith(".jsonl")).sort()[0]!);
const records = () => readFileSync(segment(), "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);

/** One sluice run: start on the shared dir, proxy one request, stop with SIGTERM. */
async function oneRun(path: string): Promise<void> {
  const s = await launchSluice({ configYaml: config, dir });
  const r = await curlThrough(s.proxyUrl, `${echo.url}${path}`);
  expect(r.status).toBe(200);
  expect(await s.stop()).toBe(0);
}

beforeAll(async () => {
  echo = await startEchoOrigin();
});
afterAll(async () => {
  await echo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("sluice run writes a log that sluice audit verify checks", () => {
  test(
    "intact after a run, tampered after one edited byte, unreadable when absent; a restart continues the chain",
    async () => {
      await oneRun("/first?token=not-logged");
      const first = records();
      const http = first.find((r) => r.kind === "http");
      expect(http).toMatchObject({ verdict: "allow", host: "127.0.0.1", path: "/first", status: 200 });
      // The query (where secrets often ride) is never recorded.
      expect(readFileSync(segment(), "utf8")).not.toContain("not-logged");
      expect(first.map((r) => r.kind)).toContain("lifecycle");
      expect(first.at(-1)).toMatchObject({ kind: "tree_head", trigger: "close", tree_size: first.length - 1 });

      const clean = run(["audit", "verify", logDir]);
      expect(clean.out).toContain("result:     ok");
      expect(clean.code).toBe(0);

      // The public key, exported, verifies the log on its own.
      const pub = run(["audit", "pubkey"]);
      expect(pub.code).toBe(0);
      expect(pub.out).toStartWith("-----BEGIN PUBLIC KEY-----");
      writeFileSync(join(dir, "sluice.pub"), pub.out);
      const independent = run(["audit", "verify", logDir, "--pubkey", join(dir, "sluice.pub"), "--json"]);
      expect(JSON.parse(independent.out)).toMatchObject({ ok: true, records: first.length });
      expect(independent.code).toBe(0);

      // A restart appends to the same chain; the whole log still verifies.
      await oneRun("/second");
      const both = records();
      expect(both.length).toBeGreaterThan(first.length);
      expect(both[first.length]).toMatchObject({ seq: first.length, prev: first.at(-1)!.hash });
      expect(run(["audit", "verify", logDir]).code).toBe(0);

      // One byte of the first request's record changed: exit 1, at its seq.
      const text = readFileSync(segment(), "utf8");
      writeFileSync(segment(), text.replace('"path":"/first"', '"path":"/fir5t"'));
      const tampered = run(["audit", "verify", logDir]);
      expect(tampered.out).toContain(`TAMPERED: modified at seq ${http!.seq as number} (audit-000001.jsonl line ${(http!.seq as number) + 1})`);
      expect(tampered.code).toBe(1);

      const missing = run(["audit", "verify", join(dir, "nowhere")]);
      expect(missing.err).toContain("cannot read");
      expect(missing.code).toBe(2);
    },
    T,
  );
});

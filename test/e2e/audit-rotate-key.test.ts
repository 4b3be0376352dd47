/**
 * `sluice audit rotate-key` through dist/sluice: refused while sluice runs (the log's LOCK); with
 * sluice stopped it hands signing to a new key in SLUICE_HOME, the next `sluice run` signs with
 * it, and `sluice audit verify` passes under the old public key and under the new one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { auditTestConfig, runSluice } from "../helpers/audit.ts";
import { curlThrough, startEchoOrigin, type EchoOrigin } from "../helpers/origins.ts";
import { launchSluice, tempDir } from "../helpers/sluice.ts";

const T = 60_000;
const dir = tempDir("slt-audit-rotate-");
const home = join(dir, "home");
const config = join(dir, "sluice.yaml");
let echo: EchoOrigin;
beforeAll(async () => {
  echo = await startEchoOrigin();
});
afterAll(async () => {
  await echo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("sluice audit rotate-key", () => {
  test(
    "hands signing to a new key between two runs; the log verifies under either key",
    async () => {
      const first = await launchSluice({ configYaml: auditTestConfig(), dir });
      expect((await curlThrough(first.proxyUrl, `${echo.url}/before`)).status).toBe(200);
      const busy = runSluice(home, ["audit", "rotate-key", "--config", config]);
      expect(busy.code).toBe(1);
      expect(busy.err).toContain("another process");
      expect(await first.stop()).toBe(0);
      const oldPub = runSluice(home, ["audit", "pubkey"]).out;
      writeFileSync(join(dir, "old.pub"), oldPub);

      const rotated = runSluice(home, ["audit", "rotate-key", "--config", config]);
      expect(rotated.err).toBe("");
      expect(rotated.code).toBe(0);
      expect(rotated.out).toMatch(/^rotated: +[0-9a-f]{64} -> [0-9a-f]{64}\nnew key: .*audit-signing-key\.pem\nretired: .*audit-signing-key\.retired-[0-9a-f]{12}\.pem/);
      const newPub = runSluice(home, ["audit", "pubkey"]).out;
      expect(newPub).not.toBe(oldPub);
      writeFileSync(join(dir, "new.pub"), newPub);

      const second = await launchSluice({ configYaml: auditTestConfig(), dir });
      expect((await curlThrough(second.proxyUrl, `${echo.url}/after`)).status).toBe(200);
      expect(await second.stop()).toBe(0);

      for (const pub of ["old.pub", "new.pub"]) {
        const v = runSluice(home, ["audit", "verify", join(dir, "log"), "--pubkey", join(dir, pub)]);
        expect([pub, v.code]).toEqual([pub, 0]);
        expect(v.out).toMatch(/keys: +[0-9a-f]{64} -> [0-9a-f]{64} \(handed over by key_rotation records\)/);
      }
      const show = runSluice(home, ["audit", "show", join(dir, "log"), "--json", "--rule", "audit.key-rotation"]);
      expect(show.code).toBe(0);
      expect(JSON.parse(show.out)).toMatchObject({ kind: "key_rotation", verdict: "allow" });
    },
    T,
  );

  test("a key named by audit.signing_key_file is not replaced: --new-key is required", () => {
    writeFileSync(join(dir, "named.yaml"), auditTestConfig({ audit: ["signing_key_file: ./mine.pem"] }));
    const r = runSluice(home, ["audit", "rotate-key", "--config", join(dir, "named.yaml")]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("pass it with --new-key FILE");
  });
});

/**
 * The helper scripts in nftables/ (and .ci/run): shellcheck-clean and `set -euo pipefail`; run
 * as root inside a namespace of the test's own against dist/sluice, so no table of the host's is
 * ever read or touched: check-host-mode.sh passes a rendered table through `nft -c` and installs
 * nothing, sluice-tables.sh lists sluice's tables (and only those) with their counters.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createNetns, netnsSupport, type Netns } from "../helpers/netns.ts";
import { BIN, ROOT, tempDir } from "../helpers/sluice.ts";

const T = 30_000;
const SCRIPTS = readdirSync(join(ROOT, "nftables"))
  .filter((f) => f.endsWith(".sh"))
  .map((f) => join(ROOT, "nftables", f));
const shellcheck = Bun.which("shellcheck");
if (shellcheck === null) console.warn("nft-scripts.test.ts: skipping shellcheck: it is not installed (apt-get install shellcheck; .ci/run does)");
const support = netnsSupport();
const ok = support.ok && Bun.which("nft") !== null;
if (!ok) console.warn(`nft-scripts.test.ts: skipping the runs: ${support.ok ? "nft is not installed" : support.reason}`);

const dir = tempDir("slt-nft-scripts-");
const config = join(dir, "sluice.yaml");
let ns: Netns | null = null;

beforeAll(() => {
  writeFileSync(config, ['version: 1', 'proxy: { listen: "127.0.0.1:18888", transparent_listen: "127.0.0.1:18890" }', 'dns: { listen: "127.0.0.1:18853" }', ""].join("\n"));
  if (ok) ns = createNetns();
});

afterAll(() => {
  ns?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const run = async (argv: string[]) => {
  const p = Bun.spawn([...ns!.prefix, ...argv], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE: BIN } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { out, err, code };
};
const script = (name: string) => join(ROOT, "nftables", name);

describe("nftables/ helper scripts", () => {
  test("there are some, each with set -euo pipefail", () => {
    expect(SCRIPTS.map((s) => s.split("/").pop()).sort()).toEqual(["check-host-mode.sh", "sluice-tables.sh"]);
    for (const s of [...SCRIPTS, join(ROOT, ".ci/run")]) expect(readFileSync(s, "utf8")).toMatch(/^#!\/usr\/bin\/env bash\n(?:#.*\n)*set -euo pipefail\n/);
  });

  test.skipIf(shellcheck === null)("shellcheck finds nothing in them, nor in .ci/run", () => {
    const r = Bun.spawnSync([shellcheck!, ...SCRIPTS, join(ROOT, ".ci/run")], { stdout: "pipe", stderr: "pipe" });
    expect(`${r.stdout}${r.stderr}`).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test.skipIf(!ok)(
    "check-host-mode.sh: a rendered table passes nft -c and nothing is installed; a bad config or no arguments fail",
    async () => {
      const good = await run([script("check-host-mode.sh"), "--uid", "nobody", "--config", config]);
      expect([good.code, good.out, good.err]).toEqual([0, `ok: the host-mode table for --uid nobody --config ${config} passes nft -c\n`, ""]);
      expect((await run(["nft", "list", "tables"])).out).toBe("");
      const bad = await run([script("check-host-mode.sh"), "--uid", "no-such-user-slt", "--config", config]);
      expect(bad.code).not.toBe(0);
      expect(bad.err).toContain("no-such-user-slt");
      const none = await run([script("check-host-mode.sh")]);
      expect([none.code, none.err.includes("check-host-mode.sh --uid agent")]).toEqual([2, true]);
    },
    T,
  );

  test.skipIf(!ok)(
    "sluice-tables.sh: lists sluice's tables with their counters, and only those",
    async () => {
      const empty = await run([script("sluice-tables.sh")]);
      expect([empty.code, empty.out, empty.err]).toEqual([0, "", "no sluice tables\n"]);
      // Someone else's table, and sluice's host-mode table.
      expect((await run(["nft", "add", "table", "inet", "not_sluice"])).code).toBe(0);
      const applied = await run([BIN, "nft", "apply", "--host", "--uid", "nobody", "--config", config]);
      expect(applied.code).toBe(0);
      const names = await run([script("sluice-tables.sh"), "--names"]);
      expect([names.code, names.out]).toEqual([0, "inet sluice_host\n"]);
      const full = await run([script("sluice-tables.sh")]);
      expect(full.out).toStartWith("table inet sluice_host {");
      expect(full.out).toContain("counter packets 0 bytes 0 reject");
      expect(full.out).not.toContain("not_sluice");
      expect((await run([script("sluice-tables.sh"), "--bogus"])).code).toBe(2);
    },
    T,
  );
});

/**
 * `sluice install systemd` and `sluice health` through dist/sluice: the unit written under a
 * prefix passes `systemd-analyze verify`, with and without host mode, and holds the sandbox the
 * README promises; `sluice health --wait` answers 0 once a sluice is up and 1 when none is.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, startSluice, tempDir } from "../helpers/sluice.ts";

const dir = tempDir("slt-install-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const analyze = Bun.which("systemd-analyze");
if (!analyze) console.warn("install-systemd.test.ts: systemd-analyze is not installed: the unit is written but not verified");

const cli = (args: string[]) => {
  const r = Bun.spawnSync([BIN, ...args], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

describe("sluice install systemd", () => {
  test("writes a sandboxed unit that systemd-analyze verify accepts, host mode's privileged steps apart", () => {
    writeFileSync(join(dir, "sluice.yaml"), "version: 1\n");
    for (const host of [[], ["--host-mode", "nobody"]]) {
      const prefix = join(dir, host.length ? "with-host" : "plain");
      const r = cli(["install", "systemd", "--prefix", prefix, "--binary", BIN, "--config", join(dir, "sluice.yaml"), ...host]);
      expect([r.code, r.err]).toEqual([0, ""]);
      const file = join(prefix, "etc/systemd/system/sluice.service");
      expect(r.out).toContain(`wrote ${file}`);
      const unit = readFileSync(file, "utf8");
      for (const line of ["DynamicUser=yes", "StateDirectory=sluice", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=", "Restart=on-failure", `ExecStartPost=${BIN} health --config ${join(dir, "sluice.yaml")} --wait 30`]) {
        expect(unit.split("\n")).toContain(line);
      }
      expect(unit.includes(`ExecStartPre=+${BIN} nft apply --host --uid nobody`)).toBe(host.length > 0);
      // Fail closed: a stopped or crashed sluice leaves the agent's table in place.
      expect(unit.split("\n").some((l) => l.startsWith("ExecStopPost="))).toBe(false);
      if (analyze) {
        const v = Bun.spawnSync([analyze, "verify", "--man=no", file], { stdout: "pipe", stderr: "pipe" });
        expect([v.exitCode, v.stderr.toString()]).toEqual([0, ""]);
      }
    }
  });

  test("bad input is a usage error: a relative config, root for host mode, an unknown target", () => {
    expect(cli(["install", "systemd", "--stdout", "--config", "sluice.yaml"]).code).toBe(2);
    expect(cli(["install", "systemd", "--stdout", "--host-mode", "root"]).code).toBe(2);
    expect(cli(["install", "launchd"]).code).toBe(2);
    expect(cli(["install", "systemd", "--stdout"]).out).toContain("[Service]");
  });
});

describe("sluice health", () => {
  test("0 with the health document once sluice is up, 1 when nothing answers", async () => {
    mkdirSync(join(dir, "run"), { recursive: true });
    const s = await startSluice('version: 1\nproxy: { listen: "127.0.0.1:0" }\nadmin: { listen: "127.0.0.1:0" }\n', { dir: join(dir, "run") });
    try {
      const cfg = join(dir, "health.yaml");
      writeFileSync(cfg, `version: 1\nadmin: { listen: "127.0.0.1:${s.adminPort}" }\n`);
      const p = Bun.spawn([BIN, "health", "--config", cfg, "--wait", "5"], { stdout: "pipe", stderr: "pipe" });
      const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
      expect(code).toBe(0);
      expect(JSON.parse(out)).toMatchObject({ status: "ok" });
    } finally {
      await s.stop();
    }
    const none = join(dir, "none.yaml");
    writeFileSync(none, 'version: 1\nadmin: { listen: "127.0.0.1:9" }\n');
    const r = Bun.spawn([BIN, "health", "--config", none, "--wait", "0.3"], { stdout: "pipe", stderr: "pipe" });
    const [err, code] = await Promise.all([new Response(r.stderr).text(), r.exited]);
    expect(code).toBe(1);
    expect(err).toContain("no answer from http://127.0.0.1:9/healthz");
    // A sluice listening on every address (a container's 0.0.0.0, ::) is asked over loopback.
    for (const [listen, url] of [["0.0.0.0:9", "http://127.0.0.1:9/healthz"], ["'[::]:9'", "http://[::1]:9/healthz"]] as const) {
      writeFileSync(none, `version: 1\nadmin: { listen: ${listen} }\n`);
      const any = Bun.spawn([BIN, "health", "--config", none], { stdout: "pipe", stderr: "pipe" });
      const [anyErr, anyCode] = await Promise.all([new Response(any.stderr).text(), any.exited]);
      expect(anyCode).toBe(1);
      expect(anyErr).toContain(`no answer from ${url}`);
    }
  });
});

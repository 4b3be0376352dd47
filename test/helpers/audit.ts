/**
 * Shared by the flight-recorder end-to-end tests: a config that proxies to loopback origins and
 * keeps the signed log in ./log next to it (no plain copy), and `sluice` run as a command.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BIN } from "./sluice.ts";

/** The config; `audit` lines are added to the audit section, `denyLocalhost` keeps localhost out of egress. */
export function auditTestConfig(opts: { audit?: readonly string[]; denyLocalhost?: boolean } = {}): string {
  return [
    "version: 1",
    'proxy: { listen: "127.0.0.1:0", require_agent: false }',
    'admin: { listen: "127.0.0.1:0" }',
    "egress:",
    ...(opts.denyLocalhost ? ['  deny: ["localhost"]'] : []),
    '  ports: { http: ["1-65535"], connect: ["1-65535"] }',
    "  trusted_cidrs: [127.0.0.1/32]",
    "audit:",
    "  dir: ./log",
    '  file: "off"',
    ...(opts.audit ?? []).map((l) => `  ${l}`),
    "",
  ].join("\n");
}

/** Runs `dist/sluice args` with SLUICE_HOME `home` (stdin: the given text, else none): exit code and output. */
export function runSluice(home: string, args: readonly string[], stdin?: string): { code: number; out: string; err: string } {
  const r = Bun.spawnSync([BIN, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: home }, stdin: stdin === undefined ? "ignore" : Buffer.from(stdin) });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** Every record of a flight-recorder directory, segments in order (tree heads included). */
export function logRecords(dir: string): Record<string, unknown>[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), "utf8").trim().split("\n"))
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

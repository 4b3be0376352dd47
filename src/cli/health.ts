/**
 * `sluice health [--config FILE] [--wait SECONDS]`: asks the running sluice's admin API
 * (admin.listen of the config) for /healthz, and exits 0 when it answers 200. With --wait it asks
 * again every 200 ms until then (the systemd unit's readiness check, src/deploy/systemd.ts).
 */
import { parseArgs } from "node:util";
import { readConfig } from "../config/load.ts";
import { ConfigError } from "../core/errors.ts";
import { configPath } from "./paths.ts";
import { EXIT, UsageError } from "./usage.ts";

export const HELP = `Usage: sluice health [--config FILE] [--wait SECONDS]

Asks the sluice running with FILE's config (its admin.listen) for /healthz and prints the answer.
--wait SECONDS: asks again every 200 ms until it answers 200, for at most that long.

Exit status: 0 healthy (200), 1 not (no answer, or 503: failing), 2 usage error.`;

export async function healthCommand(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: "string", short: "c" }, wait: { type: "string" } }, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`health takes no arguments (got ${positionals[0]})`);
  const waitS = values.wait === undefined ? 0 : Number(values.wait);
  if (!Number.isFinite(waitS) || waitS < 0 || waitS > 3600) throw new UsageError("--wait takes seconds, 0 to 3600");
  let url: string;
  try {
    const config = await readConfig(configPath(values.config));
    const a = config.admin.listen;
    // Listening on every address (a container's 0.0.0.0): asked over loopback.
    const host = a.hostname === "0.0.0.0" ? "127.0.0.1" : a.hostname === "::" ? "::1" : a.hostname;
    url = `http://${host.includes(":") ? `[${host}]` : host}:${a.port}/healthz`;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`sluice health: invalid config: ${e.message}\n`);
    return EXIT.failure;
  }
  const deadline = performance.now() + waitS * 1000;
  let last = "no answer";
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (res.status === 200) {
        out(`${body}\n`);
        return EXIT.ok;
      }
      last = `${res.status} ${body}`;
    } catch (e) {
      last = `no answer from ${url}: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (performance.now() >= deadline) break;
    await Bun.sleep(200);
  }
  err(`sluice health: ${last}\n`);
  return EXIT.failure;
}

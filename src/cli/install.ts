/**
 * `sluice install systemd [--prefix DIR] [--binary PATH] [--config PATH] [--host-mode USER]
 * [--stdout]`: writes (or prints) sluice.service (src/deploy/systemd.ts) into
 * PREFIX/etc/systemd/system. It does not enable or start it: `systemctl daemon-reload` and
 * `systemctl enable --now sluice` are the operator's.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { renderSystemdUnit } from "../deploy/systemd.ts";
import { COMPILED } from "./build-info.ts";
import { EXIT, UsageError } from "./usage.ts";

export const HELP = `Usage: sluice install systemd [--prefix DIR] [--binary PATH] [--config PATH] [--host-mode USER] [--stdout]

Writes sluice.service to PREFIX/etc/systemd/system (PREFIX default /): sluice run as a dynamic
user, state in /var/lib/sluice, the filesystem read-only but for it, no capabilities,
Restart=on-failure, started once /healthz answers. --host-mode USER adds the host-mode table
for USER (sluice nft apply before start, remove after stop, the only privileged steps).
--binary  the sluice binary (default: this one); --config  default /etc/sluice/sluice.yaml.
--stdout  print the unit instead of writing it.

Then: systemctl daemon-reload && systemctl enable --now sluice`;

export async function installCommand(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [what, ...rest] = args;
  if (what !== "systemd") throw new UsageError(what === undefined ? "install needs a target: systemd" : `unknown install target '${what}' (only systemd)`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: { prefix: { type: "string" }, binary: { type: "string" }, config: { type: "string" }, "host-mode": { type: "string" }, stdout: { type: "boolean", default: false } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  // From source, this process is bun running src/main.ts: not a binary a unit can start.
  if (values.binary === undefined && !COMPILED) throw new UsageError("not running as the compiled binary: pass --binary /path/to/sluice");
  const binary = resolve(values.binary ?? process.execPath);
  const config = values.config ?? "/etc/sluice/sluice.yaml";
  if (!isAbsolute(config)) throw new UsageError(`--config must be an absolute path (the service does not run from here): ${config}`);
  let unit: string;
  try {
    unit = renderSystemdUnit({ binary, config, ...(values["host-mode"] !== undefined ? { hostModeUser: values["host-mode"] } : {}) });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (values.stdout) {
    out(unit);
    return EXIT.ok;
  }
  const dir = join(resolve(values.prefix ?? "/"), "etc/systemd/system");
  const file = join(dir, "sluice.service");
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const existed = existsSync(file);
    writeFileSync(file, unit, { mode: 0o644 });
    out(`${existed ? "replaced" : "wrote"} ${file}\nthen: systemctl daemon-reload && systemctl enable --now sluice\n`);
    return EXIT.ok;
  } catch (e) {
    err(`sluice install systemd: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`);
    return EXIT.failure;
  }
}

import { DEFAULT_CONFIG_TEXT } from "../config/load.ts";
import { initSidecarCommand, SIDECAR_HELP, SIDECAR_USAGE } from "./init-sidecar.ts";
import { UsageError } from "./usage.ts";

export const HELP = `Usage: sluice init
       ${SIDECAR_USAGE}

sluice init prints the embedded default policy, a starting point for your own:
  sluice init > sluice.yaml && sluice check-config sluice.yaml

${SIDECAR_HELP}

Exit status: 0 ok, 1 invalid input (nothing is written), 2 usage error.`;

export async function initCommand(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  if (args[0] === "sidecar") return initSidecarCommand(args.slice(1), out, err);
  if (args.length > 0) throw new UsageError(`init takes no arguments but the target sidecar (got ${args[0]})`);
  out(DEFAULT_CONFIG_TEXT);
  return 0;
}

import { ConfigError } from "../core/errors.ts";
import { loadConfig } from "../config/load.ts";
import { EXIT, UsageError } from "./usage.ts";

export const HELP = `Usage: sluice check-config FILE

Validates a config file: YAML syntax, the schema (unknown keys are errors), host patterns,
CIDRs and agent token files. Prints every problem with its key path.

Exit status: 0 valid, 1 invalid, 2 usage error.`;

export async function checkConfigCommand(args: string[], out: (s: string) => void): Promise<number> {
  if (args.length !== 1 || args[0]!.startsWith("-")) throw new UsageError("check-config takes exactly one FILE");
  try {
    const loaded = await loadConfig(args[0]!);
    out(`ok: ${loaded.path} (mode ${loaded.policy.mode}, digest ${loaded.policy.digest})\n`);
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    out(`invalid: ${args[0]}\n`);
    for (const i of err.issues) out(`  ${i.path || "(root)"}: ${i.message}\n`);
    return EXIT.failure;
  }
}

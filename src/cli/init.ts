import { DEFAULT_CONFIG_TEXT } from "../config/load.ts";
import { UsageError } from "./usage.ts";

export const HELP = `Usage: sluice init

Prints the embedded default policy, a starting point for your own:
  sluice init > sluice.yaml && sluice check-config sluice.yaml`;

export function initCommand(args: string[], out: (s: string) => void): number {
  if (args.length > 0) throw new UsageError(`init takes no arguments (got ${args[0]})`);
  out(DEFAULT_CONFIG_TEXT);
  return 0;
}

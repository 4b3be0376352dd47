/**
 * `sluice scan [--as text] [FILE|-]`: the DLP engine offline, e.g. as a pre-commit hook or in CI.
 * Prints JSON findings (rule, decoders, preview; never the value). Exit 0 clean, 1 findings,
 * 2 usage or input error (ARCHITECTURE.md contracts).
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { loadRuleFiles } from "../config/rule-files.ts";
import { compileRulePack } from "../scan/rules/compile.ts";
import { scanText } from "../scan/text-scan.ts";
import { EXIT, UsageError } from "./usage.ts";

export const HELP = `Usage: sluice scan [--as text] [FILE|-]

Scans a file (or standard input) for credentials and other sensitive data with sluice's DLP
rules, through its decoders (percent, base64, base32, hex, entities, escapes, Unicode tricks).
Prints {"findings":[{"rule","preview","via"}...]} as JSON; values are never printed.

  --as text   the input is plain text (the default; request, response and mcp come later)

Exit status: 0 nothing found, 1 findings, 2 usage or input error.`;

/** Inputs larger than this are refused rather than scanned partially. */
const MAX_INPUT_BYTES = 64 * 1024 * 1024;

export async function scanCommand(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { as: { type: "string", default: "text" } }, strict: true, allowPositionals: true });
  if (values.as !== "text") throw new UsageError(`--as ${values.as}: only "text" is supported in this version`);
  if (positionals.length > 1) throw new UsageError("scan takes one FILE (or - for standard input)");
  const source = positionals[0] ?? "-";
  let input: Buffer;
  try {
    input = source === "-" ? Buffer.from(await Bun.stdin.arrayBuffer()) : await readFile(source);
  } catch (e) {
    err(`sluice scan: cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`);
    return EXIT.usage;
  }
  if (input.length > MAX_INPUT_BYTES) {
    err(`sluice scan: ${source} is larger than ${MAX_INPUT_BYTES} bytes\n`);
    return EXIT.usage;
  }
  const rules = compileRulePack(await loadRuleFiles());
  const findings = scanText(rules, input.toString("utf8")).map((f) => ({ rule: f.rule, preview: f.preview, via: f.via, location: "text" }));
  out(`${JSON.stringify({ findings }, null, 2)}\n`);
  return findings.length > 0 ? 1 : EXIT.ok;
}

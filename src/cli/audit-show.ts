/**
 * `sluice audit show`: the records of the signed log as a table or JSON lines, filtered by time,
 * verdict, agent and rule. It reads, it does not verify (that is `sluice audit verify`).
 */
import { parseArgs } from "node:util";
import { readLogRecords, type LogLine } from "../audit/read-log.ts";
import { UnreadableLogError } from "../audit/verify.ts";
import { TREE_HEAD_KIND } from "../audit/log-format.ts";
import { EXIT, UsageError } from "./usage.ts";

const VERDICTS = ["allow", "block", "redact", "warn"];
// ISO 8601 as the log writes it, a date alone, or a date and time (seconds and zone optional).
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/i;
const AGO = /^(\d+)(s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A --since/--until value as epoch ms: ISO 8601 (a time without a zone is UTC, as the log's
 * times are), or a duration before `now` (`30m`, `2h`, `7d`).
 */
export function parseTimeArg(flag: string, value: string, now: number): number {
  const ago = AGO.exec(value);
  if (ago) return now - Number(ago[1]) * UNIT_MS[ago[2]!]!;
  const m = ISO.exec(value);
  if (m) {
    let text = value.replace(" ", "T");
    if (text.includes("T") && m[1] === undefined) text += "Z";
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return t;
  }
  throw new UsageError(`${flag} '${value}' is not a time: use ISO 8601 (2026-11-27, 2026-11-27T08:00:00Z) or a duration ago (30m, 2h, 7d)`);
}

interface Filter {
  since?: number;
  until?: number;
  verdict?: string;
  agent?: string;
  rule?: string;
  treeHeads: boolean;
}

function matches(r: Record<string, unknown>, f: Filter): boolean {
  if (r.kind === TREE_HEAD_KIND && !f.treeHeads) return false;
  if (f.since !== undefined || f.until !== undefined) {
    const t = typeof r.time === "string" ? Date.parse(r.time) : Number.NaN;
    if (Number.isNaN(t)) return false;
    if (f.since !== undefined && t < f.since) return false;
    if (f.until !== undefined && t >= f.until) return false;
  }
  if (f.verdict !== undefined && r.verdict !== f.verdict) return false;
  if (f.agent !== undefined && r.agent !== f.agent) return false;
  if (f.rule !== undefined) {
    // The record's deciding rule, or the rule of any of its findings; `dlp.*` is a family.
    const rules = [r.rule, ...(Array.isArray(r.findings) ? r.findings.map((x) => (x as { rule?: unknown })?.rule) : [])];
    const want = f.rule;
    const hit = want.endsWith(".*") ? (x: unknown) => typeof x === "string" && x.startsWith(want.slice(0, -1)) : (x: unknown) => x === want;
    if (!rules.some(hit)) return false;
  }
  return true;
}

const str = (v: unknown): string => (v === undefined || v === null ? "" : String(v));

/** What the record is about, in one short column. */
function targetOf(r: Record<string, unknown>): string {
  switch (r.kind) {
    case "http":
      return `${str(r.method)} ${str(r.host)}:${str(r.port)}${str(r.path)}`;
    case "connect":
      return `${str(r.host)}:${str(r.port)}`;
    case "dns":
      return `${str(r.method)} ${str(r.host)}`;
    case "mcp":
      return [r.server, r.direction, r.method, r.tool].filter((x) => x !== undefined).map(str).join(" ");
    case TREE_HEAD_KIND:
      return `size ${str(r.tree_size)} root ${str(r.root).slice(0, 16)}… (${str(r.trigger)})`;
    default:
      return str(r.detail);
  }
}

// Values come from agents' traffic (paths, hosts): never let them drive the terminal.
const printable = (s: string): string => s.replace(/[\x00-\x1f\x7f-\x9f]/g, "?");

function table(lines: readonly LogLine[]): string {
  const header = ["TIME", "SEQ", "KIND", "AGENT", "VERDICT", "RULE", "TARGET"];
  const rows = lines.map(({ record: r }) => [str(r.time), str(r.seq), str(r.kind), str(r.agent), `${str(r.verdict)}${r.would_block === true ? "*" : ""}`, str(r.rule), targetOf(r)].map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return `${[header, ...rows].map(fmt).join("\n")}\n`;
}

export const SHOW_USAGE = "sluice audit show [DIR] [--since TIME] [--until TIME] [--verdict V] [--agent A] [--rule R] [--tree-heads] [--json] [--config FILE]";

/** `resolveDir` maps the optional DIR and --config to the log directory (null: config invalid, already reported). */
export async function showCommand(args: string[], out: (s: string) => void, err: (s: string) => void, resolveDir: (dir: string | undefined, config: string | undefined) => Promise<string | null>, now = Date.now()): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: "string", short: "c" },
      since: { type: "string" },
      until: { type: "string" },
      verdict: { type: "string" },
      agent: { type: "string" },
      rule: { type: "string" },
      "tree-heads": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 1) throw new UsageError(`audit show takes at most one DIR (got ${positionals.join(" ")})`);
  if (values.verdict !== undefined && !VERDICTS.includes(values.verdict)) throw new UsageError(`--verdict '${values.verdict}' is not one of ${VERDICTS.join(", ")}`);
  const filter: Filter = {
    treeHeads: values["tree-heads"],
    ...(values.since !== undefined ? { since: parseTimeArg("--since", values.since, now) } : {}),
    ...(values.until !== undefined ? { until: parseTimeArg("--until", values.until, now) } : {}),
    ...(values.verdict !== undefined ? { verdict: values.verdict } : {}),
    ...(values.agent !== undefined ? { agent: values.agent } : {}),
    ...(values.rule !== undefined ? { rule: values.rule } : {}),
  };
  if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) throw new UsageError("--since must be before --until");

  const dir = await resolveDir(positionals[0], values.config);
  if (dir === null) return EXIT.usage;
  let lines: LogLine[];
  try {
    lines = readLogRecords(dir, (segment, line) => err(`sluice audit show: ${segment} line ${line} is not a record, skipped (check the log with \`sluice audit verify\`)\n`));
  } catch (e) {
    if (!(e instanceof UnreadableLogError)) throw e;
    err(`sluice audit show: ${e.message}\n`);
    return EXIT.usage;
  }
  const shown = lines.filter((l) => matches(l.record, filter));
  // --json: the lines exactly as logged, so each one can still be hashed and checked.
  if (values.json) out(shown.map((l) => `${l.text}\n`).join(""));
  else if (shown.length > 0) out(table(shown));
  else err("sluice audit show: no records match\n");
  return EXIT.ok;
}

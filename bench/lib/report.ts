/**
 * What bench/proxy.ts and bench/dns.ts share: their common options, the errors and notes a run
 * collects, the temp dir, number formatting, the results table, the targets and the closing
 * summary. One benchmark runs per process, so the errors and notes are module state.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { cleanupAll, isInterrupted, onCleanup } from "./procs.ts";
import type { LogLine } from "./sluice.ts";

// ---- options ----------------------------------------------------------------------------------

export function parseDurationS(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s)?$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new Error(`--duration wants seconds, e.g. 10 or 10s (got ${JSON.stringify(text)})`);
  return Math.max(1, Math.round(Number(m[1])));
}

export function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} wants a positive integer (got ${JSON.stringify(text)})`);
  return n;
}

export interface BenchArgs<K extends string> {
  readonly durationS: number;
  readonly keepTmp: boolean;
  /** The positive-integer options, by name. */
  readonly ints: Readonly<Record<K, number>>;
}

/**
 * The command line: `--duration` (seconds, default 10), the benchmark's positive-integer options
 * (name -> default), and `--keep-tmp`. Unknown options are an error; values are checked in that order.
 */
export function parseBenchArgs<K extends string>(intDefaults: Readonly<Record<K, string>>): BenchArgs<K> {
  const names = Object.keys(intDefaults) as K[];
  const options: ParseArgsOptionsConfig = { duration: { type: "string", default: "10" } };
  for (const name of names) options[name] = { type: "string", default: intDefaults[name] };
  options["keep-tmp"] = { type: "boolean", default: false };
  const { values } = parseArgs({ args: Bun.argv.slice(2), options, strict: true });
  const text = (name: string): string => {
    const v = values[name];
    if (typeof v !== "string") throw new Error(`--${name} wants a value`);
    return v;
  };
  const durationS = parseDurationS(text("duration"));
  const ints = {} as Record<K, number>;
  for (const name of names) ints[name] = positiveInt(name, text(name));
  return { durationS, keepTmp: values["keep-tmp"] === true, ints };
}

// ---- findings -----------------------------------------------------------------------------------

/** Errors make the run exit 1 (a missed target is not one); notes are printed and do not. */
export const errors: string[] = [];
export const notes: string[] = [];

export function loud(msg: string): void {
  if (isInterrupted()) return; // what fails while stopping on Ctrl-C is the stopping
  errors.push(msg);
  console.error(`\n!!!!!!!! ERROR: ${msg}\n`);
}

/** A note with the first warn/error lines a sluice instance logged, if it logged any. */
export function noteLogProblems(name: string, problems: readonly LogLine[]): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 10).map((l) => `    ${JSON.stringify(l)}`).join("\n");
  notes.push(`${name} logged ${problems.length} warn/error line(s):\n${shown}`);
}

export interface Skipped {
  readonly name: string;
  readonly reason: string;
}

// ---- temp dir and the measuring stage -----------------------------------------------------------

export interface TempDir {
  readonly path: string;
  /** Kept at cleanup instead of removed: --keep-tmp, or a run that threw or found errors. */
  keep: boolean;
}

/** A fresh temp dir, removed at cleanup. Make it before anything that writes there registers, so it goes last. */
export function benchTempDir(prefix: string, keep: boolean): TempDir {
  const tmp: TempDir = { path: mkdtempSync(join(tmpdir(), prefix)), keep };
  onCleanup("temp dir", () => {
    if (tmp.keep) console.log(`\n(temp dir kept: ${tmp.path})`);
    else rmSync(tmp.path, { recursive: true, force: true });
  });
  return tmp;
}

/** Runs the measurements, then stops every process and resource; keeps the temp dir if they threw or found errors. */
export async function measureThenCleanUp(tmp: TempDir, measure: () => Promise<void>): Promise<void> {
  try {
    await measure();
  } catch (err) {
    if (!isInterrupted()) tmp.keep = true;
    throw err;
  } finally {
    if (errors.length > 0 && !isInterrupted()) tmp.keep = true;
    await cleanupAll();
  }
}

// ---- printing -----------------------------------------------------------------------------------

export const fmt = (n: number, digits = 2): string => n.toFixed(digits);
export const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US");
export const round = (n: number | null, d = 3): number | null => (n === null ? null : Math.round(n * 10 ** d) / 10 ** d);

/** A header, a rule and the rows; the first `leftColumns` columns are left-aligned, the rest right-aligned. */
export function printTable(header: readonly string[], body: readonly (readonly string[])[], leftColumns = 1): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of body) console.log(line(row));
}

export interface Target {
  readonly name: string;
  readonly value: number | null;
  readonly unit: string;
  readonly goal: string;
  readonly pass: boolean | null;
}

/** One line a target: name, value with its unit, goal, PASS / MISS (n/a when not measured). */
export function printTargets(targets: readonly Target[], formatValue: (t: Target & { value: number }) => string = (t) => fmt(t.value)): void {
  const body = targets.map((t) => [
    t.name,
    t.value === null ? "n/a" : `${formatValue({ ...t, value: t.value })}${t.unit}`,
    t.goal,
    t.pass === null ? "n/a" : t.pass ? "PASS" : "MISS",
  ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...body.map((r) => r[i]!.length)));
  for (const r of body) console.log(r.map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  "));
}

/** The skipped servers, the notes and a list of the errors, after the figures. */
export function printFindings(skipped: readonly Skipped[]): void {
  for (const s of skipped) console.log(`\nskipped ${s.name}: ${s.reason}`);
  for (const n of notes) console.log(`\nnote: ${n}`);
  if (errors.length > 0) {
    console.error(`\n!!!!!!!! ${errors.length} ERROR(S):`);
    for (const e of errors) console.error(`  - ${e.split("\n")[0]}`);
  }
}

/** The targets as the closing JSON line has them. */
export function targetsJson(targets: readonly Target[]): { name: string; value: number | null; goal: string; pass: boolean | null }[] {
  return targets.map((t) => ({ name: t.name, value: round(t.value), goal: t.goal, pass: t.pass }));
}

/** The first line of each error, as the closing JSON line has them. */
export const errorHeadlines = (): string[] => errors.map((e) => e.split("\n")[0] ?? "");

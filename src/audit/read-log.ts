/**
 * Reads a flight-recorder directory's records in order (segments by index, lines in order), for
 * the commands that look at the log rather than check it (`sluice audit show`, `receipt`).
 * Reading is not verifying: a line that is not JSON is reported, not judged; `sluice audit
 * verify` is what says whether the log is intact.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { segmentIndex, segmentName } from "./log-format.ts";
import { UnreadableLogError } from "./verify.ts";

export interface LogLine {
  readonly segment: string;
  /** 1-based line number in the segment. */
  readonly line: number;
  /** The line exactly as written (the bytes the record's hash covers). */
  readonly text: string;
  readonly record: Record<string, unknown>;
}

/**
 * Every record of the log. Lines that do not parse as a JSON object (a torn last line after a
 * crash, an edit) are passed to `onBadLine` and skipped.
 */
export function readLogRecords(dir: string, onBadLine: (segment: string, line: number) => void = () => {}): LogLine[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new UnreadableLogError(`cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const indexes = names.map(segmentIndex).filter((i): i is number => i !== null).sort((a, b) => a - b);
  if (indexes.length === 0) throw new UnreadableLogError(`no audit segments (audit-NNNNNN.jsonl) in ${dir}`);
  const out: LogLine[] = [];
  for (const index of indexes) {
    const segment = segmentName(index);
    let text: string;
    try {
      text = readFileSync(join(dir, segment), "utf8");
    } catch (err) {
      throw new UnreadableLogError(`cannot read ${join(dir, segment)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    lines.forEach((t, j) => {
      let r: unknown;
      try {
        r = JSON.parse(t);
      } catch {
        r = null;
      }
      if (r === null || typeof r !== "object" || Array.isArray(r)) onBadLine(segment, j + 1);
      else out.push({ segment, line: j + 1, text: t, record: r as Record<string, unknown> });
    });
  }
  return out;
}

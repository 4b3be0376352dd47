/**
 * The signed log back out of what a log pipeline collected: `audit.export.stdout: otlp` writes
 * every sealed line (records and tree heads, in the log's order) as the body of one OTLP/JSON
 * line, with the replica in `service.instance.id`. This reads those lines back, per instance, so
 * `sluice audit verify --otlp` can check a replica's chain without its disk. Pure: text in, lines out.
 */

export class OtlpStreamError extends Error {
  override readonly name = "OtlpStreamError";
}

type OtlpLine = { resourceLogs?: { resource?: { attributes?: { key?: string; value?: { stringValue?: string } }[] }; scopeLogs?: { scope?: { name?: string }; logRecords?: { body?: { stringValue?: unknown } }[] }[] }[] };

/** The scope export.ts names its log records with: other services' records in the same stream are not sluice's. */
const SCOPE = "sluice.audit";

/**
 * The sealed lines in `text` (OTLP/JSON lines of scope sluice.audit), by service.instance.id
 * ("" when none), in the log's order (by seq: pipelines reorder) with exact repeats dropped
 * (pipelines deliver at least once). Other lines (sluice's own log on stderr, when a container's
 * output is collected as one stream; another service's records) are skipped and counted: nothing
 * in them could pass for a record, since the chain decides what is one.
 */
export function sealedLinesByInstance(text: string, source: string): { byInstance: Map<string, string[]>; skipped: number } {
  const out = new Map<string, string[]>();
  let skipped = 0;
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    let doc: OtlpLine;
    try {
      doc = JSON.parse(raw) as OtlpLine;
    } catch {
      skipped++;
      return;
    }
    if (doc === null || typeof doc !== "object" || !Array.isArray(doc.resourceLogs)) {
      skipped++;
      return;
    }
    for (const rl of doc.resourceLogs) {
      const instance = rl.resource?.attributes?.find((a) => a.key === "service.instance.id")?.value?.stringValue ?? "";
      for (const sl of rl.scopeLogs ?? []) {
        if (sl.scope?.name !== SCOPE) {
          skipped++;
          continue;
        }
        for (const lr of sl.logRecords ?? []) {
          const body = lr.body?.stringValue;
          if (typeof body !== "string") throw new OtlpStreamError(`${source} line ${i + 1}: a log record without a string body`);
          let lines = out.get(instance);
          if (lines === undefined) out.set(instance, (lines = []));
          lines.push(body);
        }
      }
    }
  });
  for (const [instance, lines] of out) out.set(instance, inLogOrder(lines));
  return { byInstance: out, skipped };
}

/** Repeats dropped, then sorted by seq (a line without one keeps its place after those with). */
function inLogOrder(lines: readonly string[]): string[] {
  const seqOf = (line: string): number => {
    try {
      const seq = (JSON.parse(line) as { seq?: unknown }).seq;
      return typeof seq === "number" ? seq : Number.POSITIVE_INFINITY;
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  };
  return [...new Set(lines)].map((line, i) => ({ line, seq: seqOf(line), i })).sort((a, b) => a.seq - b.seq || a.i - b.i).map((e) => e.line);
}

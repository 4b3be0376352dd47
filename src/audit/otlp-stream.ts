/**
 * The signed log back out of what a log pipeline collected: `audit.export.stdout: otlp` writes
 * every sealed line (records and tree heads, in the log's order) as the body of one OTLP/JSON
 * line, with the replica in `service.instance.id`. This reads those lines back, per instance, so
 * `sluice audit verify --otlp` can check a replica's chain without its disk. Pure: text in, lines out.
 */

export class OtlpStreamError extends Error {
  override readonly name = "OtlpStreamError";
}

type OtlpLine = { resourceLogs?: { resource?: { attributes?: { key?: string; value?: { stringValue?: string } }[] }; scopeLogs?: { logRecords?: { body?: { stringValue?: unknown } }[] }[] }[] };

/**
 * The sealed lines in `text` (OTLP/JSON lines), by service.instance.id ("" when none), in the
 * order they appear. Other lines (sluice's own log on stderr, when a container's output is
 * collected as one stream) are skipped and counted: nothing in them could pass for a record,
 * since the chain decides what is one.
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
  return { byInstance: out, skipped };
}

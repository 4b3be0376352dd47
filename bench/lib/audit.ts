/** Counts decision records in a JSON-lines audit file, streaming (a 10 s run writes ~100 MB). */

export interface AuditCounts {
  readonly lines: number;
  readonly http: number;
  readonly allow: number;
  readonly block: number;
  readonly unparsable: number;
  /** Counts of http records other than "allow, 200", by verdict, rule, reason and status (at most 10 kinds). */
  readonly oddities: [string, number][];
}

export async function countAudit(path: string): Promise<AuditCounts> {
  let lines = 0;
  let http = 0;
  let allow = 0;
  let block = 0;
  let unparsable = 0;
  const oddities = new Map<string, number>();
  const decoder = new TextDecoder();
  let rest = "";
  const take = (line: string) => {
    if (line.length === 0) return;
    lines++;
    // Cheap checks first: parse only the lines that are not plain allowed 200s.
    if (line.includes('"kind":"http"')) {
      http++;
      if (line.includes('"verdict":"allow"') && line.includes('"status":200')) {
        allow++;
        return;
      }
    } else return;
    try {
      const r = JSON.parse(line) as { verdict?: string; rule?: string; reason?: string; status?: number; detail?: string };
      if (r.verdict === "allow") allow++;
      else block++;
      const key = `verdict=${r.verdict} rule=${r.rule} reason=${r.reason} status=${r.status}${r.detail ? ` detail=${r.detail}` : ""}`;
      if (oddities.has(key) || oddities.size < 10) oddities.set(key, (oddities.get(key) ?? 0) + 1);
    } catch {
      unparsable++;
    }
  };
  for await (const chunk of Bun.file(path).stream()) {
    rest += decoder.decode(chunk, { stream: true });
    const parts = rest.split("\n");
    rest = parts.pop() ?? "";
    for (const p of parts) take(p);
  }
  take(rest);
  return { lines, http, allow, block, unparsable, oddities: [...oddities] };
}

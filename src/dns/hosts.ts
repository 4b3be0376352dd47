/**
 * Local names: `localhost` (RFC 6761 section 6.3: always loopback, never asked upstream) and the
 * hosts file (hosts(5)), which operators use for internal names. Answers from here still go
 * through the rebinding guard like any other.
 */
import { readFileSync } from "node:fs";
import { parseIpLiteral } from "../net/ip.ts";

export interface HostsTable {
  /** Addresses for `name` (lower case, no trailing dot), or null when the table does not know it. */
  lookup(name: string): { v4: string[]; v6: string[] } | null;
}

const LOCALHOST = { v4: ["127.0.0.1"], v6: ["::1"] };

export function parseHosts(text: string): Map<string, { v4: string[]; v6: string[] }> {
  const map = new Map<string, { v4: string[]; v6: string[] }>();
  for (const raw of text.split("\n")) {
    const fields = raw.replace(/#.*$/, "").trim().split(/\s+/);
    if (fields.length < 2) continue;
    const ip = parseIpLiteral(fields[0]!);
    if (!ip) continue;
    for (const name of fields.slice(1)) {
      const key = name.toLowerCase().replace(/\.$/, "");
      let entry = map.get(key);
      if (!entry) map.set(key, (entry = { v4: [], v6: [] }));
      const list = ip.family === 4 ? entry.v4 : entry.v6;
      if (!list.includes(ip.text)) list.push(ip.text);
    }
  }
  return map;
}

export function createHostsTable(entries: Map<string, { v4: string[]; v6: string[] }>): HostsTable {
  return {
    lookup(name) {
      if (name === "localhost" || name.endsWith(".localhost")) return LOCALHOST;
      return entries.get(name) ?? null;
    },
  };
}

/** Reads a hosts file; a missing or unreadable one is an empty table (plus localhost). */
export function loadHostsTable(path: string): HostsTable {
  try {
    return createHostsTable(parseHosts(readFileSync(path, "utf8")));
  } catch {
    return createHostsTable(new Map());
  }
}

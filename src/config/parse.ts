/**
 * YAML text -> validated Config. Pure: the caller reads the file. Every problem is collected
 * with its key path (`egress.allow.2`, `agents.0.name`) so one run shows them all.
 */
import { parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../core/errors.ts";
import { configSchema, RESERVED_SECTIONS, type Config } from "./schema.ts";

/**
 * `overlay` (sluice run --overlay, written by sluice jail) is merged over the document before it
 * is validated: mappings key by key, anything else replaced whole.
 */
export function parseConfigText(text: string, source = "config", overlay?: Record<string, unknown>): Config {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, strict: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "",
        message: e.message.split("\n")[0] ?? e.message,
      })),
      source,
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 50 });
  } catch (err) {
    // yaml throws (not reports) on excessive alias expansion: a "billion laughs" document.
    throw new ConfigError([{ path: "", message: err instanceof Error ? err.message : String(err) }], source);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError([{ path: "", message: "the config must be a YAML mapping with `version: 1`" }], source);
  }
  const result = configSchema.safeParse(overlay ? merge(raw as Record<string, unknown>, overlay) : raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues), source);
  return result.data;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    const mapping = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === "object" && !Array.isArray(x);
    out[k] = mapping(b) && mapping(v) ? merge(b, v) : v;
  }
  return out;
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  for (const issue of issues) {
    const base = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const path = base ? `${base}.${key}` : key;
        const reserved = !base && (RESERVED_SECTIONS as readonly string[]).includes(key);
        out.push({
          path,
          message: reserved ? "section not supported by this version of sluice yet" : "unknown key",
        });
      }
      continue;
    }
    out.push({ path: base, message: issue.message });
  }
  return out;
}

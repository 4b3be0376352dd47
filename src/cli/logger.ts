/**
 * The one structured logger. JSON lines by default (for collectors), a readable form for a
 * terminal. Fields whose names suggest a secret are replaced, at any depth, before anything is
 * written: a secret value must never reach a log, even by mistake.
 */
import type { LogFields, Logger, LogLevel } from "../core/log.ts";

export type { LogFields, Logger, LogLevel } from "../core/log.ts";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /authorization|token|secret|password|passwd|cookie|api[_-]?key|credential|private[_-]?key/i;
/** The record's own fields: a caller's field of the same name must not overwrite them. */
const RESERVED = new Set(["time", "level", "msg"]);
const MAX_DEPTH = 6;

function redactValue(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_DEPTH) return "[too deep]";
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value instanceof Error) return value.message;
  const out: LogFields = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? "[redacted]" : redactValue(v, depth + 1);
  return out;
}

export function redactFields(fields: LogFields): LogFields {
  return redactValue(fields, 0) as LogFields;
}

export function createLogger(opts: {
  level?: LogLevel;
  format?: "json" | "text";
  write?: (line: string) => void;
  now?: () => Date;
}): Logger {
  const min = ORDER[opts.level ?? "info"];
  const format = opts.format ?? "json";
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const now = opts.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const safe: LogFields = {};
    if (fields) for (const [k, v] of Object.entries(redactFields(fields))) safe[RESERVED.has(k) ? `field_${k}` : k] = v;
    if (format === "json") {
      write(`${JSON.stringify({ time: now().toISOString(), level, msg, ...safe })}\n`);
      return;
    }
    // Text form: every value is JSON-quoted unless it is a plain word, so a newline in a
    // request path cannot forge a second log line.
    const extra = Object.entries(safe)
      .map(([k, v]) => `${k}=${typeof v === "string" && /^[\w./:@[\]-]*$/.test(v) ? v : JSON.stringify(v)}`)
      .join(" ");
    const text = /[\x00-\x1f\x7f]/.test(msg) ? JSON.stringify(msg) : msg;
    write(`${now().toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${text}${extra ? ` ${extra}` : ""}\n`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

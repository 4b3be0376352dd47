/**
 * The one structured logger. JSON lines by default (for collectors), a readable form for a
 * terminal. Fields whose names suggest a secret are replaced before anything is written: a
 * secret value must never reach a log, even by mistake.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /authorization|token|secret|password|passwd|cookie|api[_-]?key|credential/i;

export function redactFields(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = SECRET_KEY.test(k) ? "[redacted]" : v;
  return out;
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
    const safe = fields ? redactFields(fields) : {};
    if (format === "json") {
      write(`${JSON.stringify({ time: now().toISOString(), level, msg, ...safe })}\n`);
    } else {
      const extra = Object.entries(safe)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ");
      write(`${now().toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ` ${extra}` : ""}\n`);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

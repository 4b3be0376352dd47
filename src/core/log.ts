/**
 * The logger every module is handed (ARCHITECTURE.md: one structured logger). Only the type
 * lives in core; cli/logger.ts makes the one instance and main passes it in.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

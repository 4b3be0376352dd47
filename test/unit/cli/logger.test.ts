import { describe, expect, test } from "bun:test";
import { createLogger, redactFields, type Logger, type LogLevel } from "../../../src/cli/logger.ts";

const NOW = new Date("2025-03-04T05:06:07.089Z");

function capture(opts: { level?: LogLevel; format?: "json" | "text" }): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger({ ...opts, write: (line) => lines.push(line), now: () => NOW });
  return { log, lines };
}

function jsonLines(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => {
    expect(l.endsWith("\n")).toBe(true);
    return JSON.parse(l) as Record<string, unknown>;
  });
}

describe("redactFields", () => {
  const secret = [
    "authorization",
    "Authorization",
    "proxy-authorization",
    "Proxy-Authorization",
    "token",
    "adminToken",
    "token_sha256",
    "secret",
    "client_secret",
    "password",
    "PASSWORD",
    "passwd",
    "cookie",
    "set-cookie",
    "api_key",
    "api-key",
    "apikey",
    "apiKey",
    "x-api-key",
    "credential",
    "credentials",
  ];
  test.each(secret)("%p is redacted", (key) => {
    expect(redactFields({ [key]: "s3cr3t-value", host: "a.example" })).toEqual({ [key]: "[redacted]", host: "a.example" });
  });

  const plain = ["host", "path", "status", "method", "agent", "rule", "reason", "bytes_in", "duration_ms", "error"];
  test.each(plain)("%p is kept", (key) => {
    expect(redactFields({ [key]: "value" })).toEqual({ [key]: "value" });
  });

  test("non-string secret values are redacted too", () => {
    expect(redactFields({ token: { nested: 1 }, password: 1234 })).toEqual({ token: "[redacted]", password: "[redacted]" });
  });

  test("the input is not modified", () => {
    const input = { token: "x" };
    redactFields(input);
    expect(input).toEqual({ token: "x" });
  });

  // "a secret value must never reach a log, even by mistake" (logger.ts). Logging a headers
  // object or an error's context object is exactly that mistake.
  test("secret-looking keys inside nested objects are redacted", () => {
    const out = JSON.stringify(redactFields({ headers: { Authorization: "Bearer s3cr3t-value", Accept: "*/*" }, ctx: { upstream: { password: "s3cr3t-value" } } }));
    expect(out).not.toContain("s3cr3t-value");
    expect(out).toContain("*/*");
  });

  test("private keys are secret-looking", () => {
    expect(redactFields({ private_key: "-----BEGIN PRIVATE KEY-----" })).toEqual({ private_key: "[redacted]" });
  });
});

describe("createLogger: json", () => {
  test("one JSON object per line with time, level, msg and fields", () => {
    const { log, lines } = capture({});
    log.info("proxy listening", { port: 8888, host: "127.0.0.1", tls: false });
    expect(lines).toHaveLength(1);
    expect(jsonLines(lines)).toEqual([{ time: "2025-03-04T05:06:07.089Z", level: "info", msg: "proxy listening", port: 8888, host: "127.0.0.1", tls: false }]);
  });

  test("no fields", () => {
    const { log, lines } = capture({});
    log.warn("hello");
    expect(jsonLines(lines)).toEqual([{ time: NOW.toISOString(), level: "warn", msg: "hello" }]);
  });

  test("secrets are redacted before writing", () => {
    const { log, lines } = capture({});
    log.error("auth failed", { authorization: "Basic dXNlcjpzM2NyM3Q=", agent: "a" });
    expect(lines.join("")).not.toContain("dXNlcjpzM2NyM3Q=");
    expect(jsonLines(lines)[0]).toMatchObject({ authorization: "[redacted]", agent: "a" });
  });

  test("a message with newlines stays on one line", () => {
    const { log, lines } = capture({});
    log.info("a\nb", { detail: "c\r\nd" });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.indexOf("\n")).toBe(lines[0]!.length - 1);
  });

  test("fields cannot overwrite time, level or msg", () => {
    const { log, lines } = capture({});
    log.error("real message", { level: "debug", msg: "fake", time: "1970-01-01T00:00:00.000Z" });
    const rec = jsonLines(lines)[0]!;
    expect(rec.level).toBe("error");
    expect(rec.msg).toBe("real message");
    expect(rec.time).toBe(NOW.toISOString());
  });
});

describe("createLogger: level filtering", () => {
  const levels: LogLevel[] = ["debug", "info", "warn", "error"];
  const rows: [min: LogLevel | undefined, written: LogLevel[]][] = [
    ["debug", ["debug", "info", "warn", "error"]],
    ["info", ["info", "warn", "error"]],
    ["warn", ["warn", "error"]],
    ["error", ["error"]],
    [undefined, ["info", "warn", "error"]],
  ];
  test.each(rows)("level %p writes %p", (min, written) => {
    const { log, lines } = capture(min === undefined ? {} : { level: min });
    for (const l of levels) log[l](`m-${l}`);
    expect(jsonLines(lines).map((r) => r.level)).toEqual(written);
    expect(jsonLines(lines).map((r) => r.msg)).toEqual(written.map((l) => `m-${l}`));
  });
});

describe("createLogger: text", () => {
  test("time of day, padded level, message, key=value fields", () => {
    const { log, lines } = capture({ format: "text", level: "debug" });
    log.info("proxy listening", { host: "127.0.0.1", port: 8888, tags: ["a", "b"] });
    log.debug("tick");
    log.error("boom", { error: "ECONNRESET" });
    expect(lines).toEqual([
      '05:06:07.089 INFO  proxy listening host=127.0.0.1 port=8888 tags=["a","b"]\n',
      "05:06:07.089 DEBUG tick\n",
      "05:06:07.089 ERROR boom error=ECONNRESET\n",
    ]);
  });

  test("secrets are redacted in text too", () => {
    const { log, lines } = capture({ format: "text" });
    log.warn("x", { cookie: "session=abc123", token: "t0k3n" });
    expect(lines).toEqual(["05:06:07.089 WARN  x cookie=[redacted] token=[redacted]\n"]);
  });

  // Field values come from the network (hosts, paths, upstream errors). Written raw, a CR or LF
  // lets a client forge whole log lines (CWE-117).
  test("a field value with a newline cannot forge a second log line", () => {
    const { log, lines } = capture({ format: "text" });
    log.info("request", { path: "/x\n05:06:07.089 INFO  admin login ok user=root" });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.indexOf("\n")).toBe(lines[0]!.length - 1);
    expect(lines[0]!).not.toContain("\r");
  });
});

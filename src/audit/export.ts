/**
 * audit.export: copies of the flight recorder's records for a cluster's log pipeline, as RFC 5424
 * syslog messages (UDP or TCP to a local collector) and/or OTLP/JSON log lines on stdout. The
 * signed local log (recorder.ts) stays the source of truth: an export is best effort, it never
 * throws into the caller and never blocks it, and what it drops is counted and said (TCP).
 *
 * Each exported item is one record's canonical line, sent whole as the message body, with a few
 * of its fields lifted into the envelope (severity, SD params, OTLP attributes) so a collector can
 * filter without parsing JSON. Nothing but the record goes out, and a record holds no secrets.
 *
 * Severity, the same for both formats:
 *   warning (syslog 4, OTLP WARN 13):  verdict block, and rule audit.recovered (a repaired log)
 *   notice  (syslog 5, OTLP INFO2 10): verdict redact or warn
 *   info    (syslog 6, OTLP INFO 9):   verdict allow, tree_head/lifecycle/config records, the rest
 * OTLP's INFO2 for syslog notice follows the OpenTelemetry logs data model's syslog mapping.
 */
import dgram from "node:dgram";
import net from "node:net";
import { hostname as osHostname } from "node:os";
import { writeBatch } from "./sink.ts";

export interface ExportTarget {
  /** One record's canonical line; `record` is its parsed form, when the caller has it already. */
  send(line: string, record?: Record<string, unknown>): void;
  close(): Promise<void> | void;
}

type AuditFields = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Severity

type Severity = 4 | 5 | 6;
const WARNING: Severity = 4;
const NOTICE: Severity = 5;
const INFO: Severity = 6;
/** Records about sluice itself, not about an agent's traffic: informational whatever they say. */
const HOUSEKEEPING_KINDS = new Set(["tree_head", "lifecycle", "config"]);

/** Syslog severity (RFC 5424 §6.2.1 Table 2) of a record. */
export function severityOf(record: AuditFields): Severity {
  // A log repaired at start (recorder.ts) means records may be missing: worth a warning.
  if (record.rule === "audit.recovered") return WARNING;
  if (typeof record.kind === "string" && HOUSEKEEPING_KINDS.has(record.kind)) return INFO;
  if (record.verdict === "block") return WARNING;
  if (record.verdict === "redact" || record.verdict === "warn") return NOTICE;
  return INFO;
}

// ---------------------------------------------------------------------------------------------
// RFC 5424 formatting

/** RFC 5424 §6.2.1 Table 1, by the names syslog.conf uses; 12-15 by the RFC's descriptions. */
const FACILITIES: Readonly<Record<string, number>> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  ntp: 12, audit: 13, alert: 14, clock: 15,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

export function facilityCode(name: string): number {
  const code = Object.hasOwn(FACILITIES, name) ? FACILITIES[name] : undefined;
  if (code === undefined) throw new RangeError(`unknown syslog facility "${name}": use one of ${Object.keys(FACILITIES).join(", ")}`);
  return code;
}

/**
 * The SD-ID: NAME@<private enterprise number> (RFC 5424 §7.2.2). 53595 is the number this
 * module was specified with; swap it here (one place) if the project registers its own.
 */
export const SD_ID = "sluice@53595";
/** RFC 5424 §6.4 MSG-UTF8: a MSG that starts with the BOM is declared UTF-8. */
const BOM = "\uFEFF";
/** RFC 5424 §6.2.3 TIMESTAMP: RFC 3339 with upper-case T and Z; TIME-SECFRAC is at most 6 digits. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d+))?(?:Z|[+-]\d{2}:\d{2})$/;

export interface SyslogHeader {
  /** 0-23 (RFC 5424 §6.2.1); see facilityCode. */
  readonly facility: number;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
}

/**
 * A header field (RFC 5424 §6.2.4-6.2.7): PRINTUSASCII (33-126) only, so anything else becomes
 * "_"; cut to the field's length limit; NILVALUE "-" when nothing is left.
 */
function headerField(value: string, max: number): string {
  const field = value.replace(/[^\x21-\x7e]/g, "_").slice(0, max);
  return field === "" ? "-" : field;
}

function syslogTimestamp(time: unknown): string {
  if (typeof time !== "string") return "-";
  const m = RFC3339.exec(time);
  if (m === null || (m[1] ?? "").length > 6 || Number.isNaN(Date.parse(time))) return "-";
  return time;
}

/** RFC 5424 §6.3.3: inside a PARAM-VALUE, '"', '\' and ']' are escaped with '\'. */
export function escapeParamValue(value: string): string {
  return value.replace(/["\\\]]/g, "\\$&");
}

/**
 * Record fields copied into the SD-ELEMENT. Names are SD-NAMEs (§6.3.3: 1-32 PRINTUSASCII, no
 * '=', ' ', ']' or '"'), fixed here so none can be invalid.
 */
const SD_FIELDS = ["seq", "agent", "verdict", "rule", "hash"] as const;

function structuredData(record: AuditFields): string {
  let params = "";
  for (const name of SD_FIELDS) {
    const v = record[name];
    if (typeof v === "string" || (typeof v === "number" && Number.isFinite(v))) params += ` ${name}="${escapeParamValue(String(v))}"`;
  }
  return params === "" ? "-" : `[${SD_ID}${params}]`;
}

/** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG` (RFC 5424 §6). */
function syslogMessage(h: SyslogHeader, severity: Severity, timestamp: string, msgId: string, sd: string, msg: string): string {
  // §6.2.1: PRI = facility * 8 + severity.
  const pri = h.facility * 8 + severity;
  // §6.2.4-6.2.7: HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32 characters at most.
  return `<${pri}>1 ${timestamp} ${headerField(h.hostname, 255)} ${headerField(h.appName, 48)} ${headerField(h.procId, 128)} ${headerField(msgId, 32)} ${sd} ${msg}`;
}

function checkFacility(facility: number): void {
  if (!Number.isInteger(facility) || facility < 0 || facility > 23) throw new RangeError(`syslog facility must be an integer 0-23, not ${facility}`);
}

/** One record as an RFC 5424 message: MSGID the record's kind, MSG the BOM and the line. */
export function formatSyslog(line: string, record: AuditFields, opts: SyslogHeader): string {
  checkFacility(opts.facility);
  const kind = typeof record.kind === "string" ? record.kind : "";
  return syslogMessage(opts, severityOf(record), syslogTimestamp(record.time), kind, structuredData(record), BOM + line);
}

/** What sluice says in place of records it could not export; no record content in it. */
function dropNotice(h: SyslogHeader, dropped: number, now: number): string {
  const text = `sluice dropped ${dropped} audit record(s) from the syslog export (collector unreachable or too slow); the signed local log holds them`;
  return syslogMessage(h, WARNING, new Date(now).toISOString(), "dropped", `[${SD_ID} dropped="${dropped}"]`, BOM + text);
}

/**
 * The longest prefix of `buf` of at most `max` bytes that does not end inside a UTF-8 character:
 * when the first byte left out is a continuation byte (10xxxxxx), the character it belongs to is
 * left out whole.
 */
export function truncateUtf8(buf: Buffer, max: number): Buffer {
  if (buf.length <= max) return buf;
  let end = max;
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}

// ---------------------------------------------------------------------------------------------
// Syslog transports

/**
 * The largest UDP payload over IPv4: 65535 minus the 20-byte IP and 8-byte UDP headers (RFC 5426
 * §3.2 lets a sender truncate a longer message). Also fits IPv6, whose limit is 65527.
 */
export const MAX_UDP_MESSAGE = 65507;
/** Reconnect backoff: first retry after 100 ms, doubling to at most 5 s. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** How long close() waits for queued messages to leave before it gives up on them. */
const CLOSE_WAIT_MS = 1000;
const DEFAULT_MAX_QUEUE = 10_000;

export interface SyslogExporterOptions {
  readonly protocol: "udp" | "tcp";
  readonly host: string;
  readonly port: number;
  readonly facility: number;
  /** HOSTNAME; default os.hostname(). */
  readonly hostname?: string;
  /** APP-NAME; default "sluice". */
  readonly appName?: string;
  /** Messages held while the collector cannot take them; past it the oldest are dropped. */
  readonly maxQueue?: number;
  readonly onError?: (err: unknown) => void;
  /** Wall clock, epoch ms, for sluice's own messages (tests). */
  readonly now?: () => number;
}

export interface SyslogExporter extends ExportTarget {
  close(): Promise<void>;
  /** For metrics and tests: connected, messages waiting, drops not yet reported to the collector. */
  stats(): { readonly connected: boolean; readonly queued: number; readonly dropped: number };
}

/** A FIFO of at most `capacity` messages; push drops the oldest when full and says so. */
function createQueue(capacity: number) {
  const slots: (string | undefined)[] = [];
  let head = 0;
  let size = 0;
  return {
    get size() {
      return size;
    },
    push(msg: string): boolean {
      let dropped = false;
      if (size === capacity) {
        head = (head + 1) % capacity;
        size--;
        dropped = true;
      }
      slots[(head + size) % capacity] = msg;
      size++;
      return dropped;
    },
    shift(): string | undefined {
      if (size === 0) return undefined;
      const msg = slots[head];
      slots[head] = undefined;
      head = (head + 1) % capacity;
      size--;
      return msg;
    },
  };
}

function parsedRecord(line: string, record: AuditFields | undefined): AuditFields {
  if (record !== undefined) return record;
  const parsed: unknown = JSON.parse(line);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new TypeError("an audit line must be a JSON object");
  return parsed as AuditFields;
}

/** A promise that resolves after `ms` without keeping the process alive. */
function unrefDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export function createSyslogExporter(opts: SyslogExporterOptions): SyslogExporter {
  checkFacility(opts.facility);
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new RangeError(`syslog port must be 1-65535, not ${opts.port}`);
  const maxQueue = opts.maxQueue ?? DEFAULT_MAX_QUEUE;
  if (!Number.isInteger(maxQueue) || maxQueue < 1) throw new RangeError(`syslog maxQueue must be a positive integer, not ${maxQueue}`);
  const header: SyslogHeader = { facility: opts.facility, hostname: opts.hostname ?? osHostname(), appName: opts.appName ?? "sluice", procId: String(process.pid) };
  // The caller's handler must not turn an export error into one of its own.
  const report = (err: unknown) => {
    try {
      opts.onError?.(err);
    } catch {}
  };
  const transport = (opts.protocol === "udp" ? createUdpTransport : createTcpTransport)(opts, header, maxQueue, report);
  return {
    send(line, record) {
      try {
        transport.send(formatSyslog(line, parsedRecord(line, record), header));
      } catch (err) {
        report(err);
      }
    },
    close: transport.close,
    stats: transport.stats,
  };
}

interface Transport {
  send(msg: string): void;
  close(): Promise<void>;
  stats(): { connected: boolean; queued: number; dropped: number };
}

/**
 * RFC 5426: one message per datagram, on a connected socket (so a collector that is down shows
 * as ECONNREFUSED errors). Sends wait in a bounded queue only until connect() has finished; any
 * dropped meanwhile are counted in a notice sent ahead of the rest.
 */
function createUdpTransport(opts: SyslogExporterOptions, header: SyslogHeader, maxQueue: number, report: (err: unknown) => void): Transport {
  const now = opts.now ?? Date.now;
  const socket = dgram.createSocket(net.isIPv6(opts.host) ? "udp6" : "udp4");
  socket.unref();
  socket.on("error", report);
  const early = createQueue(maxQueue);
  let connected = false;
  let closed = false;
  let dropped = 0;
  let inFlight = 0;
  let onIdle: (() => void) | null = null;

  const transmit = (msg: string) => {
    inFlight++;
    socket.send(truncateUtf8(Buffer.from(msg, "utf8"), MAX_UDP_MESSAGE), (err) => {
      inFlight--;
      if (err) report(err);
      if (inFlight === 0) onIdle?.();
    });
  };
  socket.connect(opts.port, opts.host, () => {
    connected = true;
    if (dropped > 0) transmit(dropNotice(header, dropped, now()));
    dropped = 0;
    for (let msg = early.shift(); msg !== undefined; msg = early.shift()) transmit(msg);
    if (inFlight === 0) onIdle?.();
  });

  return {
    send(msg) {
      if (closed) return;
      if (connected) transmit(msg);
      else if (early.push(msg)) dropped++;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (!connected || inFlight > 0) await Promise.race([new Promise<void>((resolve) => (onIdle = resolve)), unrefDelay(CLOSE_WAIT_MS)]);
      if (early.size + dropped > 0) report(new Error(`syslog export closed with ${early.size + dropped} message(s) not sent`));
      socket.close();
    },
    stats: () => ({ connected, queued: early.size, dropped }),
  };
}

/**
 * RFC 6587 §3.4.1 octet counting over TCP: each message is framed as `LEN SP MSG`, LEN its length
 * in bytes. While there is no connection, or the socket pushes back (write() returned false),
 * messages wait in a bounded queue; they go out in order on 'connect' / 'drain', preceded by a
 * notice of how many were dropped. Messages already handed to a socket that then fails are lost
 * with it: the signed log has them.
 */
function createTcpTransport(opts: SyslogExporterOptions, header: SyslogHeader, maxQueue: number, report: (err: unknown) => void): Transport {
  const now = opts.now ?? Date.now;
  const queue = createQueue(maxQueue);
  let socket: net.Socket | null = null;
  let connected = false;
  let writable = false;
  let closed = false;
  let dropped = 0;
  let backoff = BACKOFF_MIN_MS;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const writeFrame = (s: net.Socket, msg: string) => {
    writable = s.write(`${Buffer.byteLength(msg, "utf8")} ${msg}`);
  };
  /** Sends what waits, the drop notice first, until the socket pushes back (or all of it, at close). */
  const flush = (s: net.Socket, all: boolean) => {
    if (dropped > 0) {
      writeFrame(s, dropNotice(header, dropped, now()));
      dropped = 0;
    }
    while (all || writable) {
      const msg = queue.shift();
      if (msg === undefined) break;
      writeFrame(s, msg);
    }
  };

  const connect = () => {
    retry = undefined;
    const s = net.createConnection({ host: opts.host, port: opts.port });
    s.unref();
    socket = s;
    s.on("connect", () => {
      connected = true;
      writable = true;
      backoff = BACKOFF_MIN_MS;
      flush(s, closed);
      if (closed) s.end();
    });
    s.on("drain", () => {
      writable = true;
      flush(s, false);
    });
    // ECONNREFUSED while the collector is down, ECONNRESET when it goes; 'close' follows.
    s.on("error", report);
    s.on("close", (hadError) => {
      if (connected && !hadError && !closed) report(new Error("the syslog collector closed the connection"));
      socket = null;
      connected = false;
      writable = false;
      if (closed) return;
      retry = setTimeout(connect, backoff);
      retry.unref();
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    });
  };
  connect();

  return {
    send(msg) {
      if (closed) return;
      if (queue.push(msg)) dropped++;
      if (socket !== null && writable) flush(socket, false);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(retry);
      const s = socket;
      if (s !== null) {
        const gone = new Promise<void>((resolve) => s.once("close", () => resolve()));
        // Connected: hand everything to the socket and end it; still connecting: 'connect' does that.
        if (connected) {
          flush(s, true);
          s.end();
        }
        await Promise.race([gone, unrefDelay(CLOSE_WAIT_MS)]);
        s.destroy();
      }
      if (queue.size + dropped > 0) report(new Error(`syslog export closed with ${queue.size + dropped} message(s) not sent`));
    },
    stats: () => ({ connected, queued: queue.size, dropped }),
  };
}

// ---------------------------------------------------------------------------------------------
// OTLP/JSON

/** OTLP SeverityNumber and its short name (OpenTelemetry logs data model, "Field: SeverityNumber"). */
const OTLP_SEVERITY: Readonly<Record<Severity, readonly [number, string]>> = {
  4: [13, "WARN"],
  5: [10, "INFO2"],
  6: [9, "INFO"],
};

export interface OtlpOptions {
  /** resource service.name; default "sluice". */
  readonly serviceName?: string;
  /** resource service.instance.id, when given. */
  readonly serviceInstanceId?: string;
  /** observedTimeUnixNano, epoch ms; default the record's time. */
  readonly observedUnixMs?: number;
}

/** RFC 3339 text as Unix nanoseconds, a decimal string (OTLP/JSON writes 64-bit integers so); null when not RFC 3339. */
export function unixNanos(time: unknown): string | null {
  if (typeof time !== "string") return null;
  const m = RFC3339.exec(time);
  if (m === null) return null;
  // Whole seconds through Date (offsets, calendar checks), the fraction digits as they are.
  const seconds = Date.parse(time.replace(/\.\d+/, ""));
  if (!Number.isFinite(seconds) || seconds < 0) return null;
  return (BigInt(seconds) * 1_000_000n + BigInt((m[1] ?? "").padEnd(9, "0").slice(0, 9))).toString();
}

type OtlpAttribute = { key: string; value: { stringValue: string } | { intValue: string } };

function otlpAttributes(record: AuditFields): OtlpAttribute[] {
  const out: OtlpAttribute[] = [];
  const str = (key: string, v: unknown) => {
    if (typeof v === "string") out.push({ key, value: { stringValue: v } });
  };
  // OTLP/JSON: int64 values are decimal strings.
  const int = (key: string, v: unknown) => {
    if (Number.isSafeInteger(v)) out.push({ key, value: { intValue: String(v) } });
  };
  int("sluice.seq", record.seq);
  str("sluice.kind", record.kind);
  str("sluice.verdict", record.verdict);
  str("sluice.rule", record.rule);
  str("sluice.reason", record.reason);
  str("sluice.agent", record.agent);
  str("sluice.hash", record.hash);
  str("sluice.host", record.host);
  str("sluice.method", record.method);
  int("sluice.status", record.status);
  return out;
}

/**
 * One record as an OTLP/JSON ExportLogsServiceRequest on one line (OTLP specification, "JSON
 * Protobuf Encoding": lowerCamelCase names, 64-bit integers as decimal strings, enums as numbers).
 * Attribute names are sluice.*, not HTTP semantic conventions: `method` is a DNS query type in DNS
 * records. The body is the record's line, unchanged.
 */
export function formatOtlp(line: string, record: AuditFields, opts: OtlpOptions = {}): string {
  const [severityNumber, severityText] = OTLP_SEVERITY[severityOf(record)];
  const time = unixNanos(record.time);
  const observed = opts.observedUnixMs !== undefined ? (BigInt(Math.trunc(opts.observedUnixMs)) * 1_000_000n).toString() : time;
  const resource: OtlpAttribute[] = [{ key: "service.name", value: { stringValue: opts.serviceName ?? "sluice" } }];
  if (opts.serviceInstanceId !== undefined) resource.push({ key: "service.instance.id", value: { stringValue: opts.serviceInstanceId } });
  // Unknown times are left out: an absent field reads as 0, "unknown", in OTLP.
  const logRecord = {
    ...(time !== null && { timeUnixNano: time }),
    ...(observed !== null && { observedTimeUnixNano: observed }),
    severityNumber,
    severityText,
    body: { stringValue: line },
    attributes: otlpAttributes(record),
  };
  return JSON.stringify({ resourceLogs: [{ resource: { attributes: resource }, scopeLogs: [{ scope: { name: "sluice.audit" }, logRecords: [logRecord] }] }] });
}

const BATCH_BYTES = 64 * 1024;

export interface StdoutOtlpExporter extends ExportTarget {
  flush(): void;
  close(): void;
}

/**
 * OTLP/JSON lines to stdout (or `write`), batched like sink.ts: one write per 64 KiB or per
 * `flushMs`. Written with sink.ts's writeBatch, so a full stdout pipe is waited out like
 * audit.file: stderr, and a failed write keeps the lines (bounded) for the next flush.
 */
export function createStdoutOtlpExporter(opts: OtlpOptions & { write?: (s: string) => void; flushMs?: number; now?: () => number; onError?: (err: unknown) => void } = {}): StdoutOtlpExporter {
  const now = opts.now ?? Date.now;
  const report = (err: unknown) => {
    try {
      opts.onError?.(err);
    } catch {}
  };
  const resource = { serviceName: opts.serviceName, serviceInstanceId: opts.serviceInstanceId };
  let batch = "";
  let closed = false;
  const flush = () => {
    if (batch === "") return;
    if (opts.write === undefined) {
      batch = writeBatch(1, batch, report);
      return;
    }
    const out = batch;
    batch = "";
    try {
      opts.write(out);
    } catch (err) {
      report(err);
    }
  };
  const timer = setInterval(flush, opts.flushMs ?? 100);
  timer.unref();
  return {
    send(line, record) {
      if (closed) return;
      try {
        batch += `${formatOtlp(line, parsedRecord(line, record), { ...resource, observedUnixMs: now() })}\n`;
      } catch (err) {
        report(err);
      }
      if (batch.length >= BATCH_BYTES) flush();
    },
    flush,
    close() {
      if (closed) return;
      clearInterval(timer);
      flush();
      closed = true;
    },
  };
}

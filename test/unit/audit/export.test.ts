/**
 * audit.export (src/audit/export.ts): records as RFC 5424 syslog over UDP and TCP to real loopback
 * collectors this test starts, and as OTLP/JSON lines. Every syslog message received is read back
 * by a strict RFC 5424 parser (below), and TCP streams by a strict RFC 6587 octet-counting
 * deframer, so a header, SD or framing mistake fails here. Network waits poll with a deadline.
 */
import { afterEach, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import net from "node:net";
import { createStdoutOtlpExporter, createSyslogExporter, facilityCode, formatOtlp, formatSyslog, MAX_UDP_MESSAGE, type SyslogExporter, truncateUtf8, unixNanos } from "../../../src/audit/export.ts";
import { SYSLOG_FACILITIES } from "../../../src/config/schema.ts";
import { GENESIS_PREV, sealRecord } from "../../../src/audit/log-format.ts";

// ---------------------------------------------------------------------------------------------
// Records

/** A sealed record, as the recorder writes it: its line and the parsed object. */
function sealed(seq: number, extra: Record<string, unknown> = {}): { line: string; record: Record<string, unknown> } {
  const body = { time: "2025-01-01T00:00:00.123Z", kind: "http", agent: "anonymous", method: "GET", host: "api.example", port: 443, path: "/v1", verdict: "allow", rule: "egress.allow-host", reason: "allowlisted", status: 200, seq, prev: GENESIS_PREV, ...extra };
  const { line } = sealRecord(body);
  return { line, record: JSON.parse(line) as Record<string, unknown> };
}

const HEADER = { facility: 16, hostname: "node-1", appName: "sluice", procId: "4242" };

// ---------------------------------------------------------------------------------------------
// A strict RFC 5424 parser

const PRINTUSASCII = /^[\x21-\x7e]+$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;
const BOM = "\uFEFF";

interface Syslog {
  pri: number;
  facility: number;
  severity: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: { id: string; params: [string, string][] }[];
  bom: boolean;
  msg: string;
}

/** RFC 5424 §6, strictly: throws on the first deviation. `bytes` must be valid UTF-8. */
function parseSyslog(bytes: Uint8Array): Syslog {
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  const head = /^<(0|[1-9]\d{0,2})>1 (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(text);
  if (head === null) throw new Error(`bad HEADER: ${text.slice(0, 80)}`);
  const pri = Number(head[1]);
  if (pri > 191) throw new Error(`PRI ${pri} > 191`);
  const [timestamp, hostname, appName, procId, msgId] = head.slice(2) as [string, string, string, string, string];
  if (timestamp !== "-" && (!TIMESTAMP.test(timestamp) || Number.isNaN(Date.parse(timestamp)))) throw new Error(`bad TIMESTAMP ${timestamp}`);
  const field = (name: string, v: string, max: number) => {
    if (!PRINTUSASCII.test(v) || v.length > max) throw new Error(`bad ${name} ${v}`);
  };
  field("HOSTNAME", hostname, 255);
  field("APP-NAME", appName, 48);
  field("PROCID", procId, 128);
  field("MSGID", msgId, 32);

  let at = head[0].length;
  const sd: Syslog["sd"] = [];
  const name = () => {
    const m = /^[^= \]"\x00-\x20\x7f-\uffff]{1,32}/.exec(text.slice(at));
    if (m === null) throw new Error(`bad SD-NAME at ${at}`);
    at += m[0].length;
    return m[0];
  };
  if (text[at] === "-") at++;
  else {
    while (text[at] === "[") {
      at++;
      const element = { id: name(), params: [] as [string, string][] };
      while (text[at] === " ") {
        at++;
        const key = name();
        if (text.slice(at, at + 2) !== '="') throw new Error(`bad PARAM at ${at}`);
        at += 2;
        let value = "";
        for (;;) {
          const c = text[at++];
          if (c === undefined) throw new Error("unterminated PARAM-VALUE");
          if (c === '"') break;
          if (c === "]") throw new Error("unescaped ] in PARAM-VALUE");
          if (c === "\\" && (text[at] === '"' || text[at] === "\\" || text[at] === "]")) value += text[at++];
          else value += c;
        }
        element.params.push([key, value]);
      }
      if (text[at++] !== "]") throw new Error(`SD-ELEMENT not closed at ${at - 1}`);
      sd.push(element);
    }
    if (sd.length === 0) throw new Error("neither SD-ELEMENT nor NILVALUE");
  }
  let msg = "";
  if (at < text.length) {
    if (text[at] !== " ") throw new Error(`no SP before MSG at ${at}`);
    msg = text.slice(at + 1);
  }
  const bom = msg.startsWith(BOM);
  return { pri, facility: pri >> 3, severity: pri & 7, timestamp, hostname, appName, procId, msgId, sd, bom, msg: bom ? msg.slice(1) : msg };
}

const sdParams = (m: Syslog, id = "sluice@53595") => Object.fromEntries(m.sd.find((e) => e.id === id)?.params ?? []);

// ---------------------------------------------------------------------------------------------
// A strict RFC 6587 §3.4.1 octet-counting deframer

function createDeframer() {
  let buf = Buffer.alloc(0);
  /** Bytes of the current frame seen in earlier chunks: a message that spanned reads. */
  let carried = false;
  const out = { messages: [] as Buffer[], spanned: 0, readsWithSeveral: 0 };
  const push = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    let inThisRead = 0;
    for (;;) {
      const sp = buf.indexOf(0x20);
      if (sp < 0) break;
      const len = buf.subarray(0, sp).toString("latin1");
      if (!/^[1-9]\d*$/.test(len)) throw new Error(`bad MSG-LEN "${len.slice(0, 20)}"`);
      const end = sp + 1 + Number(len);
      if (buf.length < end) break;
      out.messages.push(buf.subarray(sp + 1, end));
      if (carried) out.spanned++;
      carried = false;
      inThisRead++;
      buf = buf.subarray(end);
    }
    if (buf.length > 0) carried = true;
    if (inThisRead > 1) out.readsWithSeveral++;
  };
  return { push, out, rest: () => buf.length };
}

// ---------------------------------------------------------------------------------------------
// Loopback collectors, and waiting

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function udpCollector() {
  const socket = dgram.createSocket("udp4");
  const datagrams: Buffer[] = [];
  socket.on("message", (m) => datagrams.push(m));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { port: socket.address().port, datagrams, close: () => socket.close() };
}

/** A TCP collector; each accepted connection gets its own deframer. `paused` holds reads back until resume(). */
async function tcpCollector(opts: { port?: number; paused?: boolean } = {}) {
  const c = await startTcpCollector(opts);
  open.push(c);
  return c;
}

async function startTcpCollector(opts: { port?: number; paused?: boolean }) {
  const connections: { socket: net.Socket; deframer: ReturnType<typeof createDeframer> }[] = [];
  const server = net.createServer((socket) => {
    const deframer = createDeframer();
    connections.push({ socket, deframer });
    if (opts.paused) socket.pause();
    socket.on("data", (d: Buffer) => deframer.push(d));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", resolve);
  });
  const messages = () => connections.flatMap((c) => c.deframer.out.messages.map(parseSyslog));
  /** Stops accepting and drops every connection: the collector is down. */
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const c of connections) c.socket.destroy();
    });
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    messages,
    resume: () => {
      for (const c of connections) c.socket.resume();
    },
    stop,
    close: stop,
  };
}

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});
function exporter(opts: Parameters<typeof createSyslogExporter>[0]): SyslogExporter {
  const e = createSyslogExporter(opts);
  open.push(e);
  return e;
}

// ---------------------------------------------------------------------------------------------

describe("facilityCode", () => {
  test("maps syslog.conf names to RFC 5424 codes", () => {
    expect(facilityCode("kern")).toBe(0);
    expect(facilityCode("user")).toBe(1);
    expect(facilityCode("daemon")).toBe(3);
    expect(facilityCode("authpriv")).toBe(10);
    expect(facilityCode("local0")).toBe(16);
    expect(facilityCode("local7")).toBe(23);
  });

  test("an unknown name is a clear error, inherited object keys included", () => {
    for (const bad of ["local8", "", "LOCAL0", "toString", "__proto__"]) {
      expect(() => facilityCode(bad)).toThrow(`unknown syslog facility "${bad}": use one of kern, user,`);
    }
  });

  test("an out-of-range facility number is refused", () => {
    const { line, record } = sealed(1);
    expect(() => formatSyslog(line, record, { ...HEADER, facility: 24 })).toThrow("0-23");
    expect(() => createSyslogExporter({ protocol: "udp", host: "127.0.0.1", port: 514, facility: -1 })).toThrow("0-23");
  });
});

describe("formatSyslog", () => {
  test("a record as a strict RFC 5424 message: header from the record, SD params, BOM + line", () => {
    const { line, record } = sealed(12, { verdict: "block", rule: "dlp.aws-access-key-id", reason: "dlp_finding", status: 403 });
    const text = formatSyslog(line, record, HEADER);
    const m = parseSyslog(Buffer.from(text));
    expect(m).toMatchObject({ pri: 16 * 8 + 4, timestamp: "2025-01-01T00:00:00.123Z", hostname: "node-1", appName: "sluice", procId: "4242", msgId: "http", bom: true, msg: line });
    expect(m.sd).toEqual([{ id: "sluice@53595", params: [["seq", "12"], ["agent", "anonymous"], ["verdict", "block"], ["rule", "dlp.aws-access-key-id"], ["hash", record.hash as string]] }]);
  });

  test("severity: block and audit.recovered warning, redact/warn notice, allow and housekeeping informational", () => {
    const severity = (extra: Record<string, unknown>) => {
      const { line, record } = sealed(1, extra);
      return parseSyslog(Buffer.from(formatSyslog(line, record, HEADER))).severity;
    };
    expect(severity({ verdict: "block" })).toBe(4);
    expect(severity({ verdict: "redact" })).toBe(5);
    expect(severity({ verdict: "warn" })).toBe(5);
    expect(severity({ verdict: "allow" })).toBe(6);
    expect(severity({ kind: "lifecycle", verdict: "allow", rule: "lifecycle.start" })).toBe(6);
    expect(severity({ kind: "config", verdict: "block" })).toBe(6);
    expect(severity({ kind: "tree_head", verdict: undefined, rule: undefined })).toBe(6);
    expect(severity({ kind: "recovered", verdict: "allow", rule: "audit.recovered" })).toBe(4);
  });

  test('SD PARAM-VALUE escapes ", \\ and ] and reads back unchanged', () => {
    const agent = 'a"b\\c]d[e';
    const { line, record } = sealed(3, { agent });
    const text = formatSyslog(line, record, HEADER);
    expect(text).toContain(' agent="a\\"b\\\\c\\]d[e"');
    expect(sdParams(parseSyslog(Buffer.from(text))).agent).toBe(agent);
  });

  test("header fields: PRINTUSASCII only, cut to their RFC lengths, NILVALUE when empty", () => {
    const { line, record } = sealed(1, { kind: "k".repeat(40) });
    const m = parseSyslog(Buffer.from(formatSyslog(line, record, { facility: 1, hostname: "h".repeat(300), appName: "my app\u00e9", procId: "" })));
    expect(m.hostname).toBe("h".repeat(255));
    expect(m.appName).toBe("my_app_");
    expect(m.procId).toBe("-");
    expect(m.msgId).toBe("k".repeat(32));
    const long = parseSyslog(Buffer.from(formatSyslog(line, record, { ...HEADER, appName: "a".repeat(60), procId: "p".repeat(200) })));
    expect([long.appName.length, long.procId.length]).toEqual([48, 128]);
  });

  test("a time that is not an RFC 5424 TIMESTAMP becomes NILVALUE", () => {
    for (const time of ["yesterday", "2025-01-01 00:00:00Z", "2025-01-01T00:00:00.1234567Z", "2025-13-01T00:00:00Z"]) {
      const { line, record } = sealed(1, { time });
      expect(parseSyslog(Buffer.from(formatSyslog(line, record, HEADER))).timestamp).toBe("-");
    }
    const { line, record } = sealed(1, { time: "2025-01-01T01:00:00.123456+01:00" });
    expect(parseSyslog(Buffer.from(formatSyslog(line, record, HEADER))).timestamp).toBe("2025-01-01T01:00:00.123456+01:00");
  });
});

describe("truncateUtf8", () => {
  test("never ends inside a character, whatever the cut", () => {
    const buf = Buffer.from("a\u00e9\u20ac\u{1F600}b".repeat(3), "utf8");
    for (let max = 0; max <= buf.length + 1; max++) {
      const cut = truncateUtf8(buf, max);
      expect(cut.length).toBeLessThanOrEqual(max);
      expect(cut.length).toBeGreaterThan(max - 4);
      expect(buf.subarray(0, cut.length).equals(cut)).toBe(true);
      expect(() => new TextDecoder("utf-8", { fatal: true }).decode(cut)).not.toThrow();
    }
  });
});

describe("syslog over UDP", () => {
  test("one message per datagram, each a strict RFC 5424 message carrying its record line", async () => {
    const collector = await udpCollector();
    open.push(collector);
    const e = exporter({ protocol: "udp", host: "127.0.0.1", port: collector.port, facility: facilityCode("local3"), hostname: "node-1" });
    const records = [sealed(1), sealed(2, { verdict: "block", agent: 'x"]' }), sealed(3, { host: "b\u00fccher.example" })];
    // The first sends go out before connect() has finished: they wait for it.
    e.send(records[0]!.line, records[0]!.record);
    e.send(records[1]!.line);
    e.send(records[2]!.line, records[2]!.record);
    await waitFor(() => collector.datagrams.length === 3, "3 datagrams");
    const got = collector.datagrams.map(parseSyslog).sort((a, b) => Number(sdParams(a).seq) - Number(sdParams(b).seq));
    expect(got.map((m) => m.msg)).toEqual(records.map((r) => r.line));
    expect(got.map((m) => [m.facility, m.severity, m.hostname, m.appName, m.procId, m.bom])).toEqual([
      [19, 6, "node-1", "sluice", String(process.pid), true],
      [19, 4, "node-1", "sluice", String(process.pid), true],
      [19, 6, "node-1", "sluice", String(process.pid), true],
    ]);
    expect(sdParams(got[1]!).agent).toBe('x"]');
  });

  test("more sends than maxQueue before the socket is connected: the newest go, with a notice of the dropped", async () => {
    const collector = await udpCollector();
    open.push(collector);
    const e = exporter({ protocol: "udp", host: "127.0.0.1", port: collector.port, facility: 16, maxQueue: 2 });
    const records = Array.from({ length: 5 }, (_, i) => sealed(i));
    for (const r of records) e.send(r.line, r.record);
    expect(e.stats()).toEqual({ connected: false, queued: 2, dropped: 3 });
    await waitFor(() => collector.datagrams.length === 3, "the notice and 2 records");
    const got = collector.datagrams.map(parseSyslog);
    expect(got.filter((m) => m.msgId === "dropped").map((m) => sdParams(m).dropped)).toEqual(["3"]);
    expect(got.filter((m) => m.msgId === "http").map((m) => m.msg).sort()).toEqual(records.slice(3).map((r) => r.line).sort());
  });

  test("a message past the UDP limit is cut to it, on a UTF-8 character boundary", async () => {
    const collector = await udpCollector();
    open.push(collector);
    const e = exporter({ protocol: "udp", host: "127.0.0.1", port: collector.port, facility: 1, hostname: "node-1" });
    // Pad so that a 3-byte character straddles the limit: a byte-exact cut would split it.
    let pad = "";
    let full = Buffer.alloc(0);
    let line = "";
    for (;;) {
      const s = sealed(1, { detail: pad + "\u20ac".repeat(30_000) });
      line = s.line;
      full = Buffer.from(formatSyslog(line, s.record, { ...HEADER, facility: 1, procId: String(process.pid) }), "utf8");
      if ((full[MAX_UDP_MESSAGE]! & 0xc0) === 0x80) break;
      pad += "a";
    }
    expect(full.length).toBeGreaterThan(MAX_UDP_MESSAGE);
    e.send(line);
    await waitFor(() => collector.datagrams.length === 1, "the datagram");
    const got = collector.datagrams[0]!;
    expect(got.length).toBeLessThan(MAX_UDP_MESSAGE);
    expect(got.length).toBeGreaterThan(MAX_UDP_MESSAGE - 3);
    expect(full.subarray(0, got.length).equals(got)).toBe(true);
    expect(parseSyslog(got).msg).toBe(line.slice(0, parseSyslog(got).msg.length));
  });
});

describe("syslog over TCP", () => {
  test("octet-counted frames: several in one read, a large one across reads, all in order", async () => {
    const collector = await tcpCollector();
    const e = exporter({ protocol: "tcp", host: "127.0.0.1", port: collector.port, facility: 16, hostname: "node-1" });
    await waitFor(() => e.stats().connected, "the connection");
    const records = Array.from({ length: 20 }, (_, i) => sealed(i, { path: `/caf\u00e9/${i}` }));
    records.push(sealed(20, { detail: "\u00e9".repeat(400_000) }));
    for (const r of records) e.send(r.line, r.record);
    await waitFor(() => collector.messages().length === records.length, `${records.length} messages`);
    expect(collector.messages().map((m) => m.msg)).toEqual(records.map((r) => r.line));
    const { out } = collector.connections[0]!.deframer;
    expect(out.readsWithSeveral).toBeGreaterThan(0);
    expect(out.spanned).toBeGreaterThan(0);
    expect(collector.connections[0]!.deframer.rest()).toBe(0);
    await e.close();
    await collector.stop();
  });

  test("reconnects after the collector restarts: queued records in order, after a notice of the dropped ones", async () => {
    const errors: unknown[] = [];
    let collector = await tcpCollector();
    const port = collector.port;
    const e = exporter({ protocol: "tcp", host: "127.0.0.1", port, facility: 16, hostname: "node-1", maxQueue: 3, onError: (err) => errors.push(err), now: () => Date.parse("2025-02-02T00:00:00Z") });
    const records = Array.from({ length: 6 }, (_, i) => sealed(i, { verdict: "block", rule: "dlp.github-token" }));
    e.send(records[0]!.line, records[0]!.record);
    await waitFor(() => collector.messages().length === 1, "the first record");

    await collector.stop();
    await waitFor(() => !e.stats().connected, "the exporter to see the collector go");
    for (const r of records.slice(1)) e.send(r.line, r.record);
    expect(e.stats()).toEqual({ connected: false, queued: 3, dropped: 2 });

    collector = await tcpCollector({ port });
    await waitFor(() => collector.messages().length === 4, "the notice and 3 queued records");
    const [notice, ...rest] = collector.messages();
    expect(notice).toMatchObject({ severity: 4, facility: 16, msgId: "dropped", timestamp: "2025-02-02T00:00:00.000Z", bom: true });
    expect(sdParams(notice!)).toEqual({ dropped: "2" });
    expect(notice!.msg).toContain("dropped 2 audit record");
    for (const r of records) expect(notice!.msg).not.toContain(r.record.hash as string);
    expect(rest.map((m) => m.msg)).toEqual(records.slice(3).map((r) => r.line));
    expect(e.stats()).toEqual({ connected: true, queued: 0, dropped: 0 });
    expect(errors.map(String).some((s) => s.includes("closed the connection"))).toBe(true);
    await e.close();
    await collector.stop();
  });

  test("backpressure: past maxQueue records are dropped and counted, none lost without a notice", async () => {
    const collector = await tcpCollector({ paused: true });
    const e = exporter({ protocol: "tcp", host: "127.0.0.1", port: collector.port, facility: 16, maxQueue: 10 });
    await waitFor(() => e.stats().connected, "the connection");
    const total = 400;
    for (let i = 0; i < total; i++) {
      const r = sealed(i, { detail: "x".repeat(64 * 1024) });
      e.send(r.line, r.record);
    }
    const { queued, dropped } = e.stats();
    expect(queued).toBe(10);
    expect(dropped).toBeGreaterThan(0);
    collector.resume();
    const delivered = () => collector.messages().filter((m) => m.msgId === "http").length;
    const noticed = () => collector.messages().reduce((n, m) => n + (m.msgId === "dropped" ? Number(sdParams(m).dropped) : 0), 0);
    await waitFor(() => delivered() + noticed() === total, "every record delivered or counted");
    expect(noticed()).toBe(dropped);
    const seqs = collector.messages().filter((m) => m.msgId === "http").map((m) => Number(sdParams(m).seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs.slice(-10)).toEqual(Array.from({ length: 10 }, (_, i) => total - 10 + i));
    await e.close();
    await collector.stop();
  });

  test("backpressure within maxQueue: records wait for 'drain' and all arrive, in order", async () => {
    const collector = await tcpCollector({ paused: true });
    const e = exporter({ protocol: "tcp", host: "127.0.0.1", port: collector.port, facility: 16, maxQueue: 1000 });
    await waitFor(() => e.stats().connected, "the connection");
    const total = 400;
    for (let i = 0; i < total; i++) {
      const r = sealed(i, { detail: "x".repeat(64 * 1024) });
      e.send(r.line, r.record);
    }
    expect(e.stats().queued).toBeGreaterThan(0);
    expect(e.stats().dropped).toBe(0);
    collector.resume();
    await waitFor(() => collector.messages().length === total, `${total} records`);
    expect(collector.messages().map((m) => Number(sdParams(m).seq))).toEqual(Array.from({ length: total }, (_, i) => i));
    await e.close();
  });

  test("close() delivers what is queued, then later sends are ignored", async () => {
    const collector = await tcpCollector();
    const e = exporter({ protocol: "tcp", host: "127.0.0.1", port: collector.port, facility: 16 });
    // Sent before the connection is up, closed at once: 'connect' delivers them, then ends.
    const records = Array.from({ length: 5 }, (_, i) => sealed(i));
    for (const r of records) e.send(r.line, r.record);
    await e.close();
    e.send(sealed(9).line);
    await waitFor(() => collector.connections[0]?.socket.readableEnded === true, "the collector to see the end");
    expect(collector.messages().map((m) => m.msg)).toEqual(records.map((r) => r.line));
    await collector.stop();
  });

  test("never throws into the caller: a bad line and a collector that is down go to onError", async () => {
    const probe = await tcpCollector();
    const port = probe.port;
    await probe.stop();
    const errors: unknown[] = [];
    const e = exporter({ protocol: "tcp", host: "127.0.0.1", port, facility: 16, onError: (err) => errors.push(err) });
    expect(() => e.send("not json")).not.toThrow();
    expect(errors[0]).toBeInstanceOf(SyntaxError);
    e.send(sealed(1).line);
    await waitFor(() => errors.some((err) => (err as NodeJS.ErrnoException).code === "ECONNREFUSED"), "ECONNREFUSED");
    await e.close();
    expect(errors.map(String).some((s) => s.includes("closed with 1 message(s) not sent"))).toBe(true);
  });
});

describe("OTLP/JSON", () => {
  test("one ExportLogsServiceRequest per record: resource, scope, times and ints as strings, severity, attributes", () => {
    const { line, record } = sealed(12, { verdict: "block", rule: "dlp.aws-access-key-id", reason: "dlp_finding", method: "POST", status: 403 });
    const text = formatOtlp(line, record, { serviceInstanceId: "pod-7", observedUnixMs: Date.parse("2025-01-01T00:00:01Z") });
    expect(text).not.toContain("\n");
    const doc = JSON.parse(text);
    expect(Object.keys(doc)).toEqual(["resourceLogs"]);
    const [rl] = doc.resourceLogs;
    expect(rl.resource.attributes).toEqual([
      { key: "service.name", value: { stringValue: "sluice" } },
      { key: "service.instance.id", value: { stringValue: "pod-7" } },
    ]);
    expect(rl.scopeLogs).toHaveLength(1);
    expect(rl.scopeLogs[0].scope).toEqual({ name: "sluice.audit" });
    const [lr] = rl.scopeLogs[0].logRecords;
    expect(lr).toEqual({
      timeUnixNano: "1735689600123000000",
      observedTimeUnixNano: "1735689601000000000",
      severityNumber: 13,
      severityText: "WARN",
      body: { stringValue: line },
      attributes: [
        { key: "sluice.seq", value: { intValue: "12" } },
        { key: "sluice.kind", value: { stringValue: "http" } },
        { key: "sluice.verdict", value: { stringValue: "block" } },
        { key: "sluice.rule", value: { stringValue: "dlp.aws-access-key-id" } },
        { key: "sluice.reason", value: { stringValue: "dlp_finding" } },
        { key: "sluice.agent", value: { stringValue: "anonymous" } },
        { key: "sluice.hash", value: { stringValue: record.hash } },
        { key: "sluice.host", value: { stringValue: "api.example" } },
        { key: "sluice.method", value: { stringValue: "POST" } },
        { key: "sluice.status", value: { intValue: "403" } },
      ],
    });
    // OTLP/JSON field names are lowerCamelCase, nowhere snake_case.
    const names: string[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === "object" && v !== null) {
        for (const [k, x] of Object.entries(v)) {
          names.push(k);
          walk(x);
        }
      }
    };
    walk({ ...doc, resourceLogs: [{ ...rl, scopeLogs: [{ ...rl.scopeLogs[0], logRecords: [{ ...lr, body: null }] }] }] });
    expect(names.filter((k) => !/^[a-z][a-zA-Z]*$/.test(k))).toEqual([]);
  });

  test("severity numbers, absent fields left out, times to the nanosecond", () => {
    const lr = (extra: Record<string, unknown>) => {
      const { line, record } = sealed(1, extra);
      return JSON.parse(formatOtlp(line, record)).resourceLogs[0].scopeLogs[0].logRecords[0];
    };
    expect([lr({ verdict: "warn" }).severityNumber, lr({ verdict: "warn" }).severityText]).toEqual([10, "INFO2"]);
    expect([lr({ verdict: "redact" }).severityNumber, lr({ verdict: "allow" }).severityNumber]).toEqual([10, 9]);
    const head = lr({ kind: "tree_head", verdict: undefined, rule: undefined, host: undefined, method: undefined, status: undefined, reason: undefined, agent: undefined });
    expect(head.severityNumber).toBe(9);
    expect(head.attributes.map((a: { key: string }) => a.key)).toEqual(["sluice.seq", "sluice.kind", "sluice.hash"]);
    const untimed = lr({ time: "not a time" });
    expect("timeUnixNano" in untimed || "observedTimeUnixNano" in untimed).toBe(false);
    expect(unixNanos("2025-01-01T01:00:00.123456789+01:00")).toBe("1735689600123456789");
    expect(unixNanos("2025-01-01T00:00:00Z")).toBe("1735689600000000000");
  });

  test("the stdout exporter writes one JSON line per record, batched, and parses lines it is given alone", () => {
    const writes: string[] = [];
    const e = createStdoutOtlpExporter({ write: (s) => writes.push(s), serviceName: "sluice-test", now: () => 0 });
    const records = [sealed(1), sealed(2, { verdict: "redact" }), sealed(3)];
    e.send(records[0]!.line, records[0]!.record);
    e.send(records[1]!.line);
    e.send(records[2]!.line, records[2]!.record);
    expect(writes).toEqual([]);
    e.close();
    expect(writes).toHaveLength(1);
    const lines = writes[0]!.split("\n");
    expect(lines.pop()).toBe("");
    const docs = lines.map((l) => JSON.parse(l));
    expect(docs.map((d) => d.resourceLogs[0].scopeLogs[0].logRecords[0].body.stringValue)).toEqual(records.map((r) => r.line));
    expect(docs.map((d) => d.resourceLogs[0].scopeLogs[0].logRecords[0].observedTimeUnixNano)).toEqual(["0", "0", "0"]);
    expect(docs[0].resourceLogs[0].resource.attributes).toEqual([{ key: "service.name", value: { stringValue: "sluice-test" } }]);
    e.send(records[0]!.line);
    e.close();
    expect(writes).toHaveLength(1);
  });
});

describe("the config's facility names", () => {
  test("are exactly the names facilityCode knows, each its own code", () => {
    const codes = SYSLOG_FACILITIES.map((name) => facilityCode(name));
    expect(new Set(codes).size).toBe(24);
    expect([...codes].sort((a, b) => a - b)).toEqual(Array.from({ length: 24 }, (_, i) => i));
  });
});

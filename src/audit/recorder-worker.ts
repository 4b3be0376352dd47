/**
 * The flight recorder's own thread (started by recorder-thread.ts): it opens the log with
 * openRecorder and seals every record the proxy thread sends (canonical JSON, SHA-256, Merkle
 * leaf, tree heads, writes and syncs), and writes the plain copy (audit.file) and the exports
 * (audit.export: syslog, OTLP on stdout). The proxy thread
 * only serialises each record once; the hashing and the I/O happen here, on another core.
 *
 * Messages in: `init` once, then `records` (batches of JSON lines, in order), `checkpoint`,
 * `close`. Messages out: `ready` or `failed` (for init), `failure` (whenever the log's state
 * changes between writable and failing), `error` (each write error, for the operator's log),
 * `checkpointed`, `closed`. Shared memory (RecorderShared) carries what the proxy thread reads per request
 * without waiting for a message: how many records are done, and whether the log is failing.
 */
import { hostname } from "node:os";
import { createStdoutOtlpExporter, createSyslogExporter, type ExportTarget, facilityCode } from "./export.ts";
import { describeError, openRecorder, type Recorder } from "./recorder.ts";
import { SHARED, type RecorderInit, type ToRecorder } from "./recorder-thread.ts";
import { loadSigningKey } from "./signing-key.ts";
import { createJsonlWriter, type JsonlWriter } from "./sink.ts";

declare const self: Worker;

let recorder: Recorder | null = null;
let copy: JsonlWriter | null = null;
let exports: ExportTarget[] = [];
let shared: Int32Array | null = null;
let lastFailure: string | null = null;

/** Publishes the log's state: in shared memory for the per-request check, by message for the detail. */
function publishFailure(): void {
  const f = recorder?.failure() ?? null;
  const key = f === null ? null : `${f.error}\u0000${f.since}`;
  if (key === lastFailure) return;
  lastFailure = key;
  Atomics.store(shared!, SHARED.failing, f === null ? 0 : 1);
  postMessage({ type: "failure", failure: f });
}

function init(m: RecorderInit): void {
  shared = new Int32Array(m.shared);
  const onError = (err: unknown) => postMessage({ type: "error", error: describeError(err) });
  try {
    const key = loadSigningKey({ home: "", file: m.keyFile, create: false });
    // Exports first: what opening the log writes (a `recovered` record) goes out too.
    const x = m.exports;
    if (x?.syslog) exports.push(createSyslogExporter({ protocol: x.syslog.protocol, host: x.syslog.host, port: x.syslog.port, facility: facilityCode(x.syslog.facility), appName: x.syslog.appName, onError }));
    if (x?.stdout === "otlp") exports.push(createStdoutOtlpExporter({ serviceInstanceId: hostname(), onError }));
    recorder = openRecorder({ ...m.options, key, onError, afterTick: publishFailure, ...(exports.length > 0 ? { onWritten: exportWritten } : {}) });
    copy = createJsonlWriter({ file: m.copy, onError });
  } catch (err) {
    postMessage({ type: "failed", name: err instanceof Error ? err.name : "Error", message: err instanceof Error ? err.message : String(err) });
    return;
  }
  postMessage({ type: "ready", opened: recorder.opened });
}

/**
 * Every line the log writes (records, tree heads, a `recovered` record), once written and in the
 * log's order, goes to the exports: a collector's copy is the log itself, and verifies as it
 * does (`sluice audit verify --otlp`). audit.file's plain copy has the records only.
 */
function exportWritten(lines: string): void {
  let start = 0;
  for (let nl = lines.indexOf("\n"); nl >= 0; start = nl + 1, nl = lines.indexOf("\n", start)) {
    const line = lines.slice(start, nl);
    for (const x of exports) x.send(line);
  }
}

function records(lines: readonly string[]): void {
  for (const line of lines) copy!.writeLine(recorder!.append(JSON.parse(line) as object));
  publishFailure();
  // Done (and with fsync: always, on disk or failed): a waiting proxy thread goes on.
  Atomics.add(shared!, SHARED.done, lines.length);
  Atomics.notify(shared!, SHARED.done);
}

async function close(): Promise<void> {
  recorder?.close();
  copy?.close();
  publishFailure();
  // Exports get what they can still send, briefly (export.ts bounds it); the log is already closed.
  await Promise.allSettled(exports.map((x) => x.close()));
  exports = [];
  postMessage({ type: "closed" });
}

self.onmessage = (e: MessageEvent<ToRecorder>) => {
  const m = e.data;
  switch (m.type) {
    case "init":
      init(m);
      break;
    case "records":
      records(m.lines);
      break;
    case "checkpoint":
      recorder!.checkpoint(m.trigger);
      publishFailure();
      postMessage({ type: "checkpointed" });
      break;
    case "close":
      void close();
      break;
  }
};

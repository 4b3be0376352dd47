/**
 * The flight recorder run on a thread of its own (recorder-worker.ts), behind the same AuditSink
 * the listeners write to. Sealing a record (canonical JSON, SHA-256, the Merkle leaf) and writing
 * it cost the proxy thread about 14 µs per request; here the proxy thread serialises the record
 * once (JSON.stringify), and the lines go over in batches (one message per BATCH_MS). The
 * worker seals them in the order they were made, so the chain is what it would have been in one
 * thread.
 *
 * What the proxy thread must know at once, it reads from shared memory: whether the log is
 * failing (audit.on_failure: block refuses the next request) and how many records are done.
 * With `fsync: always` each record() waits (Atomics.wait) until the worker has written and synced
 * it, so an acknowledged record is on disk exactly as before. A worker that falls far behind
 * slows record() down to its pace rather than let the backlog grow without bound; a worker that
 * stops (or does not answer) is a failing log.
 */
import type { AuditSink } from "../core/types.ts";
import type { RecorderOptions } from "./recorder.ts";
import { auditWorkerUrl } from "./worker-url.ts";

/** Slots of the shared Int32Array. */
export const SHARED = { done: 0, failing: 1 } as const;

export type ThreadOptions = Pick<RecorderOptions, "dir" | "segmentBytes" | "segmentMs" | "checkpointRecords" | "checkpointMs" | "fsync" | "tickMs">;

export interface RecorderInit {
  readonly type: "init";
  readonly options: ThreadOptions;
  /** The signing key's file: loaded (and checked) again by the worker. */
  readonly keyFile: string;
  /** audit.file: the plain copy ("stderr", "off" or a path). */
  readonly copy: string;
  /** audit.export: where else each record goes (export.ts). */
  readonly exports?: ExportSettings;
  readonly shared: SharedArrayBuffer;
}

export interface ExportSettings {
  readonly syslog?: { readonly host: string; readonly port: number; readonly protocol: "udp" | "tcp"; readonly facility: string; readonly appName: string };
  readonly stdout: "otlp" | "off";
}

export type ToRecorder = RecorderInit | { readonly type: "records"; readonly lines: string[] } | { readonly type: "checkpoint"; readonly trigger: string } | { readonly type: "close" };

type Failure = { readonly error: string; readonly since: string };

type FromRecorder =
  | { readonly type: "ready"; readonly opened: ThreadRecorder["opened"] }
  | { readonly type: "failed"; readonly name: string; readonly message: string }
  | { readonly type: "failure"; readonly failure: Failure | null }
  | { readonly type: "error"; readonly error: string }
  | { readonly type: "checkpointed" }
  | { readonly type: "closed" };

export interface ThreadRecorder extends AuditSink {
  /** Queues a record already serialised as one JSON object. */
  recordLine(line: string): void;
  /** Signs a tree head now, after the records queued before it; settles once it is written. */
  checkpoint(trigger: string): Promise<void>;
  /** As Recorder.failure(): why the log cannot be written now, or null. */
  failure(): Failure | null;
  /** Writes what is queued, signs the closing tree head and stops the thread. */
  close(): Promise<void>;
  readonly opened: { readonly resumedAt: number; readonly segment: string; readonly repaired: string | null };
}

/** The worker failed to open the log: the message is openRecorder's (AuditLogError and kin). */
export class RecorderStartError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
    this.name = "RecorderStartError";
  }
}

/** Records sent but not done past which record() waits for the worker to catch up. */
const MAX_BEHIND = 50_000;
/** How long a waiting record() gives the worker before the log counts as failing. */
const WAIT_MS = 10_000;
/**
 * A batch is sent this long after its first line, or at once when it reaches BATCH_LINES. Each
 * message wakes the worker (a syscall and a context switch for both threads): one per turn of
 * the event loop cost the proxy ~25% of its requests/s; one per 10 ms costs nothing measurable,
 * and the log is synced only every ~100 ms anyway (fsync: interval).
 */
const BATCH_MS = 10;
const BATCH_LINES = 1024;

export async function startRecorderThread(opts: { options: ThreadOptions; keyFile: string; copy: string; exports?: ExportSettings; onError: (error: string) => void }): Promise<ThreadRecorder> {
  const worker = new Worker(auditWorkerUrl("recorder-worker.ts"));
  // The proxy's own shutdown decides when the process ends (close() first, then exit).
  worker.unref();
  const sharedBuffer = new SharedArrayBuffer(8);
  const shared = new Int32Array(sharedBuffer);
  let detail: Failure | null = null;
  let stopped: Failure | null = null;
  let onClosed: (() => void) | null = null;
  // The worker answers checkpoints in the order they were asked for.
  const checkpoints: (() => void)[] = [];
  // Counted as int32 on both sides, like the shared counter, and compared by difference (| 0):
  // correct across the wrap at 2^31 records as long as fewer than 2^31 are in flight.
  let sent = 0;
  let queue: string[] = [];
  let scheduled = false;

  const opened = await new Promise<ThreadRecorder["opened"]>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<FromRecorder>) => {
      const m = e.data;
      if (m.type === "ready") resolve(m.opened);
      else if (m.type === "failed") reject(new RecorderStartError(m.name, m.message));
      else if (m.type === "failure") detail = m.failure;
      else if (m.type === "error") opts.onError(m.error);
      else if (m.type === "checkpointed") checkpoints.shift()?.();
      else if (m.type === "closed") onClosed?.();
    };
    worker.onerror = (e) => {
      const message = e.message || "the audit recorder thread failed";
      stopped ??= { error: `the audit recorder thread stopped: ${message}`, since: new Date().toISOString() };
      opts.onError(stopped.error);
      reject(new RecorderStartError("Error", message));
      for (const settle of checkpoints.splice(0)) settle();
      onClosed?.();
    };
    const init: RecorderInit = { type: "init", options: opts.options, keyFile: opts.keyFile, copy: opts.copy, ...(opts.exports ? { exports: opts.exports } : {}), shared: sharedBuffer };
    worker.postMessage(init);
  });

  /** Waits (blocking this thread) until the worker has done `n` records; false if it did not in time. */
  const waitDone = (n: number): boolean => {
    const deadline = performance.now() + WAIT_MS;
    for (;;) {
      const done = Atomics.load(shared, SHARED.done);
      if (((done - n) | 0) >= 0) return true;
      const left = deadline - performance.now();
      if (left <= 0 || stopped !== null) break;
      Atomics.wait(shared, SHARED.done, done, left);
    }
    stopped ??= { error: "the audit recorder thread did not answer in time", since: new Date().toISOString() };
    opts.onError(stopped.error);
    return false;
  };

  const send = () => {
    scheduled = false;
    if (queue.length === 0) return;
    const lines = queue;
    queue = [];
    sent = (sent + lines.length) | 0;
    worker.postMessage({ type: "records", lines } satisfies ToRecorder);
    // A worker far behind slows the producer to its pace (records are never dropped here).
    if (((sent - Atomics.load(shared, SHARED.done)) | 0) > MAX_BEHIND && stopped === null) waitDone((sent - MAX_BEHIND / 2) | 0);
  };

  const recordLine = (line: string) => {
    // A stopped thread writes nothing (failure() says so); a closed log takes nothing more.
    if (stopped !== null || onClosed !== null) return;
    queue.push(line);
    if (opts.options.fsync === "always") {
      // Acknowledged only once written and synced (or failed, which failure() then says).
      send();
      waitDone(sent);
    } else if (queue.length >= BATCH_LINES) send();
    else if (!scheduled) {
      scheduled = true;
      setTimeout(send, BATCH_MS);
    }
  };

  return {
    record: (r) => recordLine(JSON.stringify(r)),
    recordLine,
    checkpoint(trigger) {
      if (stopped !== null || onClosed !== null) return Promise.resolve();
      send();
      worker.postMessage({ type: "checkpoint", trigger } satisfies ToRecorder);
      return new Promise<void>((resolve) => checkpoints.push(resolve));
    },
    failure() {
      if (stopped !== null) return stopped;
      if (Atomics.load(shared, SHARED.failing) === 0) return null;
      return detail ?? { error: "the audit log cannot be written", since: new Date().toISOString() };
    },
    async close() {
      if (onClosed !== null) return;
      const closed = new Promise<void>((resolve) => {
        onClosed = resolve;
      });
      send();
      worker.postMessage({ type: "close" } satisfies ToRecorder);
      const timer = setTimeout(() => onClosed?.(), WAIT_MS);
      await closed;
      clearTimeout(timer);
      worker.terminate();
    },
    opened,
  };
}

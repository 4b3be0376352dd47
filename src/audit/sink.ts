/**
 * Decision records out: JSON lines to stderr or a file (appended, created 0600). Lines are
 * batched in memory and written when 64 KiB have gathered or every `flushMs`, so a busy proxy
 * makes one write call per batch, not one per request. The flight-recorder issue replaces this
 * with the hash-chained, signed log behind the same AuditSink interface.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import type { AuditSink } from "../core/types.ts";

const BATCH_BYTES = 64 * 1024;

export interface JsonlWriter {
  /** One serialised record, without the newline. */
  writeLine(line: string): void;
  flush(): void;
  /** Flushes and closes; later calls do nothing. */
  close(): void;
}

/** Records kept in memory while the destination refuses writes, before the oldest are dropped. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;

export function createJsonlWriter(opts: { file: string; flushMs?: number; onError?: (err: unknown) => void }): JsonlWriter {
  // audit.file: off: the signed log (recorder.ts) is the only copy.
  if (opts.file === "off") return { writeLine() {}, flush() {}, close() {} };
  const fd = opts.file === "stderr" ? 2 : openSync(opts.file, "a", 0o600);
  // String concatenation builds a rope: appending is cheap, and the one flatten happens in
  // Buffer.from at flush (measured faster here than encoding into a reused Buffer per line).
  let batch = "";
  let closed = false;
  const flush = () => {
    if (batch.length === 0 || closed) return;
    const buf = Buffer.from(batch, "utf8");
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(fd, buf, off);
      } catch (err) {
        // stderr can be a non-blocking pipe: when it is full, wait for the reader rather than
        // lose records. The proxy stalls meanwhile, which is failing closed.
        if ((err as NodeJS.ErrnoException).code === "EAGAIN") {
          Bun.sleepSync(1);
          continue;
        }
        // Anything else (disk full, a closed descriptor): keep what was not written, bounded,
        // and say so. Never throw into the request path that happened to trigger the flush.
        opts.onError?.(err);
        batch = buf.subarray(off).toString("utf8");
        if (batch.length > MAX_PENDING_BYTES) batch = batch.slice(batch.indexOf("\n", batch.length - MAX_PENDING_BYTES) + 1);
        return;
      }
    }
    batch = "";
  };
  const timer = setInterval(flush, opts.flushMs ?? 100);
  timer.unref();
  return {
    writeLine(line) {
      if (closed) return;
      batch += `${line}\n`;
      if (batch.length >= BATCH_BYTES) flush();
    },
    flush,
    close() {
      if (closed) return;
      clearInterval(timer);
      flush();
      closed = true;
      if (fd !== 2) closeSync(fd);
    },
  };
}

/** The writer as an AuditSink: each record serialised once, as one line. */
export function createJsonlSink(opts: { file: string; flushMs?: number }): AuditSink {
  const writer = createJsonlWriter(opts);
  return { record: (r) => writer.writeLine(JSON.stringify(r)), close: () => writer.close() };
}

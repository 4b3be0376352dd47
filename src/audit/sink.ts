/**
 * Decision records out: JSON lines to stderr or a file (appended, created 0600). Lines are
 * batched in memory and written when 64 KiB have gathered or every `flushMs`, so a busy proxy
 * makes one write call per batch, not one per request. Used for audit.file, the plain copy of the
 * signed log (recorder.ts), which writes its batches with writeBatch too.
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

/**
 * Writes a batch of whole lines to `fd`; returns what was not written ("" when all was). A full
 * non-blocking pipe (stderr) is waited out rather than records lost; the proxy stalls meanwhile,
 * which is failing closed. Any other error (disk full, a closed descriptor) is passed to `onError`
 * and the rest kept, at most MAX_PENDING_BYTES of the newest whole lines; never thrown into the
 * request path that happened to trigger the write. The rest of a half-written line goes first
 * next time, so the line ends whole once the destination takes it.
 */
export function writeBatch(fd: number, batch: string, onError: (err: unknown) => void, written?: (text: string) => void): string {
  const buf = Buffer.from(batch, "utf8");
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EAGAIN") {
        Bun.sleepSync(1);
        continue;
      }
      onError(err);
      if (off > 0) written?.(buf.subarray(0, off).toString("utf8"));
      const rest = buf.subarray(off).toString("utf8");
      return rest.length > MAX_PENDING_BYTES ? rest.slice(rest.indexOf("\n", rest.length - MAX_PENDING_BYTES) + 1) : rest;
    }
  }
  written?.(batch);
  return "";
}

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
    batch = writeBatch(fd, batch, (err) => opts.onError?.(err));
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

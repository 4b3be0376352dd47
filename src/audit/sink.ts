/**
 * Decision records out: JSON lines to stderr or a file (appended, created 0600). Lines are
 * batched in memory and written when 64 KiB have gathered or every `flushMs`, so a busy proxy
 * makes one write call per batch, not one per request. The flight-recorder issue replaces this
 * with the hash-chained, signed log behind the same AuditSink interface.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import type { AuditRecord, AuditSink } from "../core/types.ts";

const BATCH_BYTES = 64 * 1024;

export function createJsonlSink(opts: { file: string; flushMs?: number }): AuditSink {
  const fd = opts.file === "stderr" ? 2 : openSync(opts.file, "a", 0o600);
  let batch: string[] = [];
  let size = 0;
  const flush = () => {
    if (batch.length === 0) return;
    const text = batch.join("");
    batch = [];
    size = 0;
    writeAll(fd, Buffer.from(text, "utf8"));
  };
  const timer = setInterval(flush, opts.flushMs ?? 100);
  timer.unref();
  return {
    record(record) {
      const line = `${JSON.stringify(record)}\n`;
      batch.push(line);
      size += line.length;
      if (size >= BATCH_BYTES) flush();
    },
    close() {
      clearInterval(timer);
      flush();
      if (fd !== 2) closeSync(fd);
    },
  };
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
}

export function createFanoutSink(sinks: readonly AuditSink[]): AuditSink {
  return {
    record(record: AuditRecord) {
      for (const s of sinks) s.record(record);
    },
    async close() {
      for (const s of sinks) await s.close?.();
    },
  };
}

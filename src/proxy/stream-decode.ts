/**
 * Content-Encoding decoded as a body streams (an event stream compressed with gzip, deflate or
 * br): bytes in, decoded bytes out through callbacks, in order, then the end. node:zlib's
 * streaming decoders; a decoding error is reported once and nothing follows it.
 */
import { createBrotliDecompress, createGunzip, createInflate, type Gunzip } from "node:zlib";

export interface StreamDecoder {
  write(bytes: Uint8Array): void;
  /** No more input: `onEnd` follows the last `onData`. */
  end(): void;
  /** Stops decoding; no callback follows. */
  destroy(): void;
}

export interface DecoderEvents {
  onData(bytes: Buffer): void;
  onEnd(): void;
  onError(message: string): void;
}

/** A decoder for one Content-Encoding (gzip, x-gzip, deflate, br), or null for anything else (a list of several included). */
export function createStreamDecoder(contentEncoding: string, events: DecoderEvents): StreamDecoder | null {
  const coding = contentEncoding.trim().toLowerCase();
  const z: Gunzip | null =
    coding === "gzip" || coding === "x-gzip" ? createGunzip() : coding === "deflate" ? createInflate() : coding === "br" ? createBrotliDecompress() : null;
  if (z === null) return null;
  let live = true;
  z.on("data", (b: Buffer) => {
    if (live) events.onData(b);
  });
  z.on("end", () => {
    if (!live) return;
    live = false;
    events.onEnd();
  });
  z.on("error", (err: Error) => {
    if (!live) return;
    live = false;
    events.onError(`${coding}: ${err.message}`);
  });
  return {
    write: (bytes) => {
      if (live) z.write(bytes);
    },
    end: () => {
      if (live) z.end();
    },
    destroy: () => {
      live = false;
      z.destroy();
    },
  };
}

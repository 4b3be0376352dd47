/**
 * Content-Encoding decoded as a body streams (an event stream, or a response too large to hold,
 * compressed with gzip, deflate or br): bytes in, decoded bytes out through callbacks, in order,
 * then the end. node:zlib's streaming decoders; a decoding error, or output past `maxRatio`
 * times the input (a decompression bomb), is reported once and nothing follows it.
 */
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw, type Gunzip } from "node:zlib";

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

/** Output allowed before the ratio applies: a small compressed body may expand a lot legitimately. */
const RATIO_FLOOR = 1024 * 1024;

/**
 * A decoder for one Content-Encoding (gzip, x-gzip, deflate, br), or null for anything else (a
 * list of several included). `deflate` is zlib-wrapped (RFC 9110 §8.4.1.2) or, as some servers
 * send it, raw: the first bytes tell. Past RATIO_FLOOR, decoded output over `maxRatio` times the
 * compressed input so far is an error.
 */
export function createStreamDecoder(contentEncoding: string, events: DecoderEvents, maxRatio: number): StreamDecoder | null {
  const coding = contentEncoding.trim().toLowerCase();
  if (coding !== "gzip" && coding !== "x-gzip" && coding !== "deflate" && coding !== "br") return null;
  let z: Gunzip | null = null;
  let live = true;
  let bytesIn = 0;
  let bytesOut = 0;
  const fail = (message: string) => {
    if (!live) return;
    live = false;
    z?.destroy();
    events.onError(`${coding}: ${message}`);
  };
  const start = (first: Uint8Array): Gunzip => {
    // A zlib header: CMF with method 8, and CMF*256 + FLG a multiple of 31 (RFC 1950 §2.2).
    const zlibWrapped = first.length >= 2 && (first[0]! & 0x0f) === 8 && ((first[0]! << 8) | first[1]!) % 31 === 0;
    const d = coding === "br" ? createBrotliDecompress() : coding === "deflate" ? (zlibWrapped ? createInflate() : createInflateRaw()) : createGunzip();
    d.on("data", (b: Buffer) => {
      if (!live) return;
      bytesOut += b.length;
      if (bytesOut > RATIO_FLOOR && bytesOut > maxRatio * bytesIn) {
        fail(`decompressed to more than ${maxRatio} times its size (a decompression bomb?)`);
        return;
      }
      events.onData(b);
    });
    d.on("end", () => {
      if (!live) return;
      live = false;
      events.onEnd();
    });
    d.on("error", (err: Error) => fail(err.message));
    return d;
  };
  return {
    write: (bytes) => {
      if (!live || bytes.length === 0) return;
      bytesIn += bytes.length;
      z ??= start(bytes);
      z.write(bytes);
    },
    end: () => {
      if (!live) return;
      if (z === null) {
        // Nothing came: an empty body is an empty body, not a broken one.
        live = false;
        events.onEnd();
        return;
      }
      z.end();
    },
    destroy: () => {
      live = false;
      z?.destroy();
    },
  };
}

/**
 * Sans-IO chunked transfer-coding reader (RFC 9112 section 7.1). It validates framing and
 * finds where the body ends without copying data: chunk data is skipped by length, only the
 * size lines are looked at byte by byte. `onData` receives the data spans, for callers that
 * need the decoded body (HTTP/1.0 clients, scanners).
 */

import { TRAILER_FORBIDDEN } from "./http1.ts";

const enum S {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  TrailerLf,
  EndLf,
  Done,
}

/** Limits that keep a hostile peer from making us buffer or loop: RFC 9112 leaves them to us. */
const MAX_SIZE_DIGITS = 16;
const MAX_EXT_BYTES = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

export const CHUNKED_INCOMPLETE = -1;
export const CHUNKED_ERROR = -2;

export class ChunkedReader {
  private state = S.Size;
  private remaining = 0;
  private digits = 0;
  private size = 0;
  private lineBytes = 0;
  private trailerBytes = 0;
  private sawColon = false;
  private trailerName = "";
  error = "";

  get done(): boolean {
    return this.state === S.Done;
  }

  /**
   * Consumes `buf` from `start`. Returns the index just past the end of the chunked body,
   * CHUNKED_INCOMPLETE when all of `buf` was consumed and more is needed, or CHUNKED_ERROR.
   */
  feed(buf: Uint8Array, start = 0, onData?: (from: number, to: number) => void): number {
    if (this.error) return CHUNKED_ERROR;
    if (this.state === S.Done) return start;
    let i = start;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case S.Data: {
          const take = Math.min(this.remaining, n - i);
          onData?.(i, i + take);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = S.DataCr;
          continue;
        }
        case S.Size: {
          const c = buf[i]!;
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return this.fail("chunk size too long");
            this.size = this.size * 16 + v;
            if (this.size > Number.MAX_SAFE_INTEGER) return this.fail("chunk size too large");
          } else if (this.digits === 0) {
            return this.fail("missing chunk size");
          } else if (c === 0x3b /* ; */) {
            this.state = S.Ext;
            this.lineBytes = 0;
          } else if (c === 0x0d) {
            this.state = S.SizeLf;
          } else {
            return this.fail("invalid chunk size");
          }
          break;
        }
        case S.Ext: {
          const c = buf[i]!;
          if (c === 0x0d) this.state = S.SizeLf;
          else if ((c < 0x20 && c !== 0x09) || c === 0x7f) return this.fail("control character in chunk extension");
          else if (++this.lineBytes > MAX_EXT_BYTES) return this.fail("chunk extension too long");
          break;
        }
        case S.SizeLf: {
          if (buf[i] !== 0x0a) return this.fail("bare CR after chunk size");
          if (this.size === 0) {
            this.state = S.TrailerStart;
          } else {
            this.remaining = this.size;
            this.state = S.Data;
          }
          this.size = 0;
          this.digits = 0;
          break;
        }
        case S.DataCr:
          if (buf[i] !== 0x0d) return this.fail("chunk data longer than its size");
          this.state = S.DataLf;
          break;
        case S.DataLf:
          if (buf[i] !== 0x0a) return this.fail("bare CR after chunk data");
          this.state = S.Size;
          break;
        case S.TrailerStart:
          if (buf[i] === 0x0d) {
            this.state = S.EndLf;
            break;
          }
          this.state = S.Trailer;
          this.sawColon = false;
          this.trailerName = "";
          continue;
        case S.Trailer: {
          const c = buf[i]!;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) return this.fail("trailer section too large");
          if (c === 0x3a /* : */ && !this.sawColon) {
            this.sawColon = true;
            // A trailer merged into the head by a later hop must not reframe or reroute it.
            if (TRAILER_FORBIDDEN.has(this.trailerName.toLowerCase())) return this.fail(`trailer field ${this.trailerName} is not allowed`);
          } else if (!this.sawColon && this.trailerName.length < 64) this.trailerName += String.fromCharCode(c);
          if (c === 0x0d) {
            // RFC 9112 section 7.1.2: a trailer line is a field line, name ":" value.
            if (!this.sawColon) return this.fail("trailer line without a colon");
            this.state = S.TrailerLf;
          }
          else if (c === 0x0a || (c < 0x20 && c !== 0x09) || c === 0x7f) return this.fail("control character in trailer");
          break;
        }
        case S.TrailerLf:
          if (buf[i] !== 0x0a) return this.fail("bare CR in trailer");
          this.state = S.TrailerStart;
          break;
        case S.EndLf:
          if (buf[i] !== 0x0a) return this.fail("bare CR at end of chunked body");
          this.state = S.Done;
          return i + 1;
      }
      i++;
    }
    return CHUNKED_INCOMPLETE;
  }

  private fail(message: string): number {
    this.error = message;
    return CHUNKED_ERROR;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

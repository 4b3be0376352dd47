/**
 * Sans-IO WebSocket (RFC 6455): the upgrade handshake as a proxy sees it, and a frame reader that
 * turns one direction's bytes into whole messages and control frames, so forward.ts can judge a
 * message before any of it is passed on. Strict on purpose: sluice negotiates no extension
 * (permessage-deflate is taken out of the offer), so a reserved bit, an unknown opcode, a frame
 * masked the wrong way or a control frame out of shape is a protocol error (§5.2, §5.5), never
 * relayed as it came.
 */
import { isUtf8 } from "node:buffer";
import { randomFillSync } from "node:crypto";
import type { HeaderList } from "../core/types.ts";

/** Opcodes (§5.2). */
export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** Close codes used by sluice (§7.4.1). */
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_INVALID_DATA = 1007;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_TOO_BIG = 1009;

/** A control frame's payload is at most 125 bytes (§5.5); a close reason is what is left after the code. */
const MAX_CONTROL_PAYLOAD = 125;

export type WsEvent =
  /** A whole data message, its fragments joined and unmasked. */
  | { readonly type: "message"; readonly text: boolean; readonly payload: Buffer }
  /** A ping, pong or close frame, unmasked (they may come between the fragments of a message). */
  | { readonly type: "control"; readonly opcode: number; readonly payload: Buffer };

/** Why a direction's bytes cannot be relayed: the close code to send and a reason for the record. */
export interface WsError {
  readonly code: typeof CLOSE_PROTOCOL_ERROR | typeof CLOSE_INVALID_DATA | typeof CLOSE_TOO_BIG;
  readonly reason: string;
}

const HEADER_MAX = 14;

/** A frame's header, read and checked before its payload is (the payload may not be here yet). */
interface FrameHead {
  readonly fin: boolean;
  readonly opcode: number;
  /** Offset of the payload (after the mask key, if any), and its length. */
  readonly at: number;
  readonly length: number;
}

/**
 * Reads one direction of a WebSocket connection. `masked`: frames from a client must be masked,
 * frames from a server must not be (§5.1). Memory is bounded by `maxMessage`: a frame whose
 * declared length would take its message past it is refused from its header, before its payload
 * is read (close 1009). Reads are kept as they came until a whole frame is there, then joined
 * once, so a large frame arriving in many reads costs its size, not its size squared.
 */
export class WsReader {
  #chunks: Buffer[] = [];
  #len = 0;
  /** The data message being reassembled: its first frame's opcode and the fragments so far. */
  #opcode = -1;
  #parts: Buffer[] = [];
  #size = 0;
  #failed: WsError | null = null;
  /** The header of the frame whose payload is awaited (checked once, not at every read). */
  #next: FrameHead | null = null;

  constructor(
    private readonly masked: boolean,
    private readonly maxMessage: number,
  ) {}

  /** Bytes held for an incomplete frame or message (for memory accounting). */
  get pending(): number {
    return this.#len + this.#size;
  }

  /** The events in `chunk` (with what came before it); an error ends the direction for good. */
  feed(chunk: Buffer): WsEvent[] | WsError {
    if (this.#failed) return this.#failed;
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#len += chunk.length;
    }
    const events: WsEvent[] = [];
    for (;;) {
      const head = this.#next ?? this.#head();
      if (head === null) break;
      if ("code" in head) return head;
      this.#next = head;
      if (this.#len < head.at + head.length) break;
      this.#next = null;
      const frame = this.#take(head.at + head.length);
      const payload = Buffer.from(frame.subarray(head.at, head.at + head.length));
      if (this.masked) unmask(payload, frame, head.at - 4);
      const { fin, opcode, length } = head;
      if (opcode >= 0x8) {
        if (opcode === OP_CLOSE && length === 1) return this.#fail(CLOSE_PROTOCOL_ERROR, "a close frame with a one-byte payload");
        events.push({ type: "control", opcode, payload });
        continue;
      }
      if (opcode !== OP_CONTINUATION) this.#opcode = opcode;
      if (length > 0) this.#parts.push(payload);
      this.#size += length;
      if (!fin) continue;
      const whole = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#size);
      const text = this.#opcode === OP_TEXT;
      // §8.1: a text message is UTF-8; one that is not is not passed on (the endpoint fails it).
      if (text && !isUtf8(whole)) return this.#fail(CLOSE_INVALID_DATA, "a text message that is not UTF-8");
      events.push({ type: "message", text, payload: whole });
      this.#opcode = -1;
      this.#parts = [];
      this.#size = 0;
    }
    return events;
  }

  /** The next frame's header, checked; null while it is incomplete. */
  #head(): FrameHead | WsError | null {
    if (this.#len < 2) return null;
    const buf = this.#peek(Math.min(HEADER_MAX, this.#len));
    const b0 = buf[0]!;
    const b1 = buf[1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) return this.#fail(CLOSE_PROTOCOL_ERROR, "a reserved bit is set, but no extension was negotiated");
    const control = opcode >= 0x8;
    if ((opcode > OP_BINARY && !control) || opcode > OP_PONG) return this.#fail(CLOSE_PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    if (((b1 & 0x80) !== 0) !== this.masked) {
      return this.#fail(CLOSE_PROTOCOL_ERROR, this.masked ? "a frame from the client is not masked" : "a frame from the server is masked");
    }
    let length = b1 & 0x7f;
    let at = 2;
    if (length === 126) {
      if (buf.length < 4) return null;
      length = buf.readUInt16BE(2);
      at = 4;
    } else if (length === 127) {
      if (buf.length < 10) return null;
      const high = buf.readUInt32BE(2);
      // §5.2: the most significant bit must be 0; anything past 2^53 is past every limit anyway.
      if (high >= 0x200000) return this.#fail(CLOSE_TOO_BIG, "a frame longer than 2^53 bytes");
      length = high * 0x1_0000_0000 + buf.readUInt32BE(6);
      at = 10;
    }
    if (control) {
      if (!fin) return this.#fail(CLOSE_PROTOCOL_ERROR, "a fragmented control frame");
      if (length > MAX_CONTROL_PAYLOAD) return this.#fail(CLOSE_PROTOCOL_ERROR, "a control frame over 125 bytes");
    } else if (opcode === OP_CONTINUATION) {
      if (this.#opcode < 0) return this.#fail(CLOSE_PROTOCOL_ERROR, "a continuation frame with no message to continue");
    } else if (this.#opcode >= 0) {
      return this.#fail(CLOSE_PROTOCOL_ERROR, "a new message began before the last one ended");
    }
    if (!control && this.#size + length > this.maxMessage) {
      return this.#fail(CLOSE_TOO_BIG, `a message over ${this.maxMessage} bytes (proxy.websocket.max_message)`);
    }
    if (this.masked) at += 4;
    return { fin, opcode, at, length };
  }

  /** The first `n` held bytes, contiguous (n is small: a header); only the reads they are in are joined. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first;
    const parts: Buffer[] = [];
    let got = 0;
    for (const c of this.#chunks) {
      parts.push(c);
      got += c.length;
      if (got >= n) break;
    }
    return Buffer.concat(parts, got);
  }

  /** Removes and returns the first `n` held bytes, contiguous, joining reads at most once. */
  #take(n: number): Buffer {
    let first = this.#chunks[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.#chunks, this.#len);
      this.#chunks = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#len -= n;
    return out;
  }

  #fail(code: WsError["code"], reason: string): WsError {
    this.#failed = { code, reason };
    this.#next = null;
    this.#chunks = [];
    this.#len = 0;
    this.#parts = [];
    this.#size = 0;
    return this.#failed;
  }
}

function unmask(payload: Buffer, frame: Buffer, maskAt: number): void {
  const m0 = frame[maskAt]!;
  const m1 = frame[maskAt + 1]!;
  const m2 = frame[maskAt + 2]!;
  const m3 = frame[maskAt + 3]!;
  const n = payload.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    payload[i] = payload[i]! ^ m0;
    payload[i + 1] = payload[i + 1]! ^ m1;
    payload[i + 2] = payload[i + 2]! ^ m2;
    payload[i + 3] = payload[i + 3]! ^ m3;
  }
  for (; i < n; i++) payload[i] = payload[i]! ^ frame[maskAt + (i & 3)]!;
}

/**
 * One whole frame (FIN set). `mask`: towards a server every frame is masked with a fresh random
 * key (§5.3); towards a client none is.
 */
export function encodeFrame(opcode: number, payload: Uint8Array, mask: boolean): Buffer {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n <= 0xffff ? 2 : 8;
  const head = 2 + lengthBytes + (mask ? 4 : 0);
  const out = Buffer.allocUnsafe(head + n);
  out[0] = 0x80 | opcode;
  out[1] = (mask ? 0x80 : 0) | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) out.writeUInt16BE(n, 2);
  else if (lengthBytes === 8) {
    out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  out.set(payload, head);
  if (mask) {
    const keyAt = head - 4;
    randomFillSync(out, keyAt, 4);
    unmask(out.subarray(head), out, keyAt);
  }
  return out;
}

/** A close frame with `code` and a reason cut to fit a control frame (§5.5.1), on a UTF-8 boundary. */
export function closeFrame(code: number, reason: string, mask: boolean): Buffer {
  let text = Buffer.from(reason, "utf8");
  if (text.length > MAX_CONTROL_PAYLOAD - 2) {
    let end = MAX_CONTROL_PAYLOAD - 2;
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  payload.set(text, 2);
  return encodeFrame(OP_CLOSE, payload, mask);
}

// ---- the upgrade handshake (§4) ---------------------------------------------------------------

function tokens(headers: HeaderList, lower: string): string[] {
  const out: string[] = [];
  for (const [name, value] of headers) {
    if (name.length === lower.length && name.toLowerCase() === lower) for (const t of value.split(",")) out.push(t.trim().toLowerCase());
  }
  return out;
}

/** True when a request asks to become a WebSocket: `Upgrade: websocket` named in `Connection` (§4.1). */
export function wantsWebSocket(headers: HeaderList, connection: readonly string[]): boolean {
  return connection.includes("upgrade") && tokens(headers, "upgrade").includes("websocket");
}

/**
 * Why an upgrade request cannot be relayed as a WebSocket handshake, or null. §4.1 asks for GET,
 * HTTP/1.1, a key and version 13; a body would leave the connection's next bytes ambiguous.
 */
export function upgradeRequestProblem(method: string, minor: number, headers: HeaderList, hasBody: boolean): string | null {
  if (method !== "GET") return `a WebSocket handshake must be a GET, not ${method}`;
  if (minor !== 1) return "a WebSocket handshake needs HTTP/1.1";
  if (hasBody) return "a WebSocket handshake has no body";
  const keys: string[] = [];
  for (const [name, value] of headers) if (name.length === 17 && name.toLowerCase() === "sec-websocket-key") keys.push(value.trim());
  if (keys.length !== 1 || !KEY.test(keys[0]!)) return "a WebSocket handshake needs one Sec-WebSocket-Key of 16 bytes in base64";
  return null;
}

/** 16 bytes in base64 (§4.1 item 7). */
const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/** Headers of the handshake request not passed on: sluice offers no extension, so none can be negotiated. */
export const WS_REQUEST_SKIP: ReadonlySet<string> = new Set(["sec-websocket-extensions"]);

/**
 * Why a server's 101 cannot be relayed, or null: it must upgrade to websocket, and may not
 * accept an extension that was never offered (§4.1, the client fails the connection then).
 */
export function upgradeResponseProblem(headers: HeaderList, connection: readonly string[]): string | null {
  if (!tokens(headers, "upgrade").includes("websocket") || !connection.includes("upgrade")) return "a 101 that does not upgrade to websocket";
  if (tokens(headers, "sec-websocket-extensions").some((t) => t !== "")) return "the server accepted a WebSocket extension that was not offered";
  return null;
}

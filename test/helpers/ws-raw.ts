/**
 * A WebSocket client written for the tests, byte by byte, independent of sluice's own codec:
 * it speaks through a proxy in absolute form (`GET ws://host/path` — the shape few libraries
 * send, and the one a transparent listener sees), checks Sec-WebSocket-Accept, masks what it
 * sends, and can stop reading to test backpressure.
 */
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";

export interface RawFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
}

export interface RawWs {
  /** The proxy's answer to the handshake: status line and headers (lower-cased names). */
  readonly status: number;
  readonly headers: Map<string, string>;
  readonly socket: net.Socket;
  /** Sends one frame (masked, as a client must); `fin` false starts or continues a fragmented message. */
  send(opcode: number, payload: Buffer | string, fin?: boolean): void;
  /** Resolves with the next frame from the server (unmasked), or null when the connection ends. */
  next(timeoutMs?: number): Promise<RawFrame | null>;
  close(): void;
}

export function maskedFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  const len = n < 126 ? Buffer.from([0x80 | n]) : n < 65536 ? Buffer.from([0x80 | 126, n >> 8, n & 255]) : Buffer.concat([Buffer.from([0x80 | 127, 0, 0, 0, 0]), Buffer.from([(n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255])]);
  const key = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode]), len, key, body]);
}

/**
 * Opens `ws://host:port/path` through the proxy at `proxyPort` with an absolute-form GET. Rejects
 * only on a socket error; a refusal comes back as `status` with no frames.
 */
export function openRawWs(proxyPort: number, target: string, extraHeaders: string[] = []): Promise<RawWs> {
  const key = randomBytes(16).toString("base64");
  const url = new URL(target);
  const socket = net.connect(proxyPort, "127.0.0.1");
  let buf = Buffer.alloc(0);
  let ended = false;
  const waiting: ((f: RawFrame | null) => void)[] = [];
  const frames: RawFrame[] = [];
  const pump = () => {
    for (;;) {
      if (buf.length < 2) break;
      let n = buf[1]! & 0x7f;
      let at = 2;
      if (n === 126) {
        if (buf.length < 4) break;
        n = buf.readUInt16BE(2);
        at = 4;
      } else if (n === 127) {
        if (buf.length < 10) break;
        n = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + n) break;
      frames.push({ fin: (buf[0]! & 0x80) !== 0, opcode: buf[0]! & 0x0f, payload: Buffer.from(buf.subarray(at, at + n)) });
      buf = buf.subarray(at + n);
    }
    while (waiting.length > 0 && (frames.length > 0 || ended)) waiting.shift()!(frames.shift() ?? null);
  };
  return new Promise((resolve, reject) => {
    let head = true;
    socket.on("error", reject);
    socket.on("close", () => {
      ended = true;
      pump();
    });
    socket.on("connect", () => {
      socket.write(
        [`GET ${url.href.replace(/^ws:/, "http:")} HTTP/1.1`, `Host: ${url.host}`, "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Key: ${key}`, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Extensions: permessage-deflate", ...extraHeaders, "", ""].join("\r\n"),
      );
    });
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (head) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        head = false;
        const [statusLine, ...lines] = buf.subarray(0, end).toString("latin1").split("\r\n");
        buf = buf.subarray(end + 4);
        const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()] as [string, string]));
        const status = Number(statusLine!.split(" ")[1]);
        if (status === 101) {
          const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
          if (headers.get("sec-websocket-accept") !== accept) reject(new Error("bad Sec-WebSocket-Accept"));
        }
        resolve({
          status,
          headers,
          socket,
          send: (opcode, payload, fin = true) => socket.write(maskedFrame(opcode, Buffer.from(payload), fin)),
          next: (timeoutMs = 5000) =>
            new Promise((res) => {
              const timer = setTimeout(() => {
                const i = waiting.indexOf(done);
                if (i >= 0) waiting.splice(i, 1);
                res(null);
              }, timeoutMs);
              const done = (f: RawFrame | null) => {
                clearTimeout(timer);
                res(f);
              };
              waiting.push(done);
              pump();
            }),
          close: () => socket.destroy(),
        });
      }
      pump();
    });
  });
}

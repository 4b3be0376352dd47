/**
 * Streams one large POST over a raw TCP socket (node:net), so the body is truly streamed: each
 * piece is written only when the previous one was taken (`write()` returning false waits for
 * 'drain'), and nothing but the current piece is held. Content-Length or chunked framing
 * (RFC 9112 §6.1, §7.1). Stops sending when a response arrives early (a proxy refusing the body).
 */
import { connect, type Socket } from "node:net";
import { once } from "node:events";

export interface UploadOptions {
  readonly port: number;
  /** The request target: an absolute URL through a proxy, a path to the origin itself. */
  readonly target: string;
  readonly host: string;
  readonly total: number;
  readonly chunked: boolean;
  readonly pieces: Iterable<Buffer>;
  readonly hash: boolean;
  readonly contentType?: string;
}

export interface UploadResult {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Body bytes handed to the socket. */
  readonly sent: number;
  /** From the first byte written to the whole response read. */
  readonly ms: number;
  readonly sha256: string | null;
  /** The response came before the body was all sent. */
  readonly early: boolean;
}

interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A complete HTTP/1.1 response in `buf` (Content-Length framed, or to close), or null. */
function parseResponse(buf: Buffer, closed: boolean): ParsedResponse | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const len = headers["content-length"] === undefined ? null : Number(headers["content-length"]);
  const body = buf.subarray(end + 4);
  if (len !== null && body.length >= len) return { status, headers, body: body.subarray(0, len).toString("utf8") };
  if (len === null && closed) return { status, headers, body: body.toString("utf8") };
  return null;
}

export async function upload(o: UploadOptions): Promise<UploadResult> {
  const socket: Socket = connect({ host: "127.0.0.1", port: o.port });
  await once(socket, "connect");
  socket.setNoDelay(true);
  let rbuf = Buffer.alloc(0);
  let closed = false;
  let response: ParsedResponse | null = null;
  let failure: Error | null = null;
  const gotResponse = new Promise<void>((resolve) => {
    const check = () => {
      if (response) return;
      response = parseResponse(rbuf, closed);
      if (response || closed || failure) resolve();
    };
    socket.on("data", (d: Buffer) => {
      rbuf = Buffer.concat([rbuf, d]);
      check();
    });
    socket.on("close", () => {
      closed = true;
      check();
    });
    socket.on("error", (err) => {
      failure = err;
      check();
    });
  });

  const hasher = o.hash ? new Bun.CryptoHasher("sha256") : null;
  const t0 = performance.now();
  const framing = o.chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${o.total}`;
  socket.write(`POST ${o.target} HTTP/1.1\r\nHost: ${o.host}\r\nContent-Type: ${o.contentType ?? "text/plain; charset=utf-8"}\r\n${framing}\r\n\r\n`);
  let sent = 0;
  const write = async (b: Buffer | string) => {
    if (!socket.write(b)) await Promise.race([once(socket, "drain"), gotResponse]);
  };
  for (const piece of o.pieces) {
    if (response || closed || failure) break;
    hasher?.update(piece);
    if (o.chunked) {
      socket.cork();
      socket.write(`${piece.length.toString(16)}\r\n`);
      socket.write(piece);
      const ok = socket.write("\r\n");
      socket.uncork();
      if (!ok) await Promise.race([once(socket, "drain"), gotResponse]);
    } else await write(piece);
    sent += piece.length;
  }
  const early = response !== null || closed;
  if (o.chunked && !early && !failure) await write("0\r\n\r\n");
  await gotResponse;
  const ms = performance.now() - t0;
  socket.destroy();
  if (!response) {
    const why = failure ? `socket error: ${(failure as Error).message}` : "connection closed";
    throw new Error(`no complete response (${why}) after ${sent} of ${o.total} body bytes; got ${JSON.stringify(rbuf.toString("latin1", 0, 200))}`);
  }
  const r = response as ParsedResponse;
  return { ...r, sent, ms, sha256: hasher ? hasher.digest("hex") : null, early };
}

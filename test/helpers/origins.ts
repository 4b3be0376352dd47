/**
 * Origins that end-to-end tests start on 127.0.0.1, port 0, and the clients that reach them
 * through sluice: curl (a real, independent HTTP stack) and raw TCP (for bytes no client sends).
 *
 *   startEchoOrigin    node:http; answers JSON describing the request as it arrived
 *   startRawOrigin     Bun.listen; a custom handler writes whatever bytes the test wants
 *   startHttpsOrigin   Bun.serve over TLS, with a self-signed cert made by openssl at test time
 *
 * Network rule (ARCHITECTURE.md, "Testing"): everything here listens on and dials 127.0.0.1.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server as NodeServer, type ServerResponse } from "node:http";
import type { AddressInfo, Socket as NetSocket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Server, Socket, TCPSocketListener } from "bun";

export const sha256 = (data: Uint8Array | string): string => createHash("sha256").update(data).digest("hex");

/** Deterministic bytes (a counter pattern), so large bodies can be checked by digest. */
export function patternBytes(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

// ---- echo origin (node:http) ------------------------------------------------------------

export interface EchoReport {
  readonly method: string;
  /** Request target as the origin saw it (origin-form, query included). */
  readonly url: string;
  /** Headers in wire order, names as received. */
  readonly headers: [string, string][];
  readonly bodyLength: number;
  readonly bodySha256: string;
  /** Which origin-side connection carried the request (1, 2, ...). */
  readonly conn: number;
}

export interface EchoOrigin {
  readonly port: number;
  readonly url: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Requests seen so far, in order. */
  readonly requests: EchoReport[];
  stop(): Promise<void>;
}

/**
 * Paths:
 *   /bytes/N           N bytes of patternBytes(N), with content-length and x-sha256
 *   /chunked-bytes/N   the same without content-length (node:http sends it chunked)
 *   anything else      200, JSON EchoReport; also x-echo-method and x-echo-conn headers
 */
export function startEchoOrigin(): Promise<EchoOrigin> {
  let connections = 0;
  const requests: EchoReport[] = [];
  const connIds = new WeakMap<NetSocket, number>();
  const server: NodeServer = createServer((req: IncomingMessage, res: ServerResponse) => {
    const hash = createHash("sha256");
    let length = 0;
    req.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on("end", () => {
      const raw = req.rawHeaders;
      const headers: [string, string][] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i]!, raw[i + 1]!]);
      const report: EchoReport = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers,
        bodyLength: length,
        bodySha256: hash.digest("hex"),
        conn: connIds.get(req.socket) ?? 0,
      };
      requests.push(report);
      const bytes = /^\/(chunked-)?bytes\/(\d+)$/.exec(report.url.split("?")[0]!);
      if (bytes) {
        const n = Number(bytes[2]);
        const data = patternBytes(n);
        res.statusCode = 200;
        res.setHeader("content-type", "application/octet-stream");
        res.setHeader("x-sha256", sha256(data));
        if (!bytes[1]) res.setHeader("content-length", String(n));
        // Several writes, so the body crosses sluice in many reads.
        const step = 256 * 1024;
        for (let i = 0; i < n; i += step) res.write(data.subarray(i, Math.min(n, i + step)));
        res.end();
        return;
      }
      const body = `${JSON.stringify(report)}\n`;
      res.statusCode = 200;
      res.setHeader("content-type", "application/json");
      res.setHeader("x-echo-method", report.method);
      res.setHeader("x-echo-conn", String(report.conn));
      res.setHeader("content-length", String(Buffer.byteLength(body)));
      res.end(req.method === "HEAD" ? undefined : body);
    });
  });
  server.on("connection", (socket: NetSocket) => {
    connections++;
    connIds.set(socket, connections);
  });
  return new Promise((resolveStart) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      resolveStart({
        port,
        url: `http://127.0.0.1:${port}`,
        connections: () => connections,
        requests,
        stop: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** Header value from an echo report, by case-insensitive name (all values, in order). */
export function headerValues(report: EchoReport, name: string): string[] {
  const lower = name.toLowerCase();
  return report.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

// ---- raw TCP origin -------------------------------------------------------------------------

/** One accepted connection, read as a stream the handler pulls from. */
export interface RawConn {
  /** The next request head (through CRLFCRLF) as latin1 text, or null when the peer closed first. */
  readHead(): Promise<string | null>;
  /** Exactly n bytes, or fewer if the peer closed. */
  readBytes(n: number): Promise<Buffer>;
  /** Whatever arrives next (at least one byte), or null on close. */
  readSome(): Promise<Buffer | null>;
  write(data: string | Uint8Array): void;
  end(): void;
  readonly closed: boolean;
}

export interface RawOrigin {
  readonly port: number;
  readonly url: string;
  connections(): number;
  /** Request heads read by handlers so far. */
  heads(): number;
  /** Bytes received over all connections. */
  bytesReceived(): number;
  stop(): void;
}

interface RawState {
  buf: Buffer;
  closed: boolean;
  wake: (() => void) | null;
  pending: Uint8Array[];
}

/** Starts a TCP origin; `handler` runs once per connection and drives it with RawConn. */
export function startRawOrigin(handler: (conn: RawConn) => void | Promise<void>): RawOrigin {
  let connections = 0;
  let heads = 0;
  let received = 0;
  const listener: TCPSocketListener<RawState> = Bun.listen<RawState>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        connections++;
        const st: RawState = { buf: Buffer.alloc(0), closed: false, wake: null, pending: [] };
        socket.data = st;
        void Promise.resolve(handler(makeConn(socket, st, () => heads++))).catch(() => socket.end());
      },
      data(socket, chunk) {
        received += chunk.length;
        const st = socket.data;
        st.buf = st.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([st.buf, chunk]);
        st.wake?.();
      },
      drain(socket) {
        flush(socket, socket.data);
      },
      close(socket) {
        socket.data.closed = true;
        socket.data.wake?.();
      },
      error() {},
    },
  });
  return {
    port: listener.port,
    url: `http://127.0.0.1:${listener.port}`,
    connections: () => connections,
    heads: () => heads,
    bytesReceived: () => received,
    stop: () => listener.stop(true),
  };
}

function flush(socket: Socket<RawState>, st: RawState): void {
  while (st.pending.length > 0) {
    const chunk = st.pending[0]!;
    const n = socket.write(chunk);
    if (n < 0) return;
    if (n < chunk.length) {
      st.pending[0] = chunk.subarray(n);
      return;
    }
    st.pending.shift();
  }
}

function makeConn(socket: Socket<RawState>, st: RawState, countHead: () => void): RawConn {
  const waitData = () =>
    new Promise<void>((wake) => {
      st.wake = () => {
        st.wake = null;
        wake();
      };
    });
  let ending = false;
  return {
    get closed() {
      return st.closed;
    },
    async readHead() {
      for (;;) {
        const i = st.buf.indexOf("\r\n\r\n");
        if (i >= 0) {
          const head = st.buf.toString("latin1", 0, i + 4);
          st.buf = st.buf.subarray(i + 4);
          countHead();
          return head;
        }
        if (st.closed) return null;
        await waitData();
      }
    },
    async readBytes(n) {
      while (st.buf.length < n && !st.closed) await waitData();
      const out = st.buf.subarray(0, Math.min(n, st.buf.length));
      st.buf = st.buf.subarray(out.length);
      return Buffer.from(out);
    },
    async readSome() {
      while (st.buf.length === 0 && !st.closed) await waitData();
      if (st.buf.length === 0) return null;
      const out = st.buf;
      st.buf = Buffer.alloc(0);
      return out;
    },
    write(data) {
      const bytes = typeof data === "string" ? Buffer.from(data, "latin1") : data;
      st.pending.push(bytes);
      if (st.pending.length === 1) flush(socket, st);
    },
    end() {
      if (ending) return;
      ending = true;
      // End only once everything queued went out.
      const tryEnd = () => {
        if (st.pending.length === 0) socket.end();
        else setTimeout(tryEnd, 5);
      };
      tryEnd();
    },
  };
}

/** Content-Length of a raw request head, or 0. */
/** A TCP origin that echoes every byte back upper-cased, so a reply is never mistaken for our own bytes. */
export function startUppercaseEcho(): RawOrigin {
  return startRawOrigin(async (conn) => {
    for (;;) {
      const chunk = await conn.readSome();
      if (chunk === null) return;
      conn.write(Buffer.from(chunk.toString("latin1").toUpperCase(), "latin1"));
    }
  });
}

/** An origin that reads a request head and never answers (drains until the peer gives up). */
export function startSilentOrigin(): RawOrigin {
  return startRawOrigin(async (conn) => {
    await conn.readHead();
    while ((await conn.readSome()) !== null) {
      // drain
    }
  });
}

export function headContentLength(head: string): number {
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  return m ? Number(m[1]) : 0;
}

// ---- HTTPS origin ---------------------------------------------------------------------------

export interface HttpsOrigin {
  readonly port: number;
  /** PEM file of the self-signed certificate, for curl --cacert. */
  readonly caFile: string;
  requests(): number;
  stop(): void;
}

/** A TLS origin for 127.0.0.1 and localhost, with a certificate made now by openssl. */
export function startHttpsOrigin(): HttpsOrigin {
  const dir = mkdtempSync(join(tmpdir(), "slt-tls-"));
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  const made = Bun.spawnSync(
    [
      "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (made.exitCode !== 0) throw new Error(`openssl req failed: ${made.stderr.toString()}`);
  let requests = 0;
  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { key: readFileSync(keyFile, "utf8"), cert: readFileSync(certFile, "utf8") },
    async fetch(req) {
      requests++;
      const body = new Uint8Array(await req.arrayBuffer());
      const url = new URL(req.url);
      return Response.json({ secure: true, method: req.method, path: url.pathname, bodyLength: body.length, bodySha256: sha256(body) });
    },
  });
  return {
    port: server.port ?? 0,
    caFile: certFile,
    requests: () => requests,
    stop() {
      void server.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- clients --------------------------------------------------------------------------------

export interface CurlResult {
  readonly exitCode: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/**
 * Runs curl with `-sS`, an empty environment (no *_proxy variables leak in) and `--noproxy ''`
 * (no host bypasses the proxy). `argv` follows "curl".
 */
export async function curl(argv: string[], opts: { timeoutMs?: number; prefix?: string[] } = {}): Promise<CurlResult> {
  const proc = Bun.spawn([...(opts.prefix ?? []), "curl", "-sS", "--noproxy", "", "--max-time", String(Math.ceil((opts.timeoutMs ?? 30_000) / 1000)), ...argv], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).arrayBuffer(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { exitCode, stdout: Buffer.from(stdout), stderr };
}

export interface ParsedResponse {
  readonly status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: Map<string, string>;
  readonly body: Buffer;
}

/**
 * Fetches one URL through a proxy with curl and returns status, headers and body.
 * Headers come from `-D` (the last response block, after any 1xx or CONNECT blocks).
 */
export async function curlThrough(proxyUrl: string, url: string, extra: string[] = [], opts: { prefix?: string[]; timeoutMs?: number } = {}): Promise<ParsedResponse & { exitCode: number; stderr: string; rawHeaders: string }> {
  const dir = mkdtempSync(join(tmpdir(), "slt-curl-"));
  try {
    const headerFile = join(dir, "h");
    const bodyFile = join(dir, "b");
    const r = await curl(["-x", proxyUrl, "-D", headerFile, "-o", bodyFile, "-w", "%{http_code}", ...extra, url], opts);
    const rawHeaders = readIfExists(headerFile).toString("latin1");
    const blocks = rawHeaders.split(/\r\n\r\n/).filter((b) => b.startsWith("HTTP/"));
    const last = blocks[blocks.length - 1] ?? "";
    return {
      status: Number(r.stdout.toString().trim()) || 0,
      headers: parseHeaderBlock(last),
      body: readIfExists(bodyFile),
      exitCode: r.exitCode,
      stderr: r.stderr,
      rawHeaders,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readIfExists(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch {
    return Buffer.alloc(0);
  }
}

function parseHeaderBlock(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  return headers;
}

/** Parses the first response in raw bytes from a socket; null when no complete head arrived. */
export function parseRawResponse(data: Buffer): ParsedResponse | null {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const head = data.toString("latin1", 0, end);
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!m) return null;
  return { status: Number(m[1]), headers: parseHeaderBlock(head), body: data.subarray(end + 4) };
}

export interface RawExchange {
  /** Everything received. */
  readonly data: Buffer;
  /** The server closed the connection (or reset it). */
  readonly closed: boolean;
  /** Neither close nor `until` happened within the time limit. */
  readonly timedOut: boolean;
  /** Connect or socket error text, if any. */
  readonly error: string | null;
}

/**
 * Connects to 127.0.0.1:port, writes `chunks` in order, and collects what comes back until the
 * server closes, `until(data)` is true, or `timeoutMs` passes (a hang is reported, not awaited).
 */
export async function rawExchange(
  port: number,
  chunks: (string | Uint8Array)[],
  opts: { timeoutMs?: number; until?: (data: Buffer) => boolean } = {},
): Promise<RawExchange> {
  const received: Buffer[] = [];
  let error: string | null = null;
  return new Promise<RawExchange>((resolveExchange) => {
    let settled = false;
    let socketRef: Socket<undefined> | null = null;
    const finish = (closed: boolean, timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!closed) socketRef?.terminate();
      resolveExchange({ data: Buffer.concat(received), closed, timedOut, error });
    };
    const timer = setTimeout(() => finish(false, true), opts.timeoutMs ?? 10_000);
    const queue = chunks.map((c) => (typeof c === "string" ? Buffer.from(c, "latin1") : Buffer.from(c)));
    const pump = (socket: Socket<undefined>) => {
      while (queue.length > 0) {
        const chunk = queue[0]!;
        const n = socket.write(chunk);
        if (n < 0) return;
        if (n < chunk.length) {
          queue[0] = chunk.subarray(n);
          return;
        }
        queue.shift();
      }
    };
    Bun.connect<undefined>({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(socket) {
          socketRef = socket;
          pump(socket);
        },
        drain(socket) {
          pump(socket);
        },
        data(_socket, chunk) {
          received.push(Buffer.from(chunk));
          if (opts.until?.(Buffer.concat(received))) finish(false, false);
        },
        close() {
          finish(true, false);
        },
        end() {
          finish(true, false);
        },
        error(_socket, err) {
          error = err.message;
          finish(true, false);
        },
        connectError(_socket, err) {
          error = err.message;
          finish(true, false);
        },
      },
    }).catch((err: unknown) => {
      error = String(err);
      finish(true, false);
    });
  });
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export function unusedPort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/**
 * Stops sluices started with startSluice and removes the temp dir each one was given (config,
 * SLUICE_HOME with its admin token), which the helper itself leaves behind.
 */
export async function stopSluices(...running: ({ stop(): Promise<number>; readonly configPath: string } | undefined)[]): Promise<void> {
  for (const r of running) {
    if (!r) continue;
    await r.stop();
    rmSync(dirname(r.configPath), { recursive: true, force: true });
  }
}

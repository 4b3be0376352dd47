/**
 * Asks upstream DNS servers: UDP first, TCP when the answer is truncated (RFC 7766), a timeout
 * per try and the next upstream on failure. A UDP answer is accepted only from the server we
 * asked, with our random id and our question (RFC 5452 section 9), so an off-path spoofer has
 * to guess all three.
 */
import type { udp } from "bun";
import { randomInt } from "node:crypto";
import { OperationalError } from "../core/errors.ts";
import { parseIpLiteral, unmapIpv4 } from "../net/ip.ts";
import { decodeResponse, encodeUpstreamQuery, type UpstreamResponse } from "./wire.ts";
import type { RecordType } from "dns-packet";

export interface Upstream {
  readonly hostname: string;
  readonly port: number;
}

export interface UpstreamClient {
  exchange(name: string, type: RecordType, upstreams: readonly Upstream[], opts: { timeoutMs: number; attempts: number }): Promise<UpstreamResponse>;
  close(): void;
}

interface Pending {
  readonly upstream: Upstream;
  readonly name: string;
  readonly type: string;
  resolve(r: UpstreamResponse): void;
}

/** Longest TCP answer we read (RFC 1035 allows 65535; a length prefix is 2 bytes). */
const MAX_TCP_MESSAGE = 65535;

export function createUpstreamClient(): UpstreamClient {
  const pending = new Map<number, Pending>();
  const sockets = new Map<4 | 6, Promise<udp.Socket<"buffer">>>();

  const onDatagram = (buf: Buffer, port: number, address: string) => {
    if (buf.length < 12) return;
    const p = pending.get(buf.readUInt16BE(0));
    if (!p || p.upstream.port !== port || !sameAddress(p.upstream.hostname, address)) return;
    let r: UpstreamResponse;
    try {
      r = decodeResponse(buf);
    } catch {
      return;
    }
    if (!r.question || r.question.name.toLowerCase() !== p.name.toLowerCase() || r.question.type !== p.type) return;
    pending.delete(r.id);
    p.resolve(r);
  };

  const socketFor = (family: 4 | 6) => {
    let s = sockets.get(family);
    if (!s) {
      s = Bun.udpSocket({ hostname: family === 4 ? "0.0.0.0" : "::", port: 0, socket: { data: (_s, buf, port, addr) => onDatagram(buf, port, addr) } });
      sockets.set(family, s);
    }
    return s;
  };

  const freshId = () => {
    for (;;) {
      const id = randomInt(0, 65536);
      if (!pending.has(id)) return id;
    }
  };

  async function overUdp(name: string, type: RecordType, up: Upstream, timeoutMs: number): Promise<UpstreamResponse> {
    const id = freshId();
    const family = up.hostname.includes(":") ? 6 : 4;
    const socket = await socketFor(family);
    return new Promise<UpstreamResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`no answer from ${up.hostname}:${up.port} in ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { upstream: up, name, type, resolve: (r) => (clearTimeout(timer), resolve(r)) });
      socket.send(encodeUpstreamQuery(id, name, type), up.port, up.hostname);
    });
  }

  return {
    async exchange(name, type, upstreams, opts) {
      const errors: string[] = [];
      for (let i = 0; i < opts.attempts * upstreams.length; i++) {
        const up = upstreams[i % upstreams.length]!;
        try {
          const r = await overUdp(name, type, up, opts.timeoutMs);
          return r.truncated ? await overTcp(name, type, up, opts.timeoutMs) : r;
        } catch (err) {
          errors.push(err instanceof Error ? err.message : String(err));
        }
      }
      throw new OperationalError("dns_failure", `cannot resolve ${name}: ${errors.at(-1) ?? "no upstream"}`, "dns.upstream-failed");
    },
    close() {
      for (const s of sockets.values()) void s.then((sock) => sock.close());
      sockets.clear();
    },
  };
}

/** One query over TCP: 2-byte length prefix both ways (RFC 1035 section 4.2.2). */
function overTcp(name: string, type: RecordType, up: Upstream, timeoutMs: number): Promise<UpstreamResponse> {
  const id = randomInt(0, 65536);
  const query = encodeUpstreamQuery(id, name, type);
  const framed = Buffer.alloc(query.length + 2);
  framed.writeUInt16BE(query.length, 0);
  query.copy(framed, 2);
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (err: Error | null, r?: UpstreamResponse) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(r!);
    };
    const timer = setTimeout(() => finish(new Error(`no TCP answer from ${up.hostname}:${up.port} in ${timeoutMs} ms`)), timeoutMs);
    Bun.connect({
      hostname: up.hostname,
      port: up.port,
      socket: {
        open(s) {
          s.write(framed);
        },
        data(s, chunk) {
          buf = Buffer.concat([buf, chunk]);
          if (buf.length < 2) return;
          const len = buf.readUInt16BE(0);
          if (len > MAX_TCP_MESSAGE - 2 || buf.length < 2 + len) return;
          // Settle before end(): Bun may run the close handler inside end().
          try {
            const r = decodeResponse(buf.subarray(2, 2 + len));
            if (r.id !== id || r.question?.name.toLowerCase() !== name.toLowerCase()) finish(new Error("mismatched TCP answer"));
            else finish(null, r);
          } catch (err) {
            finish(err instanceof Error ? err : new Error(String(err)));
          }
          s.end();
        },
        close() {
          finish(new Error(`${up.hostname}:${up.port} closed the TCP connection`));
        },
        error(_s, err) {
          finish(err);
        },
      },
    }).catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
  });
}

function sameAddress(a: string, b: string): boolean {
  const pa = parseIpLiteral(a);
  const pb = parseIpLiteral(b);
  return pa !== null && pb !== null && unmapIpv4(pa).text === unmapIpv4(pb).text;
}

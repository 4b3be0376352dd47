/**
 * Asks upstream DNS servers: UDP first, TCP when the answer is truncated (RFC 7766), a timeout
 * per try and the next upstream on failure. A UDP answer is accepted only on the query's own
 * random port, from the server we asked, with our random id and our question (RFC 5452
 * section 9), so an off-path spoofer has to guess all of them.
 */
import type { udp } from "bun";
import { randomInt } from "node:crypto";
import { OperationalError } from "../core/errors.ts";
import { parseIpLiteral, unmapIpv4 } from "../net/ip.ts";
import { decodeResponse, encodeUpstreamQuery, RCODE, type UpstreamResponse } from "./wire.ts";
import type { RecordType } from "dns-packet";

export interface Upstream {
  readonly hostname: string;
  readonly port: number;
}

export interface UpstreamClient {
  exchange(name: string, type: RecordType, upstreams: readonly Upstream[], opts: { timeoutMs: number; attempts: number }): Promise<UpstreamResponse>;
  close(): void;
}

/** Longest TCP answer we read (RFC 1035 allows 65535; a length prefix is 2 bytes). */
const MAX_TCP_MESSAGE = 65535;

/**
 * Upstream queries waiting for an answer at once (each holds a socket). Beyond this a query
 * fails at once: a flood of names whose servers never answer must not pile up sockets and
 * timers without bound, nor take the file descriptors the proxy needs.
 */
export const MAX_OUTSTANDING = 512;

export function createUpstreamClient(): UpstreamClient {
  let outstanding = 0;
  const open = new Set<udp.Socket<"buffer">>();

  /**
   * One UDP exchange on a socket of its own: the kernel picks a random source port for each
   * query, so a spoofer must guess port and id (about 32 bits), not the id alone (RFC 5452).
   */
  async function overUdp(name: string, type: RecordType, up: Upstream, timeoutMs: number): Promise<UpstreamResponse> {
    if (outstanding >= MAX_OUTSTANDING) throw new Error(`${MAX_OUTSTANDING} upstream queries already in flight`);
    outstanding++;
    const id = randomInt(0, 65536);
    let socket: udp.Socket<"buffer"> | null = null;
    try {
      return await new Promise<UpstreamResponse>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer from ${up.hostname}:${up.port} in ${timeoutMs} ms`)), timeoutMs);
        Bun.udpSocket({
          hostname: up.hostname.includes(":") ? "::" : "0.0.0.0",
          port: 0,
          socket: {
            data(_s, buf, port, address) {
              if (buf.length < 12 || buf.readUInt16BE(0) !== id || port !== up.port || !sameAddress(up.hostname, address)) return;
              let r: UpstreamResponse;
              try {
                r = decodeResponse(buf);
              } catch {
                return;
              }
              if (!r.question || r.question.name.toLowerCase() !== name.toLowerCase() || r.question.type !== type) return;
              clearTimeout(timer);
              resolve(r);
            },
          },
        }).then(
          (sock) => {
            socket = sock;
            open.add(sock);
            try {
              sock.send(encodeUpstreamQuery(id, name, type), up.port, up.hostname);
            } catch (err) {
              clearTimeout(timer);
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          },
          (err: unknown) => {
            clearTimeout(timer);
            reject(err instanceof Error ? err : new Error(String(err)));
          },
        );
      });
    } finally {
      outstanding--;
      const sock = socket as udp.Socket<"buffer"> | null;
      if (sock) {
        open.delete(sock);
        sock.close();
      }
    }
  }

  return {
    async exchange(name, type, upstreams, opts) {
      const errors: string[] = [];
      let refusal: UpstreamResponse | null = null;
      for (let i = 0; i < opts.attempts * upstreams.length; i++) {
        const up = upstreams[i % upstreams.length]!;
        try {
          const r = await overUdp(name, type, up, opts.timeoutMs);
          const full = r.truncated ? await overTcp(name, type, up, opts.timeoutMs) : r;
          // SERVFAIL or REFUSED from one upstream: another may do better (or was spoofed less).
          if (full.rcode === RCODE.SERVFAIL || full.rcode === RCODE.REFUSED) {
            refusal = full;
            errors.push(`${up.hostname}:${up.port} answered rcode ${full.rcode}`);
            continue;
          }
          return full;
        } catch (err) {
          errors.push(err instanceof Error ? err.message : String(err));
        }
      }
      if (refusal) return refusal;
      throw new OperationalError("dns_failure", `cannot resolve ${name}: ${errors.at(-1) ?? "no upstream"}`, "dns.upstream-failed");
    },
    close() {
      for (const s of open) s.close();
      open.clear();
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
            if (r.id !== id || r.question?.name.toLowerCase() !== name.toLowerCase() || r.question.type !== type) finish(new Error("mismatched TCP answer"));
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

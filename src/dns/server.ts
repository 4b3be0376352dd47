/**
 * sluice's DNS server: UDP and TCP on one port (RFC 7766: TCP is not optional). Malformed
 * queries get FORMERR (NOTIMP, REFUSED) when their id is readable and are dropped otherwise; a
 * failure inside the answerer is SERVFAIL, never a hang and never a crash of the server.
 */
import type { Socket, TCPSocketListener, udp } from "bun";
import type { Logger } from "../core/log.ts";
import { encodeError, encodeReply, parseQuery, RCODE, type Query, type Reply } from "./wire.ts";

export interface DnsServer {
  readonly hostname: string;
  readonly port: number;
  stop(): void;
}

/**
 * RFC 7766 section 6.2.3: a TCP client gets this long to send a whole message (from its first
 * byte, not reset by a trickle of partial bytes) and to start the next one.
 */
const TCP_MESSAGE_MS = 10_000;
const MAX_TCP_CONNECTIONS = 512;
/** One source cannot hold more than this many TCP connections: the rest stay for others. */
const MAX_TCP_PER_SOURCE = 32;
/** Queries answered but not yet written to one TCP connection, before we stop reading it. */
const MAX_TCP_PENDING_BYTES = 256 * 1024;

interface TcpState {
  buf: Buffer;
  deadline: ReturnType<typeof setTimeout> | null;
  out: Buffer[];
  outBytes: number;
  source: string;
}

interface ServerOptions {
  hostname: string;
  port: number;
  answer: (q: Query, client: string) => Promise<Reply>;
  log: Logger;
}

export async function startDnsServer(opts: ServerOptions): Promise<DnsServer> {
  // Port 0: the OS picks a free UDP port, which may be taken for TCP; pick again a few times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (opts.port !== 0 || attempt >= 5) throw err;
    }
  }
}

async function startOnce(opts: ServerOptions): Promise<DnsServer> {
  const { log } = opts;

  /** Bytes in, bytes out (or null: say nothing). */
  async function handle(buf: Buffer, transport: "udp" | "tcp", client: string): Promise<Buffer | null> {
    const parsed = parseQuery(buf);
    if (!parsed.ok) {
      log.debug("refused DNS query", { client, reason: parsed.reason });
      return parsed.id === null ? null : encodeError(parsed.id, parsed.rcode);
    }
    let reply: Reply;
    try {
      reply = await opts.answer(parsed.query, client);
    } catch (err) {
      // No name here: names can carry the very data a scan is looking for.
      log.error("DNS answer failed", { error: String(err), type: parsed.query.question.type });
      reply = { rcode: RCODE.SERVFAIL };
    }
    try {
      return encodeReply(parsed.query, reply, transport);
    } catch (err) {
      log.error("cannot encode DNS reply", { error: String(err) });
      return encodeReply(parsed.query, { rcode: RCODE.SERVFAIL }, transport);
    }
  }

  const udpSocket: udp.Socket<"buffer"> = await Bun.udpSocket({
    hostname: opts.hostname,
    port: opts.port,
    socket: {
      data(sock, buf, port, address) {
        void handle(buf, "udp", address).then((out) => {
          if (!out) return;
          try {
            sock.send(out, port, address);
          } catch {
            // The client went away (ICMP port unreachable): nothing to tell anyone.
          }
        });
      },
    },
  });

  const perSource = new Map<string, number>();
  let tcpCount = 0;

  function flush(s: Socket<TcpState>): void {
    const st = s.data;
    while (st.out.length > 0) {
      const chunk = st.out[0]!;
      const n = s.write(chunk);
      if (n < 0) return;
      st.outBytes -= n;
      if (n < chunk.length) {
        st.out[0] = chunk.subarray(n);
        return;
      }
      st.out.shift();
    }
    s.resume();
  }

  function send(s: Socket<TcpState>, out: Buffer): void {
    const framed = Buffer.alloc(out.length + 2);
    framed.writeUInt16BE(out.length, 0);
    out.copy(framed, 2);
    s.data.out.push(framed);
    s.data.outBytes += framed.length;
    flush(s);
    // A client that does not read its answers stops being read.
    if (s.data.outBytes > MAX_TCP_PENDING_BYTES) s.pause();
  }

  function armDeadline(s: Socket<TcpState>): void {
    if (s.data.deadline) clearTimeout(s.data.deadline);
    s.data.deadline = setTimeout(() => s.end(), TCP_MESSAGE_MS);
  }

  let tcp: TCPSocketListener<TcpState>;
  try {
    tcp = Bun.listen<TcpState>({
      hostname: opts.hostname,
      // The UDP socket chose the port (port 0 in tests); TCP takes the same one.
      port: udpSocket.port,
      socket: {
        open(s) {
          const source = s.remoteAddress;
          s.data = { buf: Buffer.alloc(0), deadline: null, out: [], outBytes: 0, source };
          tcpCount++;
          const mine = (perSource.get(source) ?? 0) + 1;
          perSource.set(source, mine);
          if (tcpCount > MAX_TCP_CONNECTIONS || mine > MAX_TCP_PER_SOURCE) {
            s.end();
            return;
          }
          armDeadline(s);
        },
        data(s, chunk) {
          const st = s.data;
          st.buf = st.buf.length === 0 ? chunk : Buffer.concat([st.buf, chunk]);
          // RFC 7766 section 8: each message is preceded by its 2-byte length; several may be pipelined.
          while (st.buf.length >= 2) {
            const len = st.buf.readUInt16BE(0);
            if (len < 12) {
              s.end();
              return;
            }
            if (st.buf.length < 2 + len) return;
            const msg = Buffer.from(st.buf.subarray(2, 2 + len));
            st.buf = st.buf.subarray(2 + len);
            // A whole message arrived: the next one gets its own deadline.
            armDeadline(s);
            void handle(msg, "tcp", st.source).then((out) => {
              if (out) send(s, out);
            });
          }
        },
        drain(s) {
          flush(s);
        },
        close(s) {
          tcpCount--;
          const left = (perSource.get(s.data.source) ?? 1) - 1;
          if (left <= 0) perSource.delete(s.data.source);
          else perSource.set(s.data.source, left);
          if (s.data.deadline) clearTimeout(s.data.deadline);
        },
        error() {},
      },
    });
  } catch (err) {
    // Do not keep the UDP port bound for a server that will never run.
    udpSocket.close();
    throw err;
  }

  return {
    hostname: opts.hostname,
    port: udpSocket.port,
    stop() {
      udpSocket.close();
      tcp.stop(true);
    },
  };
}

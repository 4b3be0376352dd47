/**
 * sluice's DNS server: UDP and TCP on one port (RFC 7766: TCP is not optional). Malformed
 * queries get FORMERR when their id is readable and are dropped otherwise; a failure inside the
 * answerer is SERVFAIL, never a hang and never a crash of the server.
 */
import type { Socket, TCPSocketListener, udp } from "bun";
import type { Logger } from "../core/log.ts";
import { encodeFormErr, encodeReply, parseQuery, RCODE, type Query, type Reply } from "./wire.ts";

export interface DnsServer {
  readonly hostname: string;
  readonly port: number;
  stop(): void;
}

/** A TCP client gets this long between queries before the connection is closed (RFC 7766 section 6.2.3). */
const TCP_IDLE_MS = 10_000;
const MAX_TCP_CONNECTIONS = 512;

interface TcpState {
  buf: Buffer;
  timer: ReturnType<typeof setTimeout> | null;
}

export async function startDnsServer(opts: {
  hostname: string;
  port: number;
  answer: (q: Query, client: string) => Promise<Reply>;
  log: Logger;
}): Promise<DnsServer> {
  const { log } = opts;

  /** Bytes in, bytes out (or null: say nothing). */
  async function handle(buf: Buffer, transport: "udp" | "tcp", client: string): Promise<Buffer | null> {
    const parsed = parseQuery(buf);
    if (!parsed.ok) {
      log.debug("malformed DNS query", { client, reason: parsed.reason });
      return parsed.id === null ? null : encodeFormErr(parsed.id);
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
          if (out) sock.send(out, port, address);
        });
      },
    },
  });

  let tcpCount = 0;
  const tcp: TCPSocketListener<TcpState> = Bun.listen<TcpState>({
    hostname: opts.hostname,
    // The UDP socket chose the port (port 0 in tests); TCP takes the same one.
    port: udpSocket.port,
    socket: {
      open(s) {
        s.data = { buf: Buffer.alloc(0), timer: null };
        if (++tcpCount > MAX_TCP_CONNECTIONS) {
          s.end();
          return;
        }
        arm(s);
      },
      data(s, chunk) {
        const st = s.data;
        st.buf = st.buf.length === 0 ? chunk : Buffer.concat([st.buf, chunk]);
        arm(s);
        // RFC 7766 section 8: each message is preceded by its 2-byte length; several may be pipelined.
        while (st.buf.length >= 2) {
          const len = st.buf.readUInt16BE(0);
          if (len < 12) {
            s.end();
            return;
          }
          if (st.buf.length < 2 + len) return;
          const msg = st.buf.subarray(2, 2 + len);
          st.buf = st.buf.subarray(2 + len);
          void handle(Buffer.from(msg), "tcp", s.remoteAddress).then((out) => {
            if (!out) return;
            const framed = Buffer.alloc(out.length + 2);
            framed.writeUInt16BE(out.length, 0);
            out.copy(framed, 2);
            s.write(framed);
          });
        }
      },
      close(s) {
        tcpCount--;
        if (s.data?.timer) clearTimeout(s.data.timer);
      },
      error() {},
    },
  });

  function arm(s: Socket<TcpState>): void {
    if (s.data.timer) clearTimeout(s.data.timer);
    s.data.timer = setTimeout(() => s.end(), TCP_IDLE_MS);
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

/**
 * Idle CONNECT tunnels for the memory figure: a TCP sink that accepts and holds connections, and
 * N clients that each ask the proxy for `CONNECT 127.0.0.1:SINK` and wait for its 200.
 */
import type { Socket, TCPSocketListener } from "bun";
import { HOST } from "./net.ts";

export interface Sink {
  readonly port: number;
  accepted(): number;
  open(): number;
  stop(): void;
}

export function startSink(): Sink {
  let accepted = 0;
  const held = new Set<Socket<undefined>>();
  const listener: TCPSocketListener<undefined> = Bun.listen<undefined>({
    hostname: HOST,
    port: 0,
    socket: {
      open(s) {
        accepted++;
        held.add(s);
      },
      data() {},
      close(s) {
        held.delete(s);
      },
      error() {},
    },
  });
  return {
    port: listener.port,
    accepted: () => accepted,
    open: () => held.size,
    stop() {
      for (const s of held) s.terminate();
      held.clear();
      listener.stop(true);
    },
  };
}

export interface TunnelResult {
  readonly opened: number;
  readonly failures: string[];
  readonly ms: number;
  /** Client sockets (open tunnels), for the caller to close after measuring. */
  readonly sockets: Socket<TunnelState>[];
}

interface TunnelState {
  buf: string;
  settled: boolean;
  done: (err: string | null) => void;
}

/** Opens one tunnel; resolves with its socket once the proxy said 200, rejects otherwise. */
function openTunnel(proxyPort: number, target: string, timeoutMs: number): Promise<Socket<TunnelState>> {
  return new Promise((resolve, reject) => {
    let sock: Socket<TunnelState> | null = null;
    const state: TunnelState = {
      buf: "",
      settled: false,
      done(err) {
        if (state.settled) return;
        state.settled = true;
        clearTimeout(timer);
        if (err === null && sock) resolve(sock);
        else {
          sock?.terminate();
          reject(new Error(err ?? "no socket"));
        }
      },
    };
    const timer = setTimeout(() => state.done(`no reply within ${timeoutMs} ms (got ${JSON.stringify(state.buf.slice(0, 80))})`), timeoutMs);
    Bun.connect<TunnelState>({
      hostname: HOST,
      port: proxyPort,
      data: state,
      socket: {
        open(s) {
          sock = s;
          s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
        },
        data(s, chunk) {
          const st = s.data;
          if (st.settled) return;
          st.buf += chunk.toString("latin1");
          const end = st.buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(st.buf);
          if (status?.[1] === "200") st.done(null);
          else st.done(`proxy answered ${JSON.stringify(st.buf.slice(0, end).split("\r\n")[0])}`);
        },
        close(s) {
          s.data.done(`closed by the proxy before a 200 (got ${JSON.stringify(s.data.buf.slice(0, 80))})`);
        },
        connectError(s, err) {
          s.data.done(`connect failed: ${err.message}`);
        },
        error(s, err) {
          s.data.done(`socket error: ${err.message}`);
        },
      },
    }).catch((err: unknown) => state.done(`connect failed: ${String(err)}`));
  });
}

/**
 * Opens `count` tunnels, at most `concurrency` handshakes in flight at once (so the proxy's
 * accept backlog is not what is being measured), and waits for every 200.
 */
export async function openTunnels(proxyPort: number, sinkPort: number, count: number, concurrency = 100, timeoutMs = 10_000): Promise<TunnelResult> {
  const target = `${HOST}:${sinkPort}`;
  const sockets: Socket<TunnelState>[] = [];
  const failures: string[] = [];
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      try {
        sockets.push(await openTunnel(proxyPort, target, timeoutMs));
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { opened: sockets.length, failures, ms: performance.now() - started, sockets };
}

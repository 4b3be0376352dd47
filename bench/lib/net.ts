/** Loopback-only socket helpers: a free port, and waiting until a port accepts. */
import type { Subprocess } from "bun";

export const HOST = "127.0.0.1";

/**
 * A port that was free a moment ago, for servers that cannot listen on port 0 and report it
 * (squid, tinyproxy). The window between closing and their bind is small; a clash shows up as
 * waitForPort failing with the server's exit, not as a silent wrong measurement.
 */
export function freePort(): number {
  const l = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    Bun.connect({
      hostname: HOST,
      port,
      socket: {
        open(s) {
          s.end();
          resolve(true);
        },
        data() {},
        connectError() {
          resolve(false);
        },
        error() {
          resolve(false);
        },
      },
    }).catch(() => resolve(false));
  });
}

/** Resolves once 127.0.0.1:port accepts a connection; rejects if `proc` exits first or on timeout. */
export async function waitForPort(port: number, proc: Subprocess, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}) before accepting on ${HOST}:${port}`);
    }
    if (await tryConnect(port)) return;
    await Bun.sleep(25);
  }
  throw new Error(`${what} did not accept on ${HOST}:${port} within ${timeoutMs} ms`);
}

/**
 * Child processes and resources the benchmark owns, so that every one of them is stopped on the
 * way out: normal end, a thrown error, or Ctrl-C. Only processes registered here are ever
 * signalled, by their own pid.
 *
 * Children are spawned `detached` (their own session), so a terminal's Ctrl-C reaches only the
 * benchmark, which then sends each child exactly one SIGTERM. A second signal during a graceful
 * shutdown is what a supervisor sends to mean "now", and sluice (0.1.0) mishandles it.
 */
import type { Subprocess } from "bun";

type Closer = { readonly name: string; close(): Promise<void> | void };

const children = new Map<number, { name: string; proc: Subprocess }>();
const closers: Closer[] = [];

export function track<T extends Subprocess>(name: string, proc: T): T {
  children.set(proc.pid, { name, proc });
  void proc.exited.then(() => children.delete(proc.pid));
  return proc;
}

/** Registers an in-process resource (server, sockets) to close at cleanup, newest first. */
export function onCleanup(name: string, close: () => Promise<void> | void): void {
  closers.push({ name, close });
}

const stopping = new WeakMap<Subprocess, Promise<number | null>>();

/**
 * SIGTERM, then SIGKILL if the process has not exited after `graceMs`. Idempotent: a second call
 * (cleanup racing a `finally`) waits for the first instead of signalling again, because a second
 * SIGTERM during a graceful shutdown usually means "die now".
 */
export function stopProcess(proc: Subprocess, graceMs = 3000): Promise<number | null> {
  let p = stopping.get(proc);
  if (!p) {
    p = terminate(proc, graceMs);
    stopping.set(proc, p);
  }
  return p;
}

async function terminate(proc: Subprocess, graceMs: number): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
  proc.kill("SIGTERM");
  const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
  const result = await Promise.race([proc.exited, timer]);
  if (result === "timeout") {
    proc.kill("SIGKILL");
    return await proc.exited;
  }
  return result;
}

let cleaning: Promise<void> | null = null;

export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...children.values()].map(({ proc }) => stopProcess(proc)));
    children.clear();
    while (closers.length > 0) {
      const c = closers.pop()!;
      try {
        await c.close();
      } catch (err) {
        console.error(`cleanup of ${c.name} failed: ${String(err)}`);
      }
    }
  })();
  return cleaning;
}

let interrupted = false;

/** True once Ctrl-C / SIGTERM arrived: failures after that are the interruption, not findings. */
export const isInterrupted = (): boolean => interrupted;

/** Ctrl-C / SIGTERM: stop everything we started, then exit 130 / 143. */
export function installSignalHandlers(): void {
  const handler = (signal: NodeJS.Signals, code: number) => {
    interrupted = true;
    console.error(`\n${signal}: stopping every process the benchmark started...`);
    void cleanupAll().finally(() => process.exit(code));
  };
  process.once("SIGINT", () => handler("SIGINT", 130));
  process.once("SIGTERM", () => handler("SIGTERM", 143));
}

/**
 * Runs a benchmark's `main` (its exit status) with the signal handlers installed, stops everything
 * it started when it throws, and exits: 1 on a failure, 130 / 143 from the handler on Ctrl-C / SIGTERM.
 */
export async function runBenchmark(main: () => Promise<number>): Promise<never> {
  installSignalHandlers();
  try {
    process.exitCode = await main();
  } catch (err) {
    await cleanupAll();
    if (isInterrupted()) await new Promise(() => {}); // the signal handler exits
    console.error(`\n!!!!!!!! benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  }
  process.exit();
}

/**
 * dnsmasq as the baseline resolver: started here on 127.0.0.1 and a free port (never 53), with
 * the fake upstream as its only server and nothing read from the system (no /etc/dnsmasq.conf,
 * no resolv.conf, no hosts file). It stays in the foreground so it is our child and is stopped
 * by its pid. As root it would drop to "nobody" after binding; `--user=root` keeps it the same
 * user as us, so it can write its log and pid file in our temp dir.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, HOST, waitForPort } from "./net.ts";
import { stopProcess, track } from "./procs.ts";

export interface RunningDnsmasq {
  readonly proc: Subprocess;
  readonly pid: number;
  readonly port: number;
  readonly logFile: string;
  readonly args: readonly string[];
  stop(): Promise<number | null>;
}

export function dnsmasqInstalled(): string | null {
  // Debian puts it in /usr/sbin, which is not on a non-root user's PATH.
  return Bun.which("dnsmasq") ?? (existsSync("/usr/sbin/dnsmasq") ? "/usr/sbin/dnsmasq" : null);
}

export async function startDnsmasq(bin: string, dir: string, upstreamPort: number, cacheSize: number): Promise<RunningDnsmasq> {
  mkdirSync(dir, { recursive: true });
  const port = freePort();
  const logFile = join(dir, "dnsmasq.log");
  const args = [
    bin,
    "--conf-file=/dev/null",
    "--keep-in-foreground",
    "--no-resolv",
    "--no-hosts",
    "--no-poll",
    `--server=${HOST}#${upstreamPort}`,
    `--listen-address=${HOST}`,
    `--port=${port}`,
    "--bind-interfaces",
    `--cache-size=${cacheSize}`,
    // Default 150 forwarded queries in flight; the uncached runs keep up to clients x -q outstanding.
    "--dns-forward-max=1000",
    `--pid-file=${join(dir, "dnsmasq.pid")}`,
    `--log-facility=${logFile}`,
    ...(process.getuid?.() === 0 ? ["--user=root"] : []),
  ];
  const proc = track("dnsmasq", Bun.spawn(args, { stdin: "ignore", stdout: "ignore", stderr: "pipe", detached: true }));
  try {
    await waitForPort(port, proc, "dnsmasq");
  } catch (err) {
    const stderr = await new Response(proc.stderr).text().catch(() => "");
    const log = await Bun.file(logFile).text().catch(() => "");
    await stopProcess(proc);
    throw new Error(`${String(err)}\n${stderr}${log}`);
  }
  return { proc, pid: proc.pid, port, logFile, args, stop: () => stopProcess(proc) };
}

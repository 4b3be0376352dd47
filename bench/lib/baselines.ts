/**
 * Reference proxies (squid, tinyproxy), each started in the foreground on a free 127.0.0.1 port
 * with a generated minimal config whose logs and pid file live in the benchmark's temp dir.
 * A system-wide instance and /etc are never touched.
 */
import { chownSync, chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, HOST, waitForPort } from "./net.ts";
import { stopProcess, track } from "./procs.ts";

export interface RunningBaseline {
  readonly name: string;
  readonly port: number;
  readonly proc: Subprocess;
  readonly dir: string;
  stop(): Promise<number | null>;
}

export type Availability = { readonly ok: true; readonly bin: string } | { readonly ok: false; readonly reason: string };

export function locate(bin: string): Availability {
  const path = Bun.which(bin, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/usr/bin:/sbin:/bin` });
  return path ? { ok: true, bin: path } : { ok: false, reason: `${bin} is not installed (apt-get install -y ${bin})` };
}

/** uid/gid of a system user, from /etc/passwd (read only), or null. */
async function userIds(name: string): Promise<{ uid: number; gid: number } | null> {
  const passwd = await Bun.file("/etc/passwd").text();
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length > 3) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return null;
}

async function launch(name: string, dir: string, port: number, argv: string[]): Promise<RunningBaseline> {
  const proc = track(
    name,
    Bun.spawn(argv, {
      stdin: "ignore",
      detached: true,
      stdout: Bun.file(join(dir, "stdout.log")),
      stderr: Bun.file(join(dir, "stderr.log")),
    }),
  );
  try {
    await waitForPort(port, proc, name);
  } catch (err) {
    await stopProcess(proc);
    const stderr = await Bun.file(join(dir, "stderr.log")).text().catch(() => "");
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${stderr}`);
  }
  return { name, port, proc, dir, stop: () => stopProcess(proc, 5000) };
}

export async function startSquid(bin: string, dir: string): Promise<RunningBaseline> {
  mkdirSync(dir, { recursive: true });
  const port = freePort();
  const lines = [
    `http_port ${HOST}:${port}`,
    `pid_filename ${join(dir, "squid.pid")}`,
    `access_log stdio:${join(dir, "access.log")}`,
    `cache_log ${join(dir, "cache.log")}`,
    "cache_store_log none",
    `coredump_dir ${dir}`,
    // A forwarding proxy, not a cache: the comparison is about relaying.
    "cache deny all",
    "cache_mem 0 MB",
    "pinger_enable off",
    "netdb_filename none",
    "shutdown_lifetime 0 seconds",
    "visible_hostname localhost",
    "acl bench_client src 127.0.0.1/32",
    "http_access allow bench_client",
    "http_access deny all",
  ];
  // As root, squid drops to cache_effective_user (Debian: "proxy"), which must own the dir.
  if (process.getuid?.() === 0) {
    const ids = (await userIds("proxy")) ?? (await userIds("nobody"));
    if (!ids) throw new Error("running as root and neither user proxy nor nobody exists for squid's cache_effective_user");
    lines.push(`cache_effective_user ${ids.uid === 65534 ? "nobody" : "proxy"}`);
    chmodSync(dir, 0o755);
    chownSync(dir, ids.uid, ids.gid);
    // mkdtemp makes the parent 0700; that user must be able to traverse it to reach `dir`.
    chmodSync(dirname(dir), 0o711);
  }
  const conf = join(dir, "squid.conf");
  writeFileSync(conf, `${lines.join("\n")}\n`);
  // -N: no daemon, so the pid we hold is squid itself and stopping it stops everything.
  return launch("squid", dir, port, [bin, "-N", "-f", conf]);
}

/**
 * tinyproxy 1.11 has no client keep-alive: it closes the connection after every response
 * without sending `Connection: close` (even when the request carried it), so wrk reuses the
 * socket, reads EOF and counts one read error per request. Responses still arrive whole (the
 * origin's count is checked); connect, write and timeout errors and non-2xx stay errors.
 */
export const TINYPROXY_CLOSES =
  "tinyproxy closes the client connection after every response without Connection: close (no keep-alive), so wrk counts one read error per request";

export async function startTinyproxy(bin: string, dir: string): Promise<RunningBaseline> {
  mkdirSync(dir, { recursive: true });
  const port = freePort();
  const conf = join(dir, "tinyproxy.conf");
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      `Listen ${HOST}`,
      "Timeout 600",
      `LogFile "${join(dir, "tinyproxy.log")}"`,
      // One line per connection: some logging, as sluice writes a record per request.
      "LogLevel Connect",
      `PidFile "${join(dir, "tinyproxy.pid")}"`,
      "MaxClients 256",
      `Allow ${HOST}`,
      "DisableViaHeader Yes",
      "",
    ].join("\n"),
  );
  // -d: foreground.
  return launch("tinyproxy", dir, port, [bin, "-d", "-c", conf]);
}

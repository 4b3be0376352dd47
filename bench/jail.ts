/**
 * `bun run bench:jail` (root): what `sluice jail` costs.
 *
 * - Start: wall time of `sluice jail -- true` (namespace, veth, sluice started, nftables, the
 *   command, teardown), median of --runs, and of `sluice jail --attach URL -- true` (the same
 *   with a sluice already running), against `ip netns exec NS true` in an existing namespace
 *   measured in the same run. Target (issue 9): <= 300 ms.
 * - Throughput: wrk inside one jail against a web host in a namespace of its own (bench's own,
 *   10.201.x.2, named web.test by a fake DNS upstream on loopback): through the transparent
 *   listener (wrk connects to web.test directly; nftables redirects it) and through the explicit
 *   proxy (absolute-form requests to HTTP_PROXY), same load. Target: transparent within 10% of
 *   explicit (>= 0.90x).
 *
 *   bun bench/jail.ts [--runs 5] [--duration 5] [--connections 16]
 *
 * Prints a table, PASS / MISS per target, and one JSON line. Exit 1 on an error (a failed jail, a
 * wrk run with non-2xx or socket errors), not on a missed target.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeDns } from "../test/helpers/fake-dns.ts";
import { startWebHost } from "../test/helpers/netns-web.ts";
import { ensureBinary, BIN, launchSluice, readyPort } from "./lib/sluice.ts";
import { parseWrk, socketErrorCount } from "./lib/wrk.ts";

const argv = process.argv.slice(2);
const arg = (name: string, fallback: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : fallback);
const RUNS = arg("--runs", 5);
const DURATION = arg("--duration", 5);
const CONNECTIONS = arg("--connections", 16);

if (process.getuid?.() !== 0) {
  console.log("bench:jail needs root (network namespaces, nftables): skipped");
  process.exit(0);
}
for (const tool of ["ip", "nft", "setpriv", "wrk"]) {
  if (!Bun.which(tool)) {
    console.log(`bench:jail needs ${tool}: skipped`);
    process.exit(0);
  }
}
await ensureBinary();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const errors: string[] = [];
const dir = mkdtempSync(join(tmpdir(), "sluice-bench-jail-"));
chmodSync(dir, 0o755);
const host = await startWebHost();
const dns = await startFakeDns({ names: { "web.test": { answers: [{ type: "A", data: host.ip }] } }, log: false });
try {
  writeFileSync(
    join(dir, "sluice.yaml"),
    ["version: 1", "egress:", '  allow: ["web.test"]', '  ports: { http: ["1-65535"] }', '  trusted_cidrs: ["10.201.0.0/16"]', `dns: { upstreams: ["${dns.address}"] }`, `audit: { dir: ${JSON.stringify(join(dir, "log"))}, file: "off" }`, ""].join("\n"),
  );
  // wrk's absolute-form requests for the explicit path (the proxy's address is only known inside).
  const lua = join(dir, "explicit.lua");
  writeFileSync(lua, `local req = wrk.format("GET", "http://web.test/bench", { ["Host"] = "web.test" })\nrequest = function() return req end\n`, { mode: 0o644 });

  const jail = async (cmd: string[]) => {
    const p = Bun.spawn([BIN, "jail", "--config", join(dir, "sluice.yaml"), "--user", "nobody", "--", ...cmd], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") } });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { out, err, code };
  };

  // ---- start ----
  const starts: number[] = [];
  const bases: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    const r = await jail(["true"]);
    starts.push(performance.now() - t);
    if (r.code !== 0) errors.push(`sluice jail -- true exited ${r.code}: ${r.err.trim()}`);
    t = performance.now();
    await Bun.spawn(["ip", "netns", "exec", host.ns, "true"]).exited;
    bases.push(performance.now() - t);
  }

  // ---- start, attached to a running sluice ----
  const running = await launchSluice({
    name: "sluice (attach target)",
    dir: join(dir, "running"),
    config: () =>
      ["version: 1", 'proxy: { listen: "127.0.0.1:0", transparent_listen: "127.0.0.1:0" }', 'admin: { listen: "127.0.0.1:0" }', `dns: { listen: "127.0.0.1:0", upstreams: ["${dns.address}"] }`, "egress:", '  allow: ["web.test"]', '  ports: { http: ["1-65535"] }', '  trusted_cidrs: ["10.201.0.0/16"]', `audit: { dir: ${JSON.stringify(join(dir, "running-log"))}, file: "off" }`, ""].join("\n"),
  });
  const adminUrl = `http://127.0.0.1:${readyPort(running.ready, "admin")}`;
  const attached: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      const p = Bun.spawn([BIN, "jail", "--attach", adminUrl, "--user", "nobody", "--", "true"], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") } });
      const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
      attached.push(performance.now() - t);
      if (code !== 0) errors.push(`sluice jail --attach -- true exited ${code}: ${err.trim()}`);
    }
  } finally {
    await running.stop();
  }

  // ---- throughput, both paths in one jail ----
  const wrk = `wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency`;
  const r = await jail(["sh", "-c", `${wrk} http://web.test/bench; echo @@@; ${wrk} -s ${lua} "$HTTP_PROXY"`]);
  if (r.code !== 0) errors.push(`the wrk jail exited ${r.code}: ${r.err.trim()}`);
  const [transparentText = "", explicitText = ""] = r.out.split("@@@");
  const transparent = parseWrk(transparentText);
  const explicit = parseWrk(explicitText);
  for (const [name, w] of [["transparent", transparent], ["explicit", explicit]] as const) {
    if (w.non2xx > 0 || socketErrorCount(w.socketErrors) > 0) errors.push(`${name}: ${w.non2xx} non-2xx, ${socketErrorCount(w.socketErrors)} socket errors`);
  }

  const startMs = median(starts);
  const attachMs = median(attached);
  const baseMs = median(bases);
  const ratio = transparent.rps / explicit.rps;
  console.log(`sluice jail, ${RUNS} runs; wrk -t1 -c${CONNECTIONS} -d${DURATION}s inside one jail against a namespace web host\n`);
  console.log(`${"measure".padEnd(34)}${"value".padStart(12)}  ${"baseline".padEnd(30)}${"value".padStart(12)}  target`);
  console.log(`${"jail start + true + teardown".padEnd(34)}${`${startMs.toFixed(0)} ms`.padStart(12)}  ${"ip netns exec NS true".padEnd(30)}${`${baseMs.toFixed(1)} ms`.padStart(12)}  ${startMs <= 300 ? "PASS" : "MISS"} <= 300 ms (${(startMs / baseMs).toFixed(0)}x the baseline)`);
  console.log(`${"jail --attach start + true".padEnd(34)}${`${attachMs.toFixed(0)} ms`.padStart(12)}  ${"ip netns exec NS true".padEnd(30)}${`${baseMs.toFixed(1)} ms`.padStart(12)}  ${attachMs <= 300 ? "PASS" : "MISS"} <= 300 ms (${(attachMs / baseMs).toFixed(0)}x the baseline)`);
  console.log(`${"transparent path".padEnd(34)}${`${Math.round(transparent.rps)} rps`.padStart(12)}  ${"explicit proxy path".padEnd(30)}${`${Math.round(explicit.rps)} rps`.padStart(12)}  ${ratio >= 0.9 ? "PASS" : "MISS"} >= 0.90x (${ratio.toFixed(2)}x)`);
  for (const e of errors) console.log(`!!!!!!!! ${e}`);
  console.log(JSON.stringify({ bench: "jail", runs: RUNS, start_ms: starts.map((x) => Math.round(x)), attach_start_ms: attached.map((x) => Math.round(x)), baseline_ms: bases.map((x) => +x.toFixed(1)), transparent_rps: Math.round(transparent.rps), explicit_rps: Math.round(explicit.rps), transparent_p99_ms: transparent.p99Ms, explicit_p99_ms: explicit.p99Ms, ratio: +ratio.toFixed(3), pass: { start: startMs <= 300, attach_start: attachMs <= 300, transparent: ratio >= 0.9 }, errors }));
} finally {
  await dns.stop();
  host.destroy();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(errors.length > 0 ? 1 : 0);

/**
 * Forwarding benchmark: wrk against a local origin directly, then through sluice (egress policy
 * on, decision records to a file, as in production), then through squid and tinyproxy when
 * installed. Prints requests/sec, p50, p99 and the ratio to direct; then sluice's memory idle and
 * with 1,000 idle CONNECT tunnels; then the targets, and one JSON line with every figure.
 *
 *   bun bench/proxy.ts [--duration 10] [--connections 32] [--tunnels 1000] [--keep-tmp]
 *
 * Only 127.0.0.1 is used. Every process started here is stopped on the way out, Ctrl-C included.
 * Exit status: 0 when the runs completed without errors (a missed target is not an error),
 * 1 on any error (a non-2xx or socket error through a proxy, a process that failed, ...).
 */
import { join } from "node:path";
import { countAudit } from "./lib/audit.ts";
import { locate, startSquid, startTinyproxy, TINYPROXY_CLOSES, type RunningBaseline } from "./lib/baselines.ts";
import { HOST } from "./lib/net.ts";
import { onCleanup, runBenchmark } from "./lib/procs.ts";
import { cpuSeconds, rssMiB } from "./lib/procfs.ts";
import {
  benchTempDir,
  errorHeadlines,
  errors,
  fmt,
  fmtInt,
  loud,
  measureThenCleanUp,
  noteLogProblems,
  notes,
  parseBenchArgs,
  printFindings,
  printTable,
  printTargets,
  round,
  targetsJson,
  type Skipped,
  type Target,
} from "./lib/report.ts";
import { getFdLimit, raiseFdLimit } from "./lib/rlimit.ts";
import { ensureBinary, startSluice, ALLOW_PATTERNS, DENY_PATTERNS } from "./lib/sluice.ts";
import { openTunnels, startSink } from "./lib/tunnels.ts";
import { runWrk, socketErrorCount, writeProxyScript, type WrkResult } from "./lib/wrk.ts";

const TARGETS = { ratio: 0.3, p99Ms: 2, idleMiB: 80, tunnelsMiB: 200 } as const;
const WARMUP_S = 2;
const BODY_BYTES = 1024;

interface Row {
  readonly name: string;
  readonly wrk: WrkResult;
  /** Requests the origin served during the measured run. */
  readonly originServed: number;
  /** CPU seconds per wall second used by the proxy process during the measured run. */
  readonly proxyCores: number | null;
}

/** The soft open-files limit of the process that started us (the shell's `ulimit -n`), if readable. */
async function parentSoftFdLimit(): Promise<number | null> {
  try {
    const limits = await Bun.file(`/proc/${process.ppid}/limits`).text();
    const m = /^Max open files\s+(\S+)/m.exec(limits);
    if (!m) return null;
    return m[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return null;
  }
}

function startOrigin() {
  const body = new Uint8Array(BODY_BYTES).fill(0x61);
  let served = 0;
  const server = Bun.serve({
    hostname: HOST,
    port: 0,
    fetch() {
      served++;
      return new Response(body, { headers: { "content-type": "application/octet-stream" } });
    },
  });
  onCleanup("origin", () => server.stop(true));
  return { port: server.port ?? 0, served: () => served };
}

/** One warm-up (not reported) and one measured wrk run; checks errors and the origin's count. */
async function measure(opts: {
  name: string;
  url: string;
  script?: string;
  durationS: number;
  connections: number;
  origin: { served: () => number };
  pid?: number;
  throughProxy: boolean;
  /** Why wrk's read errors are an artifact of this proxy and not failures (tinyproxy). */
  readErrorsExpected?: string;
}): Promise<Row> {
  const base = { url: opts.url, connections: opts.connections, threads: 1, ...(opts.script ? { script: opts.script } : {}) };
  process.stdout.write(`  ${opts.name}: warm-up ${WARMUP_S}s`);
  const warm = await runWrk({ ...base, durationS: WARMUP_S });
  checkRun(`${opts.name} (warm-up)`, warm, opts.throughProxy, opts.readErrorsExpected);
  process.stdout.write(`, run ${opts.durationS}s`);
  const servedBefore = opts.origin.served();
  const cpuBefore = opts.pid ? await cpuSeconds(opts.pid) : 0;
  const t0 = performance.now();
  const wrk = await runWrk({ ...base, durationS: opts.durationS });
  const wall = (performance.now() - t0) / 1000;
  const proxyCores = opts.pid ? (await cpuSeconds(opts.pid) - cpuBefore) / wall : null;
  const originServed = opts.origin.served() - servedBefore;
  console.log(`: ${Math.round(wrk.rps).toLocaleString("en-US")} req/s`);
  checkRun(opts.name, wrk, opts.throughProxy, opts.readErrorsExpected);
  // Every 2xx wrk counted must have come from the origin, not from the proxy answering itself.
  const ok = wrk.requests - wrk.non2xx;
  if (originServed < ok) loud(`${opts.name}: wrk counted ${ok} good responses but the origin served only ${originServed}`);
  return { name: opts.name, wrk, originServed, proxyCores };
}

function checkRun(name: string, r: WrkResult, throughProxy: boolean, readErrorsExpected?: string): void {
  const e = r.socketErrors;
  // At most one read error per completed response: the close after it, nothing more.
  if (readErrorsExpected && e.read > 0 && e.read <= r.requests + 1) {
    if (!name.includes("warm-up")) notes.push(`${name}: ${e.read} wrk read errors not counted as errors: ${readErrorsExpected}`);
    if (r.non2xx === 0 && e.connect + e.write + e.timeout === 0) return;
  } else if (r.non2xx === 0 && socketErrorCount(e) === 0) return;
  const what = `${name}: ${r.non2xx} non-2xx responses, socket errors connect ${e.connect} read ${e.read} write ${e.write} timeout ${e.timeout} (of ${r.requests} requests)`;
  if (throughProxy) loud(`${what}\n${r.raw}`);
  else notes.push(`direct run had errors (origin or load generator problem): ${what}`);
}

async function runBaseline(
  name: string,
  start: (bin: string, dir: string) => Promise<RunningBaseline>,
  tmp: string,
  common: { durationS: number; connections: number; origin: ReturnType<typeof startOrigin> },
  script: string,
  rows: Row[],
  skipped: Skipped[],
  readErrorsExpected?: string,
): Promise<void> {
  const where = locate(name);
  if (!where.ok) {
    console.log(`  ${name}: SKIPPED: ${where.reason}`);
    skipped.push({ name, reason: where.reason });
    return;
  }
  let b: RunningBaseline;
  try {
    b = await start(where.bin, join(tmp, name));
  } catch (err) {
    loud(`${name} is installed but did not start: ${String(err)}`);
    skipped.push({ name, reason: "failed to start" });
    return;
  }
  try {
    rows.push(
      await measure({
        name,
        url: `http://${HOST}:${b.port}/`,
        script,
        durationS: common.durationS,
        connections: common.connections,
        origin: common.origin,
        pid: b.proc.pid,
        throughProxy: true,
        ...(readErrorsExpected ? { readErrorsExpected } : {}),
      }),
    );
  } finally {
    await b.stop();
  }
}

interface TunnelMemory {
  readonly requested: number;
  readonly opened: number;
  readonly failed: number;
  readonly idleMiB: number;
  readonly rssMiB: number;
  readonly openMs: number;
  readonly sinkAccepted: number;
}

/** A separate sluice (CONNECT to any port allowed), N idle tunnels to a sink, RSS before and after. */
async function measureTunnels(tmp: string, count: number): Promise<TunnelMemory> {
  const sink = startSink();
  onCleanup("sink", () => sink.stop());
  const s = await startSluice("sluice-tunnels", join(tmp, "sluice-tunnels"), { connectPorts: ["1-65535"] });
  try {
    const idle = await rssMiB(s.pid);
    process.stdout.write(`  sluice: opening ${count} idle CONNECT tunnels to ${HOST}:${sink.port}`);
    const t = await openTunnels(s.proxyPort, sink.port, count);
    const rss = await rssMiB(s.pid);
    console.log(`: ${t.opened} open in ${fmtInt(t.ms)} ms, RSS ${fmt(idle, 1)} -> ${fmt(rss, 1)} MiB`);
    if (t.failures.length > 0) {
      const kinds = new Map<string, number>();
      for (const f of t.failures) kinds.set(f, (kinds.get(f) ?? 0) + 1);
      loud(`${t.failures.length} of ${count} CONNECT tunnels failed:\n${[...kinds].slice(0, 10).map(([k, n]) => `    ${n}x ${k}`).join("\n")}`);
    }
    if (sink.accepted() < t.opened) loud(`sluice answered 200 to ${t.opened} CONNECTs but the sink accepted only ${sink.accepted()}`);
    for (const sock of t.sockets) sock.end();
    return { requested: count, opened: t.opened, failed: t.failures.length, idleMiB: idle, rssMiB: rss, openMs: t.ms, sinkAccepted: sink.accepted() };
  } finally {
    const code = await s.stop();
    if (code !== 0) loud(`sluice-tunnels exited with ${code} on SIGTERM (expected 0)`);
    noteLogProblems("sluice (tunnel instance)", s.problems);
    sink.stop();
  }
}

function printRows(rows: readonly Row[], direct: number): void {
  const header = ["name", "rps", "p50 ms", "p99 ms", "vs direct", "proxy CPU"];
  const body = rows.map((r) => [
    r.name,
    fmtInt(r.wrk.rps),
    fmt(r.wrk.p50Ms),
    fmt(r.wrk.p99Ms),
    `${fmt(r.wrk.rps / direct)}x`,
    r.proxyCores === null ? "-" : `${fmt(r.proxyCores)} cores`,
  ]);
  printTable(header, body);
}

async function main(): Promise<number> {
  const args = parseBenchArgs({ connections: "32", tunnels: "1000" });
  const { durationS } = args;
  const { connections, tunnels: tunnelCount } = args.ints;

  if (!locate("wrk").ok) throw new Error("wrk is not installed (apt-get install -y wrk)");
  await ensureBinary();

  // The tunnel test holds 2 fds per tunnel in sluice (client + upstream) and 2 here (client + sink).
  const needFds = 2 * tunnelCount + 256;
  // ulimit -n is per process. Bun raises its own soft limit to the hard one at start, so the
  // shell's value is read from the parent; ours is raised further if needed, and sluice, squid
  // and wrk inherit it when spawned.
  const shell = await parentSoftFdLimit();
  let fds = getFdLimit();
  if (fds.soft < Math.max(4096, needFds)) fds = raiseFdLimit(Math.max(8192, needFds));
  if (shell !== null && shell < 4096) {
    console.log(`!! ulimit -n in the calling shell is ${shell}, below 4096; this benchmark and the processes it starts run with ${fds.soft} (hard limit ${fds.hard})`);
  }
  console.log(`fd limit: soft ${fds.soft}, hard ${fds.hard}; the tunnel test needs about ${needFds} per process`);
  const tunnelsPossible = fds.soft >= needFds;
  if (!tunnelsPossible) {
    console.log(
      `!! the hard fd limit (${fds.hard}) is below the ${needFds} the ${tunnelCount}-tunnel test needs: it will be skipped. ` +
        `Raise the hard limit (as root: \`ulimit -Hn 65536\`, or LimitNOFILE / limits.conf) or pass --tunnels ${Math.max(1, Math.floor((fds.soft - 256) / 2))}.`,
    );
  }

  // Registered first, so it runs last (after every process that writes there has stopped).
  const tmpDir = benchTempDir("sluice-bench-", args.keepTmp);
  const tmp = tmpDir.path;
  const rows: Row[] = [];
  const skipped: Skipped[] = [];
  const memory: {
    idleMiB: number | null;
    afterLoadMiB: number | null;
    tunnels: TunnelMemory | null;
  } = { idleMiB: null, afterLoadMiB: null, tunnels: null };
  const auditSummary: { records: number; http: number; allow: number; block: number; expectedAtLeast: number } = {
    records: 0,
    http: 0,
    allow: 0,
    block: 0,
    expectedAtLeast: 0,
  };

  await measureThenCleanUp(tmpDir, async () => {
    const origin = startOrigin();
    const originUrl = `http://${HOST}:${origin.port}/`;
    const script = writeProxyScript(tmp, "absolute-form", originUrl);
    console.log(`origin ${originUrl} (${BODY_BYTES} B body); wrk -t1 -c${connections} -d${durationS}s --latency (+${WARMUP_S}s warm-up each); temp dir ${tmp}`);
    console.log(`sluice: ${ALLOW_PATTERNS.length} allow and ${DENY_PATTERNS.length} deny patterns, http ports 1-65535, trusted 127.0.0.1/32, audit to a file\n`);

    // ---- direct --------------------------------------------------------------------------
    const direct = await measure({ name: "direct", url: originUrl, durationS, connections, origin, throughProxy: false });
    rows.push(direct);

    // ---- sluice --------------------------------------------------------------------------
    {
      const s = await startSluice("sluice", join(tmp, "sluice"));
      try {
        memory.idleMiB = await rssMiB(s.pid);
        const servedBefore = origin.served();
        rows.push(
          await measure({ name: "sluice", url: `http://${HOST}:${s.proxyPort}/`, script, durationS, connections, origin, pid: s.pid, throughProxy: true }),
        );
        auditSummary.expectedAtLeast = origin.served() - servedBefore;
        memory.afterLoadMiB = await rssMiB(s.pid);
      } finally {
        const code = await s.stop();
        if (code !== 0) loud(`sluice exited with ${code} on SIGTERM (expected 0)`);
        noteLogProblems("sluice (wrk instance)", s.problems);
      }
      const counts = await countAudit(s.auditFile);
      Object.assign(auditSummary, { records: counts.lines, http: counts.http, allow: counts.allow, block: counts.block });
      if (counts.http < auditSummary.expectedAtLeast) {
        loud(`sluice wrote ${counts.http} http decision records for ${auditSummary.expectedAtLeast} requests the origin served through it`);
      }
      if (counts.block > 0 || counts.unparsable > 0) loud(`sluice audit: ${counts.block} non-allow http records, ${counts.unparsable} unparsable lines`);
      if (counts.oddities.length > 0) {
        // Status 0 is an exchange the client abandoned: wrk stops with requests in flight.
        notes.push(`sluice audit records other than "allow, 200" (status 0 = client left before the response, e.g. wrk stopping):\n    ${counts.oddities.map(([k, n]) => `${n}x ${k}`).join("\n    ")}`);
      }
    }

    // ---- baselines -----------------------------------------------------------------------
    const common = { durationS, connections, origin };
    await runBaseline("squid", startSquid, tmp, common, script, rows, skipped);
    await runBaseline("tinyproxy", startTinyproxy, tmp, common, script, rows, skipped, TINYPROXY_CLOSES);

    // ---- memory with idle CONNECT tunnels ------------------------------------------------
    if (!tunnelsPossible) loud(`tunnel memory test skipped: fd limit ${fds.soft} < ${needFds}`);
    else {
      try {
        memory.tunnels = await measureTunnels(tmp, tunnelCount);
      } catch (err) {
        // Reported, not fatal: the throughput figures above still stand.
        loud(`tunnel memory test failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  });

  // ---- report ------------------------------------------------------------------------------
  const directRps = rows[0]!.wrk.rps;
  const sluice = rows.find((r) => r.name === "sluice");
  console.log(`\nwrk -t1 -c${connections} -d${durationS}s, 1 KiB responses, absolute-form requests through the proxies:\n`);
  printRows(rows, directRps);
  if (auditSummary.expectedAtLeast > 0) {
    console.log(`\nsluice decision records: ${fmtInt(auditSummary.http)} http (${fmtInt(auditSummary.allow)} allow, ${fmtInt(auditSummary.block)} other) for ${fmtInt(auditSummary.expectedAtLeast)} requests served through it`);
  }
  if (memory.idleMiB !== null) {
    console.log(`sluice RSS: idle ${fmt(memory.idleMiB, 1)} MiB, after the wrk runs ${fmt(memory.afterLoadMiB ?? 0, 1)} MiB`);
  }
  if (memory.tunnels) {
    const m = memory.tunnels;
    console.log(`sluice RSS with ${m.opened}/${m.requested} idle CONNECT tunnels: ${fmt(m.rssMiB, 1)} MiB (idle ${fmt(m.idleMiB, 1)} MiB, +${fmt(((m.rssMiB - m.idleMiB) * 1024) / Math.max(1, m.opened), 1)} KiB per tunnel; opened in ${fmtInt(m.openMs)} ms)`);
  }

  const targets: Target[] = [
    {
      name: "sluice rps / direct",
      value: sluice ? sluice.wrk.rps / directRps : null,
      unit: "x",
      goal: `>= ${fmt(TARGETS.ratio)}x`,
      pass: sluice ? sluice.wrk.rps / directRps >= TARGETS.ratio : null,
    },
    { name: "sluice p99", value: sluice?.wrk.p99Ms ?? null, unit: " ms", goal: `<= ${TARGETS.p99Ms} ms`, pass: sluice ? sluice.wrk.p99Ms <= TARGETS.p99Ms : null },
    { name: "sluice RSS idle", value: memory.idleMiB, unit: " MB", goal: `<= ${TARGETS.idleMiB} MB`, pass: memory.idleMiB === null ? null : memory.idleMiB <= TARGETS.idleMiB },
    {
      name: `sluice RSS, ${fmtInt(tunnelCount)} tunnels`,
      value: memory.tunnels?.rssMiB ?? null,
      unit: " MB",
      goal: `<= ${TARGETS.tunnelsMiB} MB`,
      pass: memory.tunnels ? memory.tunnels.opened === tunnelCount && memory.tunnels.rssMiB <= TARGETS.tunnelsMiB : null,
    },
  ];
  console.log("\ntargets (MB = MiB from VmRSS):");
  printTargets(targets);

  printFindings(skipped);

  console.log(
    `\n${JSON.stringify({
      bench: "proxy",
      duration_s: durationS,
      warmup_s: WARMUP_S,
      connections,
      threads: 1,
      body_bytes: BODY_BYTES,
      results: rows.map((r) => ({
        name: r.name,
        rps: round(r.wrk.rps, 1),
        p50_ms: round(r.wrk.p50Ms),
        p99_ms: round(r.wrk.p99Ms),
        max_ms: round(r.wrk.maxMs),
        ratio: round(r.wrk.rps / directRps),
        requests: r.wrk.requests,
        non2xx: r.wrk.non2xx,
        socket_errors: r.wrk.socketErrors,
        origin_served: r.originServed,
        proxy_cpu_cores: round(r.proxyCores, 2),
      })),
      skipped,
      memory: {
        idle_mb: round(memory.idleMiB, 1),
        after_load_mb: round(memory.afterLoadMiB, 1),
        tunnels: memory.tunnels && {
          requested: memory.tunnels.requested,
          opened: memory.tunnels.opened,
          failed: memory.tunnels.failed,
          idle_mb: round(memory.tunnels.idleMiB, 1),
          rss_mb: round(memory.tunnels.rssMiB, 1),
          open_ms: round(memory.tunnels.openMs, 0),
        },
      },
      audit: { http_records: auditSummary.http, allow: auditSummary.allow, other: auditSummary.block, served: auditSummary.expectedAtLeast },
      targets: targetsJson(targets),
      errors: errorHeadlines(),
    })}`,
  );
  return errors.length > 0 ? 1 : 0;
}

await runBenchmark(main);

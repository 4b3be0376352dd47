/**
 * DNS benchmark: dnsperf against dnsmasq (the baseline) and against sluice's DNS server, both
 * forwarding to the same fake upstream (test/helpers/fake-dns.ts), cached and uncached.
 *
 *   bun bench/dns.ts [--duration 10] [--clients 4] [--outstanding 20] [--keep-tmp]
 *
 * - cached: 1,000 names with A records, TTL 300. One pass over them fills the cache, then
 *   dnsperf cycles through them; the upstream must see (almost) no queries meanwhile.
 * - uncached: every query is a name used once (q<N>.u.bench.test, answered by a wildcard with
 *   TTL 0), so every query goes upstream; the upstream's count must match dnsperf's.
 * Each row: a 2 s warm-up (not reported), a plain dnsperf run for queries/second and CPU, then a
 * shorter `dnsperf -v` run for the latency percentiles (dnsperf 2.10 prints no percentiles).
 * Besides qps, each row has the server's CPU time per answered query: on 2 shared cores the qps of
 * a closed-loop run swings between runs far more than the CPU cost does.
 *
 * Prints a table, the targets (sluice cached >= 30,000 qps and within 2x of dnsmasq: PASS/MISS),
 * and one JSON line with every figure. Only 127.0.0.1 is used. Every process started here is
 * stopped on the way out, Ctrl-C included, and the temp dir removed.
 * Exit status: 0 when the runs completed without errors (a missed target is not an error),
 * 1 on any error (a server answering wrongly, lost queries through sluice, a process failing).
 */
import { rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { FakeDns } from "../test/helpers/fake-dns.ts";
import { queryOnce, rcodeName } from "./lib/dns-client.ts";
import { busyCores, hostCpu } from "./lib/dns-cpu.ts";
import { dnsmasqInstalled, startDnsmasq } from "./lib/dns-dnsmasq.ts";
import { dnsperfArgs, dnsperfInstalled, runDnsperf, type DnsperfResult } from "./lib/dns-perf.ts";
import { SluiceDnsUnavailable, startSluiceDns } from "./lib/dns-sluice.ts";
import {
  BENCH_CIDR,
  BENCH_DOMAIN,
  cachedAddress,
  cachedName,
  startBenchUpstream,
  UNCACHED_ADDRESS,
  uncachedName,
  writeCachedQueries,
  writeUncachedQueries,
} from "./lib/dns-upstream.ts";
import { HOST } from "./lib/net.ts";
import { onCleanup, runBenchmark } from "./lib/procs.ts";
import { cpuSeconds } from "./lib/procfs.ts";
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
import { ensureBinary } from "./lib/sluice.ts";

const TARGETS = { cachedQps: 30_000, ratioToDnsmasq: 0.5 } as const;
const NAMES = 1000;
const WARMUP_S = 2;
const THREADS = 1;

type Mode = "cached" | "uncached";
type Server = "dnsmasq" | "sluice";

interface Row {
  readonly server: Server;
  readonly mode: Mode;
  readonly run: DnsperfResult;
  readonly latency: DnsperfResult;
  /** Queries the upstream received per query dnsperf completed, during the throughput run. */
  readonly upstreamPerQuery: number;
  /** CPU seconds per wall second used by the server process during the throughput run. */
  readonly cores: number;
  /** The same for dnsperf, and for the whole machine (every process). */
  readonly clientCores: number;
  readonly hostCores: number;
}

interface Settings {
  readonly tmp: string;
  readonly durationS: number;
  readonly latencyS: number;
  readonly clients: number;
  readonly outstanding: number;
  readonly cachedFile: string;
}

/** Checks that a server answers a cached and an uncached name with the fake upstream's address. */
async function checkAnswers(server: Server, port: number): Promise<boolean> {
  const probes: [string, string][] = [
    [cachedName(7), cachedAddress(7)],
    [uncachedName("check", 1), UNCACHED_ADDRESS],
  ];
  for (const [name, want] of probes) {
    try {
      const r = await queryOnce(port, name);
      if (r.rcode !== 0 || r.addresses.join() !== want) {
        loud(`${server} answered ${name} A with ${rcodeName(r.rcode)} [${r.addresses.join(", ")}]${r.ede ? ` (EDE ${r.ede})` : ""}; expected NOERROR [${want}]`);
        return false;
      }
    } catch (err) {
      loud(`${server}: ${name} A: ${String(err)}`);
      return false;
    }
  }
  return true;
}

/** Lost queries and answers other than NOERROR: errors through sluice, notes for the baseline. */
function checkRun(server: Server, what: string, r: DnsperfResult): void {
  const bad = Object.entries(r.rcodes).filter(([code]) => code !== "NOERROR");
  if (r.lost === 0 && bad.length === 0 && r.completed > 0) return;
  const msg = `${server} ${what}: ${r.completed} completed, ${r.lost} lost, rcodes ${JSON.stringify(r.rcodes)} (${r.command})`;
  if (server === "sluice" || r.completed === 0) loud(msg);
  else notes.push(msg);
}

async function measureMode(
  server: Server,
  mode: Mode,
  target: { port: number; pid: number },
  upstream: FakeDns,
  s: Settings,
  files: { warm: string; run: string; latency: string },
): Promise<Row> {
  const base = { port: target.port, clients: s.clients, threads: THREADS, outstanding: s.outstanding };
  process.stdout.write(`  ${server} ${mode}: warm-up ${WARMUP_S}s`);
  checkRun(server, `${mode} warm-up`, await runDnsperf({ ...base, queryFile: files.warm, durationS: WARMUP_S }));

  process.stdout.write(`, run ${s.durationS}s`);
  const upBefore = upstream.count();
  const cpuBefore = await cpuSeconds(target.pid);
  const hostBefore = await hostCpu();
  const t0 = performance.now();
  const run = await runDnsperf({ ...base, queryFile: files.run, durationS: s.durationS });
  const wall = (performance.now() - t0) / 1000;
  const cores = ((await cpuSeconds(target.pid)) - cpuBefore) / wall;
  const hostCores = busyCores(hostBefore, await hostCpu(), availableParallelism());
  const clientCores = run.clientCpuS / wall;
  const upstreamPerQuery = (upstream.count() - upBefore) / Math.max(1, run.completed);
  checkRun(server, mode, run);

  process.stdout.write(`, latency run ${s.latencyS}s`);
  const verboseOut = join(s.tmp, `${server}-${mode}-dnsperf-v.out`);
  const latency = await runDnsperf({ ...base, queryFile: files.latency, durationS: s.latencyS, latencyFile: verboseOut });
  rmSync(verboseOut, { force: true });
  checkRun(server, `${mode} latency run`, latency);
  console.log(`: ${fmtInt(run.qps)} qps, p99 ${fmt(latency.p99Ms ?? 0, 3)} ms, upstream ${fmt(upstreamPerQuery)}/query`);

  if (mode === "cached" && upstreamPerQuery > 0.01) {
    loud(`${server} cached: the upstream got ${fmt(upstreamPerQuery, 3)} queries per query answered: the cache is not being used`);
  }
  if (mode === "uncached" && upstreamPerQuery < 0.99) {
    notes.push(`${server} uncached: the upstream got only ${fmt(upstreamPerQuery, 3)} queries per query answered (some answers came from a cache)`);
  }
  return { server, mode, run, latency, upstreamPerQuery, cores, clientCores, hostCores };
}

/** Cached then uncached rows for one server already listening on `port`. */
async function measureServer(server: Server, target: { port: number; pid: number }, upstream: FakeDns, s: Settings): Promise<Row[]> {
  if (!(await checkAnswers(server, target.port))) return [];
  const rows: Row[] = [];
  // Fill the cache: one pass over the names.
  const fill = await runDnsperf({ port: target.port, clients: s.clients, threads: THREADS, outstanding: s.outstanding, queryFile: s.cachedFile, maxRuns: 1 });
  if (fill.completed !== NAMES) loud(`${server}: the cache-filling pass completed ${fill.completed} of ${NAMES} queries (${fill.lost} lost)`);
  rows.push(await measureMode(server, "cached", target, upstream, s, { warm: s.cachedFile, run: s.cachedFile, latency: s.cachedFile }));

  // Uncached query files: enough names that none repeats within a run, judged by the cached rate.
  const perSecond = Math.ceil(rows[0]!.run.qps * 1.3) + 1000;
  const files = { warm: join(s.tmp, `${server}-uncached-warm.txt`), run: join(s.tmp, `${server}-uncached-run.txt`), latency: join(s.tmp, `${server}-uncached-latency.txt`) };
  await writeUncachedQueries(files.warm, "w", perSecond * WARMUP_S);
  await writeUncachedQueries(files.run, "q", perSecond * s.durationS);
  await writeUncachedQueries(files.latency, "l", perSecond * s.latencyS);
  try {
    rows.push(await measureMode(server, "uncached", target, upstream, s, files));
  } finally {
    for (const f of Object.values(files)) rmSync(f, { force: true });
  }
  return rows;
}

function ratioOf(row: Row, rows: readonly Row[]): number | null {
  const base = rows.find((r) => r.server === "dnsmasq" && r.mode === row.mode);
  return base ? row.run.qps / base.run.qps : null;
}

function printRows(rows: readonly Row[]): void {
  const header = ["name", "mode", "qps", "p50 ms", "p99 ms", "lost", "upstream/q", "server CPU", "CPU us/q", "dnsperf CPU", "host busy", "vs dnsmasq"];
  const body = rows.map((r) => {
    const ratio = ratioOf(r, rows);
    return [
      r.server,
      r.mode,
      fmtInt(r.run.qps),
      r.latency.p50Ms === null ? "-" : fmt(r.latency.p50Ms, 3),
      r.latency.p99Ms === null ? "-" : fmt(r.latency.p99Ms, 3),
      String(r.run.lost),
      fmt(r.upstreamPerQuery),
      `${fmt(r.cores)} cores`,
      fmt(usPerQuery(r), 1),
      `${fmt(r.clientCores)} cores`,
      `${fmt(r.hostCores)} cores`,
      ratio === null ? "-" : `${fmt(ratio)}x`,
    ];
  });
  printTable(header, body, 2);
}

/** Server CPU microseconds per answered query: less sensitive than qps to who else is busy. */
const usPerQuery = (r: Row): number => (r.cores * 1e6) / Math.max(1, r.run.qps);

async function main(): Promise<number> {
  const args = parseBenchArgs({ clients: "4", outstanding: "20" });
  const { durationS } = args;
  const { clients, outstanding } = args.ints;
  const latencyS = Math.max(2, Math.round(durationS / 2));

  if (!dnsperfInstalled()) throw new Error("dnsperf is not installed (apt-get install -y dnsperf)");
  await ensureBinary();

  const tmpDir = benchTempDir("sluice-bench-dns-", args.keepTmp);
  const tmp = tmpDir.path;

  const rows: Row[] = [];
  const skipped: Skipped[] = [];
  let sluiceAudit = 0;
  await measureThenCleanUp(tmpDir, async () => {
    const upstream = await startBenchUpstream(NAMES);
    onCleanup("fake upstream", () => upstream.stop());
    const cachedFile = join(tmp, "cached.txt");
    await writeCachedQueries(cachedFile, NAMES);
    const s: Settings = { tmp, durationS, latencyS, clients, outstanding, cachedFile };
    const example = dnsperfArgs({ port: 0, queryFile: "FILE", durationS, clients, threads: THREADS, outstanding }).join(" ").replace(" -p 0", " -p PORT");
    console.log(`fake upstream ${upstream.address}: ${NAMES} names *.${BENCH_DOMAIN} (A, TTL 300) + uncached names *.u.${BENCH_DOMAIN} (A, TTL 0, each used once)`);
    console.log(`${example}  (+${WARMUP_S}s warm-up; latency from a separate ${latencyS}s run with -v); temp dir ${tmp}\n`);

    // ---- dnsmasq -------------------------------------------------------------------------
    const dnsmasqBin = dnsmasqInstalled();
    if (!dnsmasqBin) {
      skipped.push({ name: "dnsmasq", reason: "not installed (apt-get install -y dnsmasq)" });
      console.log("  dnsmasq: SKIPPED: not installed");
    } else {
      let d: Awaited<ReturnType<typeof startDnsmasq>> | undefined;
      try {
        d = await startDnsmasq(dnsmasqBin, join(tmp, "dnsmasq"), upstream.port, 10_000);
      } catch (err) {
        loud(`dnsmasq is installed but did not start: ${String(err)}`);
      }
      if (d) {
        try {
          rows.push(...(await measureServer("dnsmasq", { port: d.port, pid: d.pid }, upstream, s)));
        } finally {
          await d.stop();
        }
      }
    }

    // ---- sluice --------------------------------------------------------------------------
    let sl: Awaited<ReturnType<typeof startSluiceDns>> | undefined;
    try {
      sl = await startSluiceDns(join(tmp, "sluice"), { upstreamPort: upstream.port, domain: BENCH_DOMAIN, trustedCidr: BENCH_CIDR });
    } catch (err) {
      if (!(err instanceof SluiceDnsUnavailable)) throw err;
      skipped.push({ name: "sluice", reason: err.message });
      console.log(`  sluice: skipped: ${err.message}`);
    }
    if (sl) {
      try {
        rows.push(...(await measureServer("sluice", { port: sl.port, pid: sl.pid }, upstream, s)));
      } finally {
        const code = await sl.stop();
        if (code !== 0) loud(`sluice exited with ${code} on SIGTERM (expected 0)`);
        noteLogProblems("sluice", sl.problems);
      }
      // Sluice records blocked or rewritten queries (kind "dns"); the benchmark's should all pass.
      const audit = await Bun.file(sl.auditFile).text().catch(() => "");
      const dnsRecords = audit.split("\n").filter((l) => l.includes('"kind":"dns"'));
      sluiceAudit = dnsRecords.length;
      if (sluiceAudit > 0) loud(`sluice wrote ${sluiceAudit} DNS decision record(s) (blocked or rewritten queries); first: ${dnsRecords[0]}`);
    }
  });

  // ---- report ------------------------------------------------------------------------------
  console.log(`\ndnsperf -c${clients} -T${THREADS} -q${outstanding} -l${durationS}, A queries over UDP, one fake upstream on ${HOST}:\n`);
  printRows(rows);
  console.log(
    `\nserver CPU: cores the server used during the throughput run; CPU us/q: that per answered query; dnsperf CPU: the load\n` +
      `generator; host busy: every process (${availableParallelism()} cores here: dnsperf, the server and, uncached, the fake upstream share them).\n` +
      `p50/p99 come from the separate dnsperf -v run. upstream/q: queries the fake upstream got per query answered.`,
  );

  const sluiceCached = rows.find((r) => r.server === "sluice" && r.mode === "cached");
  const cachedRatio = sluiceCached ? ratioOf(sluiceCached, rows) : null;
  const targets: Target[] = [
    {
      name: "sluice cached qps",
      value: sluiceCached?.run.qps ?? null,
      unit: " qps",
      goal: `>= ${fmtInt(TARGETS.cachedQps)} qps`,
      pass: sluiceCached ? sluiceCached.run.qps >= TARGETS.cachedQps : null,
    },
    {
      name: "sluice cached qps / dnsmasq cached",
      value: cachedRatio,
      unit: "x",
      goal: `>= ${fmt(TARGETS.ratioToDnsmasq)}x (within 2x)`,
      pass: cachedRatio === null ? null : cachedRatio >= TARGETS.ratioToDnsmasq,
    },
  ];
  console.log("\ntargets:");
  printTargets(targets, (t) => (t.unit === "x" ? fmt(t.value) : fmtInt(t.value)));
  // Not a target: the qps of a closed-loop run on 2 shared cores swings from run to run (dnsmasq
  // cached has read anywhere from ~95k to ~250k here), while CPU per query stays within a few %.
  for (const mode of ["cached", "uncached"] as const) {
    const sl = rows.find((r) => r.server === "sluice" && r.mode === mode);
    const dm = rows.find((r) => r.server === "dnsmasq" && r.mode === mode);
    if (sl && dm) console.log(`(${mode}: dnsmasq CPU per query / sluice CPU per query = ${fmt(usPerQuery(dm) / usPerQuery(sl))}x)`);
  }

  printFindings(skipped);

  console.log(
    `\n${JSON.stringify({
      bench: "dns",
      duration_s: durationS,
      latency_run_s: latencyS,
      warmup_s: WARMUP_S,
      dnsperf: { clients, threads: THREADS, outstanding },
      names: NAMES,
      results: rows.map((r) => ({
        name: r.server,
        mode: r.mode,
        qps: round(r.run.qps, 1),
        p50_ms: round(r.latency.p50Ms),
        p99_ms: round(r.latency.p99Ms),
        avg_ms: round(r.run.avgMs),
        max_ms: round(r.run.maxMs),
        ratio: round(ratioOf(r, rows)),
        sent: r.run.sent,
        completed: r.run.completed,
        lost: r.run.lost,
        rcodes: r.run.rcodes,
        latency_samples: r.latency.samples,
        upstream_per_query: round(r.upstreamPerQuery),
        server_cpu_cores: round(r.cores, 2),
        server_cpu_us_per_query: round(usPerQuery(r), 2),
        dnsperf_cpu_cores: round(r.clientCores, 2),
        host_busy_cores: round(r.hostCores, 2),
      })),
      skipped,
      sluice_dns_records: sluiceAudit,
      targets: targetsJson(targets),
      cpu_cost_ratio: Object.fromEntries(
        (["cached", "uncached"] as const).flatMap((mode) => {
          const sl = rows.find((r) => r.server === "sluice" && r.mode === mode);
          const dm = rows.find((r) => r.server === "dnsmasq" && r.mode === mode);
          return sl && dm ? [[mode, round(usPerQuery(dm) / usPerQuery(sl))]] : [];
        }),
      ),
      errors: errorHeadlines(),
    })}`,
  );
  return errors.length > 0 ? 1 : 0;
}

await runBenchmark(main);

/**
 * `bun run bench:audit`: the flight recorder's write and verify speed, each against a baseline
 * measured in the same run on the same records:
 *   write, fsync interval  vs plain JSONL (JSON.stringify, batched, sink.ts's writer)
 *   write, fsync always    vs plain JSONL with an fdatasync per line
 *   verify                 vs reading the same segments and JSON.parse of each line (best of 3 passes each)
 *   proxy with the recorder vs the same proxy built without it (bench/lib/audit-proxy.ts)
 * Targets (issue 8): >= 50,000 records/s written with fsync interval; verify >= 200,000 records/s;
 * the proxy with audit on within 10% of audit off (>= 0.90x its requests/s).
 * Prints a table and one JSON line. Everything lives in a temp dir that is removed at the end.
 *
 *   bun bench/audit.ts [--no-proxy] [--proxy-duration 8] [--proxy-rounds 2]
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRecorder } from "../src/audit/recorder.ts";
import { loadSigningKey } from "../src/audit/signing-key.ts";
import { createJsonlWriter } from "../src/audit/sink.ts";
import { verifyLog } from "../src/audit/verify.ts";
import { measureAuditProxy, median } from "./lib/audit-proxy.ts";
import { cleanupAll } from "./lib/procs.ts";

const N = Number(process.env.BENCH_AUDIT_RECORDS ?? 200_000);
/** fsync always is bounded by the disk, not the CPU: measured for a fixed time. */
const ALWAYS_MS = Number(process.env.BENCH_AUDIT_ALWAYS_MS ?? 2000);
const root = mkdtempSync(join(tmpdir(), "sluice-bench-audit-"));
const key = loadSigningKey({ home: join(root, "home"), create: true });

/** Decision records shaped like the proxy's: most allowed, some blocked with a finding. */
const records = Array.from({ length: 1024 }, (_, i) => ({
  time: new Date(1_735_689_600_000 + i * 7).toISOString(),
  kind: "http",
  agent: i % 3 === 0 ? "coder" : "anonymous",
  client: "127.0.0.1",
  method: i % 5 === 0 ? "POST" : "GET",
  host: `api${i % 17}.example.com`,
  port: 443,
  path: `/v1/items/${i}`,
  verdict: i % 10 === 0 ? "block" : "allow",
  rule: i % 10 === 0 ? "dlp.github-token" : "egress.allow-host",
  reason: i % 10 === 0 ? "secret_detected" : "allowed",
  status: i % 10 === 0 ? 403 : 200,
  bytes_in: 1000 + i,
  bytes_out: 200 + i,
  duration_ms: 3 + (i % 40),
  ...(i % 10 === 0 ? { findings: [{ rule: "dlp.github-token", location: "request.body", preview: "ghp_****…****", via: [] }] } : {}),
}));

function rate(n: number, ms: number): number {
  return Math.round((n / ms) * 1000);
}

function timeN(count: number, fn: (i: number) => void, finish: () => void): number {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) fn(i);
  finish();
  return rate(count, performance.now() - t0);
}

function timeFor(ms: number, fn: (i: number) => void, finish: () => void): number {
  const t0 = performance.now();
  let i = 0;
  while (performance.now() - t0 < ms) fn(i++);
  finish();
  return rate(i, performance.now() - t0);
}

const recorderDir = (name: string) => join(root, name);
const openFor = (dir: string, fsync: "always" | "interval") =>
  openRecorder({ dir, key, segmentBytes: 64 * 1024 * 1024, checkpointRecords: 1000, checkpointMs: 10_000, fsync });

// Plain JSONL, batched: today's audit.file writer.
const plain = createJsonlWriter({ file: join(root, "plain.jsonl") });
const plainRate = timeN(N, (i) => plain.writeLine(JSON.stringify(records[i % 1024])), () => plain.close());

const interval = openFor(recorderDir("interval"), "interval");
const intervalRate = timeN(N, (i) => interval.append(records[i % 1024]!), () => interval.close());

// Plain JSONL, one write + fdatasync per line: what "always" costs without the recorder.
const plainSyncFd = openSync(join(root, "plain-sync.jsonl"), "a", 0o600);
const plainSyncRate = timeFor(ALWAYS_MS, (i) => {
  writeSync(plainSyncFd, `${JSON.stringify(records[i % 1024])}\n`);
  fdatasyncSync(plainSyncFd);
}, () => closeSync(plainSyncFd));

const always = openFor(recorderDir("always"), "always");
const alwaysRate = timeFor(ALWAYS_MS, (i) => always.append(records[i % 1024]!), () => always.close());

// Verify the interval log (N records plus tree heads); the baseline reads and parses it.
const vdir = recorderDir("interval");
const lineCount = readdirSync(vdir).filter((f) => f.endsWith(".jsonl")).reduce((n, f) => n + readFileSync(join(vdir, f), "utf8").split("\n").length - 1, 0);
/** Records per second of the best of three passes of `fn` over the whole log (one pass alone swung 2x with what else ran). */
function bestOfThree(fn: () => number): number {
  let best = 0;
  for (let pass = 0; pass < 3; pass++) {
    const t0 = performance.now();
    const count = fn();
    best = Math.max(best, rate(count, performance.now() - t0));
  }
  return best;
}
const segmentFiles = () => readdirSync(vdir).filter((x) => x.endsWith(".jsonl")).sort();
const parseRate = bestOfThree(() => {
  let n = 0;
  for (const f of segmentFiles()) for (const l of readFileSync(join(vdir, f), "utf8").split("\n")) if (l) (JSON.parse(l), n++);
  return n;
});
const verifyRate = bestOfThree(() => {
  const report = verifyLog({ dir: vdir, publicKey: key.publicKey });
  if (report.problem) throw new Error(`bench log does not verify: ${JSON.stringify(report.problem)}`);
  return report.records;
});

const argv = process.argv.slice(2);
const argOf = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const proxy = argv.includes("--no-proxy")
  ? null
  : await measureAuditProxy({ tmp: root, durationS: argOf("--proxy-duration", 8), rounds: argOf("--proxy-rounds", 2), connections: 32 }).finally(cleanupAll);
rmSync(root, { recursive: true, force: true });

const rows = [
  { name: "write, fsync interval", value: intervalRate, baseline: plainRate, baselineName: "plain JSONL, batched", target: 50_000 },
  { name: "write, fsync always", value: alwaysRate, baseline: plainSyncRate, baselineName: "plain JSONL, fdatasync per line", target: null },
  { name: "verify", value: verifyRate, baseline: parseRate, baselineName: "read + JSON.parse", target: 200_000 },
];
const fmt = (n: number) => n.toLocaleString("en-US");
console.log(`flight recorder, ${fmt(N)} records (${fmt(lineCount)} lines with tree heads every 1000), fsync always for ${ALWAYS_MS} ms\n`);
console.log(`${"measure".padEnd(24)}${"records/s".padStart(12)}  ${"baseline".padEnd(32)}${"records/s".padStart(12)}${"ratio".padStart(8)}  target`);
for (const r of rows) {
  const verdict = r.target === null ? "(none)" : `${r.value >= r.target ? "PASS" : "MISS"} >= ${fmt(r.target)}/s`;
  console.log(`${r.name.padEnd(24)}${fmt(r.value).padStart(12)}  ${r.baselineName.padEnd(32)}${fmt(r.baseline).padStart(12)}${(r.value / r.baseline).toFixed(2).padStart(8)}  ${verdict}`);
}
if (proxy) {
  const on = Math.round(median(proxy.onRps));
  const off = Math.round(median(proxy.offRps));
  console.log(`${"proxy req/s, audit on".padEnd(24)}${fmt(on).padStart(12)}  ${"same proxy built without audit".padEnd(32)}${fmt(off).padStart(12)}${proxy.ratio.toFixed(2).padStart(8)}  ${proxy.ratio >= 0.9 ? "PASS" : "MISS"} >= 0.90x`);
  for (const e of proxy.errors) console.log(`!!!!!!!! ${e}`);
}
console.log(
  JSON.stringify({
    bench: "audit",
    records: N,
    write_interval_per_s: intervalRate,
    write_interval_ratio: +(intervalRate / plainRate).toFixed(3),
    write_always_per_s: alwaysRate,
    write_always_ratio: +(alwaysRate / plainSyncRate).toFixed(3),
    verify_per_s: verifyRate,
    verify_ratio: +(verifyRate / parseRate).toFixed(3),
    ...(proxy ? { proxy_rps_on: proxy.onRps.map(Math.round), proxy_rps_off: proxy.offRps.map(Math.round), proxy_cores_on: proxy.onCores.map((c) => +c.toFixed(2)), proxy_ratio: +proxy.ratio.toFixed(3) } : {}),
    pass: { write_interval: intervalRate >= 50_000, verify: verifyRate >= 200_000, ...(proxy ? { proxy: proxy.ratio >= 0.9 } : {}) },
  }),
);
process.exit(proxy && proxy.errors.length > 0 ? 1 : 0);

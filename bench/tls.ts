/**
 * TLS interception benchmark (issue 6). Interception itself is not built yet, so this measures
 * what exists: minting leaf certificates from the per-instance CA (src/proxy/tls-ca.ts), cold
 * (a host not in the cache: one ECDSA P-256 signature over a fresh certificate) and warm (from
 * the cache), against a baseline measured in the same run: one bare WebCrypto ECDSA P-256
 * signature over a certificate-sized message, the floor of a mint.
 *
 *   bun bench/tls.ts [--hosts 500]
 *
 * Targets (issue 6): leaf minting <= 5 ms cold. The interception throughput targets (>= 0.20x
 * direct HTTPS rps with scanning on, 10x mitmproxy) are n/a until interception exists.
 */
import { parseArgs } from "node:util";
import { createCa } from "../src/proxy/tls-ca.ts";
import { fmt, printTable, printTargets, round, targetsJson, type Target } from "./lib/report.ts";

const TARGET_MINT_MS = 5;
const { values } = parseArgs({ args: Bun.argv.slice(2), options: { hosts: { type: "string", default: "500" } }, strict: true });
const hosts = Number(values.hosts);
if (!Number.isInteger(hosts) || hosts < 50) {
  console.error("--hosts wants an integer >= 50");
  process.exit(1);
}

const percentile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
async function timeEach(n: number, f: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = Bun.nanoseconds();
    await f(i);
    ms.push((Bun.nanoseconds() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

const t0 = Bun.nanoseconds();
const ca = await createCa(() => Date.now(), { cacheSize: hosts * 2 });
const caMs = (Bun.nanoseconds() - t0) / 1e6;

// Baseline: a bare signature over a message the size of a leaf's to-be-signed part.
const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
const message = crypto.getRandomValues(new Uint8Array(400));
for (let i = 0; i < 50; i++) await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, message);
const baseline = await timeEach(hosts, () => crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, message));

// Warm up the minting path on hosts not measured, then cold mints of new hosts, then cache hits.
for (let i = 0; i < 20; i++) await ca.mint(`warmup-${i}.bench.test`);
const cold = await timeEach(hosts, (i) => ca.mint(`host-${i}.bench.test`));
const warm = await timeEach(hosts, (i) => ca.mint(`host-${i}.bench.test`));

console.log(`CA generated in ${fmt(caMs, 1)} ms; ${hosts} hosts\n`);
printTable(
  ["operation", "p50 ms", "p99 ms", "x baseline (p50)"],
  [
    ["baseline: one ECDSA P-256 signature", fmt(baseline.p50, 3), fmt(baseline.p99, 3), "1"],
    ["leaf mint, cold (new host)", fmt(cold.p50, 3), fmt(cold.p99, 3), fmt(cold.p50 / baseline.p50, 1)],
    ["leaf mint, warm (cached)", fmt(warm.p50, 4), fmt(warm.p99, 4), fmt(warm.p50 / baseline.p50, 2)],
  ],
);
const targets: Target[] = [
  { name: "leaf minting, cold (p50)", value: cold.p50, unit: " ms", goal: `<= ${TARGET_MINT_MS} ms`, pass: cold.p50 <= TARGET_MINT_MS },
  { name: "intercepted HTTPS rps / direct", value: null, unit: "x", goal: ">= 0.20x", pass: null },
  { name: "intercepted rps / mitmproxy", value: null, unit: "x", goal: ">= 10x", pass: null },
];
console.log("\ntargets:");
printTargets(targets, (t) => fmt(t.value, 3));
console.log("\nnote: interception is not built yet; its throughput targets are not measured");
console.log(
  `\n${JSON.stringify({
    bench: "tls",
    hosts,
    ca_ms: round(caMs, 1),
    baseline_sign_p50_ms: round(baseline.p50, 4),
    mint_cold_p50_ms: round(cold.p50, 3),
    mint_cold_p99_ms: round(cold.p99, 3),
    mint_warm_p50_ms: round(warm.p50, 4),
    targets: targetsJson(targets),
  })}`,
);

/**
 * DLP scan benchmark: the rule pack and the full text scan (rules through every decoded view)
 * against a baseline that only reads the bytes, all measured in this run.
 *
 *   bun bench/scan.ts [--seed 1] [--runs 2000]
 *
 * - input: 10 MiB of clean mixed text (bench/lib/scan-corpus.ts: prose, JSON API payloads, log
 *   lines, code, UUIDs, git SHAs, base64 image data, URLs with ids), generated from the seed and
 *   cut into 64 KiB chunks, as the proxy would scan a body. It must hold no secret: any finding
 *   is printed and the run exits 1 before measuring.
 * - throughput (MB/s, best of 3 passes over the 10 MiB) of: the baseline (charCodeAt over every
 *   chunk, summed), `rules.scan` alone (no decoders), and `scanText` (all rules, all decoders).
 * - latency (median, p99 over --runs bodies) for 1 KiB and 10 KiB bodies cut from the corpus.
 * - adversarial: per rule, ~100 KiB of its keywords with near-miss bodies
 *   (bench/lib/scan-adversarial.ts); the slowest rules, as a ratio to the baseline on that input.
 *
 * Prints tables, the targets (full engine >= 200 MB/s on clean input; 10 KiB body <= 100 us
 * median; the slowest rule's adversarial input within 20x clean input's cost per byte:
 * PASS/MISS) and one JSON line. Exit status: 0 when the run completed (a missed target is not an
 * error), 1 on an error (a finding in the clean input, an exception).
 */
import { parseArgs } from "node:util";
import { loadRuleFiles } from "../src/config/rule-files.ts";
import { compileRulePack, type CompiledRules } from "../src/scan/rules/compile.ts";
import { scanText } from "../src/scan/text-scan.ts";
import { adversarialInputs } from "./lib/scan-adversarial.ts";
import { chunks, cleanCorpus, rng } from "./lib/scan-corpus.ts";
import { errors, fmt, printTable, printTargets, round, targetsJson, type Target } from "./lib/report.ts";

const MiB = 1024 * 1024;
const CORPUS_BYTES = 10 * MiB;
const CHUNK_BYTES = 64 * 1024;
const PASSES = 3;
const ADVERSARIAL_BYTES = 100 * 1024;
const SLOWEST_SHOWN = 10;
const TARGET_MBPS = 200;
const TARGET_10K_MEDIAN_US = 100;
/** The "small fixed budget" for adversarial input, as a multiple of clean input's cost per byte. */
const ADVERSARIAL_MAX_X_CLEAN = 20;

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { seed: { type: "string", default: "1" }, runs: { type: "string", default: "2000" } },
  strict: true,
});
const seed = Number(values.seed);
const runs = Number(values.runs);
if (!Number.isInteger(seed) || !Number.isInteger(runs) || runs < 100) {
  console.error("--seed wants an integer, --runs an integer >= 100");
  process.exit(1);
}

/** Keeps the baseline's sum alive so it is not optimised away. */
let sink = 0;
function baseline(text: string): number {
  let sum = 0;
  for (let i = 0; i < text.length; i++) sum = (sum + text.charCodeAt(i)) | 0;
  sink ^= sum;
  return sum;
}

type Pass = (text: string) => unknown;
const now = () => Bun.nanoseconds();

/** Best of `passes` rounds over all the texts, in ns. */
function bestOf(pass: Pass, texts: readonly string[], passes = PASSES): number {
  let best = Infinity;
  for (let p = 0; p < passes; p++) {
    const t0 = now();
    for (const t of texts) pass(t);
    best = Math.min(best, now() - t0);
  }
  return best;
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Per-call latency over `bodies` (after a warm-up), in us: median and p99. */
function latency(pass: Pass, bodies: readonly string[]): { p50: number; p99: number } {
  for (let i = 0; i < Math.min(200, bodies.length); i++) pass(bodies[i]!);
  const us: number[] = [];
  for (const b of bodies) {
    const t0 = now();
    pass(b);
    us.push((now() - t0) / 1000);
  }
  us.sort((a, b) => a - b);
  return { p50: percentile(us, 0.5), p99: percentile(us, 0.99) };
}

/** `count` flat bodies of `size` characters cut from the corpus at seeded offsets. */
function bodies(corpus: string, size: number, count: number, r: () => number): string[] {
  const bytes = Buffer.from(corpus, "latin1");
  return Array.from({ length: count }, () => {
    const at = Math.floor(r() * (bytes.length - size));
    return bytes.subarray(at, at + size).toString("latin1");
  });
}

const mbps = (bytes: number, ns: number) => bytes / 1e6 / (ns / 1e9);

async function main(): Promise<void> {
  const rules: CompiledRules = compileRulePack(await loadRuleFiles("rules/dlp/"));
  const passes: readonly (readonly [string, Pass])[] = [
    ["baseline (charCodeAt sum)", baseline],
    ["rules.scan (no decoders)", (t) => rules.scan(t)],
    ["scanText (rules + decoders)", (t) => scanText(rules, t)],
  ];

  const t0 = now();
  const corpus = cleanCorpus(CORPUS_BYTES, seed);
  const pieces = chunks(corpus, CHUNK_BYTES);
  console.log(`input: ${fmt(CORPUS_BYTES / MiB, 0)} MiB clean mixed text, seed ${seed}, ${pieces.length} chunks of ${CHUNK_BYTES / 1024} KiB, ${rules.rules.length} rules (generated in ${fmt((now() - t0) / 1e6, 0)} ms)`);

  // The clean input must be clean; this pass doubles as the full engine's warm-up.
  let findings = 0;
  for (const [i, piece] of pieces.entries()) {
    for (const f of scanText(rules, piece)) {
      findings++;
      console.error(`finding in clean input, chunk ${i}: ${f.rule} ${f.preview} via [${f.via.join(", ")}] at ${f.start}-${f.end}`);
    }
  }
  if (findings > 0) {
    console.error(`\nthe clean input is not clean: ${findings} finding(s); fix bench/lib/scan-corpus.ts or the rules`);
    process.exit(1);
  }
  console.log("verified: scanText finds nothing in the clean input\n");

  // ---- throughput ----
  const throughput = passes.map(([name, pass]) => {
    pass(pieces[0]!);
    const ns = bestOf(pass, pieces);
    return { name, ns, mbps: mbps(CORPUS_BYTES, ns) };
  });
  const baseNs = throughput[0]!.ns;

  // ---- latency ----
  const r = rng(seed ^ 0x5ca9);
  const sizes = [1024, 10 * 1024] as const;
  const lat = sizes.map((size) => {
    const bs = bodies(corpus, size, runs, r);
    return { size, results: passes.map(([name, pass]) => ({ name, ...latency(pass, bs) })) };
  });

  console.log(`clean input: throughput best of ${PASSES} over ${CORPUS_BYTES / MiB} MiB; latency median / p99 over ${runs} bodies`);
  printTable(
    ["pass", "MB/s", "x baseline time", "1 KiB p50 us", "1 KiB p99 us", "10 KiB p50 us", "10 KiB p99 us"],
    throughput.map((t, i) => [
      t.name,
      fmt(t.mbps, 1),
      fmt(t.ns / baseNs, 1),
      fmt(lat[0]!.results[i]!.p50, 1),
      fmt(lat[0]!.results[i]!.p99, 1),
      fmt(lat[1]!.results[i]!.p50, 1),
      fmt(lat[1]!.results[i]!.p99, 1),
    ]),
  );

  // ---- adversarial ----
  const adversarial = adversarialInputs(rules, ADVERSARIAL_BYTES, seed).map((input) => {
    const base = bestOf(baseline, [input.text]);
    const ruleNs = bestOf((t) => rules.scan(t), [input.text]);
    let found = 0;
    const fullNs = bestOf((t) => (found = scanText(rules, t).length), [input.text]);
    return { rule: input.rule, nearMisses: input.nearMisses, base, ruleNs, fullNs, found };
  });
  adversarial.sort((a, b) => b.fullNs / b.base - a.fullNs / a.base);
  const advBytes = ADVERSARIAL_BYTES;
  console.log(`\nadversarial: ~${advBytes / 1024} KiB per rule of its keywords with near-miss bodies, best of ${PASSES}; slowest ${SLOWEST_SHOWN} of ${adversarial.length} by scanText time / baseline time`);
  printTable(
    ["rule", "near-miss forms", "findings (any rule)", "rules.scan MB/s", "x baseline", "scanText MB/s", "x baseline"],
    adversarial.slice(0, SLOWEST_SHOWN).map((a) => [
      a.rule,
      String(a.nearMisses),
      String(a.found),
      fmt(mbps(advBytes, a.ruleNs), 1),
      fmt(a.ruleNs / a.base, 0),
      fmt(mbps(advBytes, a.fullNs), 1),
      fmt(a.fullNs / a.base, 0),
    ]),
  );
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`(median over all rules: scanText ${fmt(median(adversarial.map((a) => a.fullNs / a.base)), 0)}x baseline time; clean input: ${fmt(throughput[2]!.ns / baseNs, 0)}x)`);

  // ---- targets ----
  const fullMbps = throughput[2]!.mbps;
  const p50_10k = lat[1]!.results[2]!.p50;
  // A rule that backtracked catastrophically would take seconds on 100 KiB (10^5 x and more);
  // the worst rule's input costing at most a few times what clean input costs per byte is linear.
  const worstAdversarial = adversarial[0]!.fullNs / adversarial[0]!.base;
  const cleanRatio = throughput[2]!.ns / baseNs;
  const targets: Target[] = [
    { name: "full engine (scanText), clean input", value: fullMbps, unit: " MB/s", goal: `>= ${TARGET_MBPS} MB/s`, pass: fullMbps >= TARGET_MBPS },
    { name: "full engine (scanText), 10 KiB body median", value: p50_10k, unit: " us", goal: `<= ${TARGET_10K_MEDIAN_US} us`, pass: p50_10k <= TARGET_10K_MEDIAN_US },
    {
      name: "slowest rule's 100 KiB adversarial input, x baseline",
      value: worstAdversarial,
      unit: "x",
      goal: `<= ${ADVERSARIAL_MAX_X_CLEAN}x clean input's (${fmt(ADVERSARIAL_MAX_X_CLEAN * cleanRatio, 0)}x)`,
      pass: worstAdversarial <= ADVERSARIAL_MAX_X_CLEAN * cleanRatio,
    },
  ];
  console.log("\ntargets:");
  printTargets(targets, (t) => fmt(t.value, 1));

  console.log(
    `\n${JSON.stringify({
      bench: "scan",
      seed,
      input_bytes: CORPUS_BYTES,
      chunk_bytes: CHUNK_BYTES,
      rules: rules.rules.length,
      runs,
      throughput: throughput.map((t) => ({ name: t.name, mbps: round(t.mbps, 1), x_baseline: round(t.ns / baseNs, 2) })),
      latency_us: lat.map((l) => ({ body_bytes: l.size, results: l.results.map((x) => ({ name: x.name, p50: round(x.p50, 2), p99: round(x.p99, 2) })) })),
      adversarial: {
        input_bytes: advBytes,
        slowest: adversarial.slice(0, SLOWEST_SHOWN).map((a) => ({
          rule: a.rule,
          findings_any_rule: a.found,
          rules_scan_x_baseline: round(a.ruleNs / a.base, 1),
          scan_text_x_baseline: round(a.fullNs / a.base, 1),
          scan_text_mbps: round(mbps(advBytes, a.fullNs), 1),
        })),
      },
      targets: targetsJson(targets),
      errors: errors.length,
      sink: sink & 1,
    })}`,
  );
}

try {
  await main();
} catch (e) {
  console.error(`error: ${(e as Error).stack ?? e}`);
  process.exit(1);
}

/**
 * Evaluates the DNS exfiltration detector (src/scan/dns-exfil.ts) on the labelled corpus
 * (test/fixtures/dns-exfil/corpus.ts): recall and false-positive rate overall and per kind, the
 * rules that fired, and throughput against a baseline measured in the same run.
 *
 *   bun scripts/eval-dns-exfil.ts [--list]     --list also prints every miss and false positive
 *
 * When /usr/share/dict/words exists (Debian: wamerican), it also reports the false-positive rate
 * on host names made from dictionary words, a set the detector was not tuned on.
 */
import { existsSync, readFileSync } from "node:fs";
import { CORPUS_NAMES, CORPUS_SEQUENCES, type CorpusLabel } from "../test/fixtures/dns-exfil/corpus.ts";
import { DEFAULT_DNS_EXFIL_OPTIONS, createDnsExfilDetector, type DnsExfilFinding } from "../src/scan/dns-exfil.ts";
import { getDomain } from "tldts";

const list = process.argv.includes("--list");

interface Outcome {
  readonly label: CorpusLabel;
  readonly kind: string;
  readonly what: string;
  readonly finding: DnsExfilFinding | null;
}

// Single names: one detector, names a minute and more apart, so the budget of one name never
// carries over to the next and only the content rules decide.
const outcomes: Outcome[] = [];
{
  const detector = createDnsExfilDetector();
  let now = 0;
  for (const entry of CORPUS_NAMES) {
    now += 61_000;
    outcomes.push({ label: entry.label, kind: entry.kind, what: entry.qtype === undefined ? entry.name : `${entry.name} ${entry.qtype}`, finding: detector.check(entry.name, now, entry.qtype) });
  }
}
// Sequences: a fresh detector each, names `intervalMs` apart; the sequence is flagged when any name is.
for (const seq of CORPUS_SEQUENCES) {
  const detector = createDnsExfilDetector();
  let finding: DnsExfilFinding | null = null;
  let at = -1;
  seq.names.forEach((name, i) => {
    const f = detector.check(name, i * seq.intervalMs, seq.qtypes?.[i]);
    if (f !== null && finding === null) {
      finding = f;
      at = i + 1;
    }
  });
  outcomes.push({ label: seq.label, kind: `seq:${seq.kind}`, what: `${seq.names.length} names, ${seq.intervalMs} ms apart${at > 0 ? `, flagged at #${at}` : ""}`, finding });
}

const pct = (n: number, d: number) => (d === 0 ? "   -  " : `${((100 * n) / d).toFixed(1).padStart(5)}%`);
function summary(rows: readonly Outcome[], title: string): void {
  const attacks = rows.filter((o) => o.label === "attack");
  const benign = rows.filter((o) => o.label === "benign");
  const caught = attacks.filter((o) => o.finding !== null).length;
  const flagged = benign.filter((o) => o.finding !== null).length;
  console.log(
    `${title.padEnd(18)} recall ${caught}/${attacks.length} = ${(caught / Math.max(1, attacks.length)).toFixed(4)}   false positives ${flagged}/${benign.length} = ${(flagged / Math.max(1, benign.length)).toFixed(4)}`,
  );
}

console.log("== DNS exfiltration detector: corpus evaluation\n");
const { extraScanners: _scanners, allowDomains: _allow, oastZones: _oast, ...numbers } = DEFAULT_DNS_EXFIL_OPTIONS;
console.log(`default options: ${JSON.stringify(numbers)}, no extraScanners (no DLP), no allowDomains\n`);
summary(outcomes.filter((o) => !o.kind.startsWith("seq:")), "single names");
summary(outcomes.filter((o) => o.kind.startsWith("seq:")), "sequences");
summary(outcomes, "overall");

console.log("\n-- per kind (rate = caught for attacks, flagged for benign)\n");
const kinds = new Map<string, Outcome[]>();
for (const o of outcomes) {
  const key = `${o.label}\t${o.kind}`;
  const rows = kinds.get(key);
  if (rows === undefined) kinds.set(key, [o]);
  else rows.push(o);
}
for (const [key, rows] of [...kinds].sort(([a], [b]) => a.localeCompare(b))) {
  const [label, kind] = key.split("\t") as [string, string];
  const hit = rows.filter((o) => o.finding !== null);
  const rules = new Map<string, number>();
  for (const o of hit) rules.set(o.finding!.rule, (rules.get(o.finding!.rule) ?? 0) + 1);
  const ruleText = [...rules].map(([r, n]) => `${r.replace(/^dns\.exfil-/, "")}:${n}`).join(" ");
  console.log(`${label.padEnd(7)} ${kind.padEnd(34)} ${String(hit.length).padStart(3)}/${String(rows.length).padEnd(3)} ${pct(hit.length, rows.length)}  ${ruleText}`);
}

const misses = outcomes.filter((o) => o.label === "attack" && o.finding === null);
const falsePositives = outcomes.filter((o) => o.label === "benign" && o.finding !== null);
console.log(`\n-- misses: ${misses.length}, false positives: ${falsePositives.length}${list ? "" : " (--list prints them)"}`);
if (list) {
  for (const o of misses) console.log(`miss  ${o.kind.padEnd(28)} ${o.what}`);
  for (const o of falsePositives) console.log(`FP    ${o.kind.padEnd(28)} ${o.what}  [${o.finding!.rule}] ${o.finding!.detail}`);
}

// Names made of dictionary words: an independent false-positive check.
const dictionary = "/usr/share/dict/words";
if (existsSync(dictionary)) {
  const words = readFileSync(dictionary, "utf8")
    .split("\n")
    .filter((w) => /^[a-z]{3,}$/.test(w));
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  const word = () => words[Math.floor(rand() * words.length)]!;
  const detector = createDnsExfilDetector();
  const shapes: [string, () => string][] = [
    ["word.example.com", () => `${word()}.example.com`],
    ["word-word.example.com", () => `${word()}-${word()}.example.com`],
    ["wordwordword.example.com", () => `${word()}${word()}${word()}.example.com`],
    ["word.word.word.example.com", () => `${word()}.${word()}.${word()}.example.com`],
    ["word-12.word.example.com", () => `${word()}-${Math.floor(rand() * 100)}.${word()}.example.com`],
  ];
  console.log(`\n-- false positives on host names made from ${words.length} dictionary words (not tuned on)\n`);
  let now = 0;
  for (const [shape, make] of shapes) {
    let flagged = 0;
    const rules = new Map<string, number>();
    const examples: string[] = [];
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const name = make();
      now += 61_000;
      const f = detector.check(name, now);
      if (f !== null) {
        flagged++;
        rules.set(f.rule, (rules.get(f.rule) ?? 0) + 1);
        if (examples.length < 3) examples.push(name);
      }
    }
    console.log(`${shape.padEnd(28)} ${String(flagged).padStart(5)}/${n} = ${(flagged / n).toFixed(4)}  ${[...rules].map(([r, c]) => `${r.replace(/^dns\.exfil-/, "")}:${c}`).join(" ")}${list ? `  e.g. ${examples.join(", ")}` : ""}`);
  }
}

// Throughput: the corpus names, cycled, through one detector (budget state included), against
// a baseline in the same run: lower-casing and splitting each name, the least any inspection does.
const names = CORPUS_NAMES.map((e) => e.name);
const rounds = 200_000;
function time(run: () => number): { ns: number; sink: number } {
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    sink += run();
    best = Math.min(best, performance.now() - t0);
  }
  return { ns: (best * 1e6) / rounds, sink };
}
const baseline = time(() => {
  let s = 0;
  for (let i = 0; i < rounds; i++) s += names[i % names.length]!.toLowerCase().split(".").length;
  return s;
});
const tld = time(() => {
  let s = 0;
  for (let i = 0; i < rounds; i++) s += getDomain(names[i % names.length]!.toLowerCase(), { allowPrivateDomains: true, extractHostname: false, validateHostname: false })?.length ?? 0;
  return s;
});
let clock = 0;
function throughput(list: readonly string[]) {
  const detector = createDnsExfilDetector();
  return time(() => {
    let s = 0;
    for (let i = 0; i < rounds; i++) s += detector.check(list[i % list.length]!, (clock += 1)) === null ? 0 : 1;
    return s;
  });
}
const full = throughput(names);
const benignOnly = throughput(CORPUS_NAMES.filter((e) => e.label === "benign").map((e) => e.name));
const attackOnly = throughput(CORPUS_NAMES.filter((e) => e.label === "attack").map((e) => e.name));
console.log(`\n-- throughput (${names.length} corpus names cycled, ${rounds} checks, best of 5)\n`);
const line = (label: string, ns: number) => console.log(`${label.padEnd(48)} ${ns.toFixed(0).padStart(6)} ns/name  ${(1e9 / ns / 1e6).toFixed(2).padStart(6)} M names/s  ${(ns / baseline.ns).toFixed(1).padStart(5)}x baseline`);
line("baseline: toLowerCase + split('.')", baseline.ns);
line("tldts getDomain alone", tld.ns);
line("detector.check, whole corpus", full.ns);
line("detector.check, benign names", benignOnly.ns);
line("detector.check, attack names (longer, flagged)", attackOnly.ns);
if (baseline.sink + tld.sink + full.sink + benignOnly.sink + attackOnly.sink === -1) console.log("");

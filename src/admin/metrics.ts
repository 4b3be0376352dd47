/**
 * Prometheus metrics for the admin `/metrics` endpoint.
 *
 * `observe` sits on the audit hot path (one call per request or tunnel), so it only walks nested
 * Maps and bumps numbers: no label strings are built per call. `render` does all the formatting,
 * in the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
 */
import type { AuditRecord } from "../core/types.ts";

export interface Metrics {
  /** Counts one audit record. Closure-bound, so `{ record: metrics.observe }` is an AuditSink. */
  observe(record: AuditRecord): void;
  /** Counts one configuration reload attempt, whatever triggered it (API, signal, file watch). */
  countReload(ok: boolean): void;
  /** Adds a gauge read at render time. Throws on an invalid or already used metric name. */
  registerGauge(name: string, help: string, read: () => number): void;
  /** The whole exposition, text format 0.0.4. */
  render(): string;
}

/** Content-Type for `render()` output (exposition format 0.0.4). */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Upper bounds in seconds, 0.5 ms .. 30 s: a cached local answer is sub-millisecond, a slow LLM
 * upstream takes tens of seconds. Anything longer (long-lived tunnels) lands in +Inf only.
 */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Audit kinds that are requests (DNS: blocked or rewritten questions); `config` and `lifecycle` records are events, not traffic. */
const REQUEST_KINDS: ReadonlySet<AuditRecord["kind"]> = new Set(["http", "connect", "dns"]);

// Prometheus data model: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*.
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

interface Cell {
  value: number;
}

interface Histogram {
  /** Per-bucket (not cumulative) counts; index BUCKETS_MS.length is the +Inf overflow. */
  readonly counts: Float64Array;
  sumSeconds: number;
  count: number;
}

interface Gauge {
  readonly name: string;
  readonly help: string;
  readonly read: () => number;
}

// Bounds in milliseconds, so observe compares against duration_ms without a division.
const BUCKETS_MS = DURATION_BUCKETS_SECONDS.map((s) => s * 1000);

const RESERVED_NAMES = new Set([
  "sluice_requests_total",
  "sluice_request_duration_seconds",
  "sluice_bytes_total",
  "sluice_config_reloads_total",
  "sluice_dlp_findings_total",
]);

export function createMetrics(): Metrics {
  // kind -> verdict -> rule -> count. Nested so the hot path never concatenates a key.
  const requests = new Map<string, Map<string, Map<string, Cell>>>();
  const durations = new Map<string, Histogram>();
  const bytes = { in: 0, out: 0 };
  const reloads = { ok: 0, error: 0 };
  const gauges: Gauge[] = [];
  // rule -> where (url, header, body, dns) -> count: every finding, not only a record's first reason.
  const findings = new Map<string, Map<string, Cell>>();

  function observe(record: AuditRecord): void {
    if (!REQUEST_KINDS.has(record.kind)) return;

    let byVerdict = requests.get(record.kind);
    if (byVerdict === undefined) {
      byVerdict = new Map();
      requests.set(record.kind, byVerdict);
    }
    let byRule = byVerdict.get(record.verdict);
    if (byRule === undefined) {
      byRule = new Map();
      byVerdict.set(record.verdict, byRule);
    }
    const cell = byRule.get(record.rule);
    if (cell === undefined) byRule.set(record.rule, { value: 1 });
    else cell.value += 1;

    const ms = record.duration_ms;
    if (ms !== undefined && Number.isFinite(ms) && ms >= 0) {
      let histogram = durations.get(record.kind);
      if (histogram === undefined) {
        histogram = { counts: new Float64Array(BUCKETS_MS.length + 1), sumSeconds: 0, count: 0 };
        durations.set(record.kind, histogram);
      }
      let i = 0;
      // Buckets are "less than or equal" upper bounds (`le`).
      while (i < BUCKETS_MS.length && ms > (BUCKETS_MS[i] as number)) i++;
      histogram.counts[i] = (histogram.counts[i] ?? 0) + 1;
      histogram.sumSeconds += ms / 1000;
      histogram.count += 1;
    }

    if (isCountable(record.bytes_in)) bytes.in += record.bytes_in;
    if (isCountable(record.bytes_out)) bytes.out += record.bytes_out;

    if (record.findings) {
      for (const f of record.findings) {
        // The location's first part only (url, header, body, dns, joined): bounded labels.
        const dot = f.location.search(/[.(]/);
        const where = dot < 0 ? f.location : f.location.slice(0, dot);
        let byWhere = findings.get(f.rule);
        if (byWhere === undefined) {
          byWhere = new Map();
          findings.set(f.rule, byWhere);
        }
        const c = byWhere.get(where);
        if (c === undefined) byWhere.set(where, { value: 1 });
        else c.value += 1;
      }
    }
  }

  function countReload(ok: boolean): void {
    if (ok) reloads.ok += 1;
    else reloads.error += 1;
  }

  function registerGauge(name: string, help: string, read: () => number): void {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name: ${JSON.stringify(name)}`);
    if (RESERVED_NAMES.has(name) || gauges.some((g) => g.name === name)) {
      throw new Error(`metric already registered: ${name}`);
    }
    gauges.push({ name, help, read });
  }

  function render(): string {
    const out: string[] = [];

    header(out, "sluice_requests_total", "Requests and tunnels decided, by kind, verdict and rule.", "counter");
    for (const [kind, byVerdict] of sorted(requests)) {
      for (const [verdict, byRule] of sorted(byVerdict)) {
        for (const [rule, cell] of sorted(byRule)) {
          out.push(
            `sluice_requests_total{kind="${escapeLabel(kind)}",verdict="${escapeLabel(verdict)}",rule="${escapeLabel(rule)}"} ${formatNumber(cell.value)}`,
          );
        }
      }
    }

    header(out, "sluice_request_duration_seconds", "Time from accepting a request or tunnel to its end.", "histogram");
    for (const [kind, histogram] of sorted(durations)) {
      const kindLabel = `kind="${escapeLabel(kind)}"`;
      let cumulative = 0;
      for (let i = 0; i < DURATION_BUCKETS_SECONDS.length; i++) {
        cumulative += histogram.counts[i] ?? 0;
        out.push(
          `sluice_request_duration_seconds_bucket{${kindLabel},le="${formatNumber(DURATION_BUCKETS_SECONDS[i] as number)}"} ${formatNumber(cumulative)}`,
        );
      }
      out.push(`sluice_request_duration_seconds_bucket{${kindLabel},le="+Inf"} ${formatNumber(histogram.count)}`);
      out.push(`sluice_request_duration_seconds_sum{${kindLabel}} ${formatNumber(histogram.sumSeconds)}`);
      out.push(`sluice_request_duration_seconds_count{${kindLabel}} ${formatNumber(histogram.count)}`);
    }

    header(out, "sluice_bytes_total", "Bytes relayed, from the audit records' bytes_in and bytes_out.", "counter");
    out.push(`sluice_bytes_total{direction="in"} ${formatNumber(bytes.in)}`);
    out.push(`sluice_bytes_total{direction="out"} ${formatNumber(bytes.out)}`);

    header(out, "sluice_dlp_findings_total", "DLP findings in decision records, by rule and where in the request (url, header, body, joined).", "counter");
    for (const [rule, byWhere] of sorted(findings)) {
      for (const [where, cell] of sorted(byWhere)) out.push(`sluice_dlp_findings_total{rule="${escapeLabel(rule)}",where="${escapeLabel(where)}"} ${formatNumber(cell.value)}`);
    }

    header(out, "sluice_config_reloads_total", "Configuration reload attempts, by result.", "counter");
    out.push(`sluice_config_reloads_total{result="ok"} ${formatNumber(reloads.ok)}`);
    out.push(`sluice_config_reloads_total{result="error"} ${formatNumber(reloads.error)}`);

    for (const gauge of gauges) {
      header(out, gauge.name, gauge.help, "gauge");
      out.push(`${gauge.name} ${formatNumber(readGauge(gauge))}`);
    }

    // The format requires the last line to end with a line feed.
    return `${out.join("\n")}\n`;
  }

  return { observe, countReload, registerGauge, render };
}

function isCountable(n: number | undefined): n is number {
  return n !== undefined && Number.isFinite(n) && n > 0;
}

/** A gauge whose reader throws reports NaN rather than failing the whole scrape. */
function readGauge(gauge: Gauge): number {
  try {
    return gauge.read();
  } catch {
    return Number.NaN;
  }
}

function header(out: string[], name: string, help: string, type: "counter" | "gauge" | "histogram"): void {
  out.push(`# HELP ${name} ${escapeHelp(help)}`);
  out.push(`# TYPE ${name} ${type}`);
}

/** Stable output order, so scrapes diff cleanly and tests can read them. */
function sorted<V>(map: Map<string, V>): [string, V][] {
  return [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Label values escape backslash, double quote and line feed (exposition format 0.0.4). */
export function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp(value: string): string {
  return value.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** Go's ParseFloat spellings for the special values, which is what Prometheus reads. */
function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Number.POSITIVE_INFINITY) return "+Inf";
  if (n === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(n);
}

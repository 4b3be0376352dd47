import { describe, expect, test } from "bun:test";
import { createMetrics, DURATION_BUCKETS_SECONDS, escapeLabel } from "../../../src/admin/metrics.ts";
import type { AuditRecord } from "../../../src/core/types.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A small parser for the text exposition format 0.0.4, enough to read our own output back. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string>; helps: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      types.set(name as string, type as string);
      continue;
    }
    if (line.startsWith("# HELP ")) {
      const rest = line.slice(7);
      const space = rest.indexOf(" ");
      helps.set(rest.slice(0, space), rest.slice(space + 1));
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparseable line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? "";
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let consumed = 0;
    for (let lm = labelRe.exec(body); lm !== null; lm = labelRe.exec(body)) {
      labels[lm[1] as string] = (lm[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      consumed = labelRe.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`bad label set: ${body}`);
    const raw = m[3] as string;
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    samples.push({ name: m[1] as string, labels, value });
  }
  return { samples, types, helps };
}

function find(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find(
    (s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

function rec(over: Partial<AuditRecord>): AuditRecord {
  return { time: "2025-01-01T00:00:00.000Z", kind: "http", agent: "anonymous", verdict: "allow", rule: "egress.allow-host", reason: "allowlisted", ...over };
}

describe("createMetrics", () => {
  test("counts requests by kind, verdict and rule", () => {
    const m = createMetrics();
    m.observe(rec({}));
    m.observe(rec({}));
    m.observe(rec({ verdict: "block", rule: "egress.deny-host", reason: "deny_listed" }));
    m.observe(rec({ kind: "connect", verdict: "block", rule: "net.private-address", reason: "blocked_address" }));
    const { samples, types } = parseExposition(m.render());
    expect(types.get("sluice_requests_total")).toBe("counter");
    expect(find(samples, "sluice_requests_total", { kind: "http", verdict: "allow", rule: "egress.allow-host" })).toBe(2);
    expect(find(samples, "sluice_requests_total", { kind: "http", verdict: "block", rule: "egress.deny-host" })).toBe(1);
    expect(find(samples, "sluice_requests_total", { kind: "connect", verdict: "block", rule: "net.private-address" })).toBe(1);
    expect(samples.filter((s) => s.name === "sluice_requests_total")).toHaveLength(3);
  });

  test("config and lifecycle records are not requests", () => {
    const m = createMetrics();
    m.observe(rec({ kind: "config", rule: "config.reload" }));
    m.observe(rec({ kind: "lifecycle", rule: "lifecycle.start", duration_ms: 5, bytes_in: 10 }));
    const { samples } = parseExposition(m.render());
    expect(samples.filter((s) => s.name === "sluice_requests_total")).toHaveLength(0);
    expect(samples.filter((s) => s.name.startsWith("sluice_request_duration_seconds"))).toHaveLength(0);
    expect(find(samples, "sluice_bytes_total", { direction: "in" })).toBe(0);
  });

  test("histogram buckets are cumulative, with +Inf, sum and count", () => {
    const m = createMetrics();
    // 0.5 ms sits exactly on the first bound (le is inclusive); 40 s overflows every bound.
    for (const ms of [0.2, 0.5, 3, 3, 120, 40_000]) m.observe(rec({ duration_ms: ms }));
    m.observe(rec({})); // no duration: counted as a request, not in the histogram
    m.observe(rec({ duration_ms: Number.NaN }));
    const { samples, types } = parseExposition(m.render());
    expect(types.get("sluice_request_duration_seconds")).toBe("histogram");
    const bucket = (le: string) => find(samples, "sluice_request_duration_seconds_bucket", { kind: "http", le });
    expect(bucket("0.0005")).toBe(2);
    expect(bucket("0.001")).toBe(2);
    expect(bucket("0.0025")).toBe(2);
    expect(bucket("0.005")).toBe(4);
    expect(bucket("0.1")).toBe(4);
    expect(bucket("0.25")).toBe(5);
    expect(bucket("30")).toBe(5);
    expect(bucket("+Inf")).toBe(6);
    expect(find(samples, "sluice_request_duration_seconds_count", { kind: "http" })).toBe(6);
    expect(find(samples, "sluice_request_duration_seconds_sum", { kind: "http" })).toBeCloseTo((0.2 + 0.5 + 3 + 3 + 120 + 40_000) / 1000, 9);
    const bounds = samples.filter((s) => s.name === "sluice_request_duration_seconds_bucket").map((s) => s.labels.le);
    expect(bounds).toEqual([...DURATION_BUCKETS_SECONDS.map(String), "+Inf"]);
    // Cumulative counts never decrease.
    const values = samples.filter((s) => s.name === "sluice_request_duration_seconds_bucket").map((s) => s.value);
    expect(values).toEqual([...values].sort((a, b) => a - b));
  });

  test("bytes by direction", () => {
    const m = createMetrics();
    m.observe(rec({ bytes_in: 100, bytes_out: 7 }));
    m.observe(rec({ kind: "connect", bytes_in: 1, bytes_out: 3 }));
    m.observe(rec({ bytes_in: -5 }));
    const { samples } = parseExposition(m.render());
    expect(find(samples, "sluice_bytes_total", { direction: "in" })).toBe(101);
    expect(find(samples, "sluice_bytes_total", { direction: "out" })).toBe(10);
  });

  test("DLP findings by rule and where in the request, every finding of a record", () => {
    const m = createMetrics();
    m.observe(
      rec({
        verdict: "block",
        rule: "dlp.github-token",
        findings: [
          { rule: "dlp.github-token", location: "body.json.messages[0].content", preview: "ghp_…9N", via: [] },
          { rule: "dlp.github-token", location: "header.authorization", preview: "ghp_…9N", via: [] },
          { rule: "dlp.aws-access-key-id", location: "joined(url.query.a..url.query.b)", preview: "AKIA…MT", via: [] },
        ],
      }),
    );
    m.observe(rec({ findings: [{ rule: "dlp.github-token", location: "body.text", preview: "ghp_…aa", via: ["base64"] }] }));
    const { samples, types } = parseExposition(m.render());
    expect(types.get("sluice_dlp_findings_total")).toBe("counter");
    expect(find(samples, "sluice_dlp_findings_total", { rule: "dlp.github-token", where: "body" })).toBe(2);
    expect(find(samples, "sluice_dlp_findings_total", { rule: "dlp.github-token", where: "header" })).toBe(1);
    expect(find(samples, "sluice_dlp_findings_total", { rule: "dlp.aws-access-key-id", where: "joined" })).toBe(1);
  });

  test("config reloads by result", () => {
    const m = createMetrics();
    m.countReload(true);
    m.countReload(false);
    m.countReload(false);
    const { samples } = parseExposition(m.render());
    expect(find(samples, "sluice_config_reloads_total", { result: "ok" })).toBe(1);
    expect(find(samples, "sluice_config_reloads_total", { result: "error" })).toBe(2);
  });

  test("gauges are read at render time", () => {
    const m = createMetrics();
    let tunnels = 3;
    m.registerGauge("sluice_open_tunnels", "Open CONNECT tunnels.", () => tunnels);
    m.registerGauge("sluice_killswitch", "1 when the kill switch is on.", () => 0);
    m.registerGauge("sluice_broken", "A reader that throws.", () => {
      throw new Error("boom");
    });
    expect(find(parseExposition(m.render()).samples, "sluice_open_tunnels", {})).toBe(3);
    tunnels = 5;
    const { samples, types, helps } = parseExposition(m.render());
    expect(find(samples, "sluice_open_tunnels", {})).toBe(5);
    expect(find(samples, "sluice_killswitch", {})).toBe(0);
    expect(find(samples, "sluice_broken", {})).toBeNaN();
    expect(types.get("sluice_open_tunnels")).toBe("gauge");
    expect(helps.get("sluice_open_tunnels")).toBe("Open CONNECT tunnels.");
  });

  test("registerGauge refuses bad and duplicate names", () => {
    const m = createMetrics();
    m.registerGauge("sluice_open_connections", "x", () => 1);
    expect(() => m.registerGauge("sluice_open_connections", "x", () => 1)).toThrow(/already registered/);
    expect(() => m.registerGauge("sluice_requests_total", "x", () => 1)).toThrow(/already registered/);
    expect(() => m.registerGauge("bad-name", "x", () => 1)).toThrow(/invalid metric name/);
    expect(() => m.registerGauge("", "x", () => 1)).toThrow(/invalid metric name/);
  });

  test("label values are escaped and survive a round trip", () => {
    const m = createMetrics();
    const rule = 'odd"rule\\with\nnewline';
    m.observe(rec({ rule }));
    const text = m.render();
    expect(text).toContain(`rule="odd\\"rule\\\\with\\nnewline"`);
    // Every sample stays on its own line.
    expect(text.split("\n").filter((l) => l.startsWith("sluice_requests_total"))).toHaveLength(1);
    expect(find(parseExposition(text).samples, "sluice_requests_total", { kind: "http", verdict: "allow", rule })).toBe(1);
    expect(escapeLabel('a"b')).toBe('a\\"b');
  });

  test("every metric family has HELP and TYPE before its samples", () => {
    const m = createMetrics();
    m.registerGauge("sluice_open_tunnels", "t", () => 0);
    m.observe(rec({ duration_ms: 1 }));
    const lines = m.render().trimEnd().split("\n");
    const seen = new Set<string>();
    for (const line of lines) {
      if (line.startsWith("# TYPE ")) seen.add((line.split(" ")[2]) as string);
      else if (!line.startsWith("#")) {
        const name = (/^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line) as RegExpExecArray)[0];
        const family = name.replace(/_(bucket|sum|count)$/, "");
        expect(seen.has(name) || seen.has(family)).toBe(true);
      }
    }
  });

  test("observe works detached, as an AuditSink record method", () => {
    const m = createMetrics();
    const sink = { record: m.observe };
    sink.record(rec({}));
    expect(find(parseExposition(m.render()).samples, "sluice_requests_total", { kind: "http", verdict: "allow", rule: "egress.allow-host" })).toBe(1);
  });
});

/**
 * MCP messages judged, without sockets or processes (mcp/session.ts relays them): DLP on what
 * the client sends a server (tool arguments above all), prompt injection and DLP on what the
 * server sends back (results, errors, tool descriptions, instructions, its own requests). Pure.
 */
import type { Decision, Fragment, Reason } from "../core/types.ts";
import type { DlpSettings, InjectionSettings } from "../policy/policy.ts";
import { decideFindings, type ContentVerdict } from "./content.ts";
import { bodyFragments, joinedFragments } from "./fragments.ts";
import type { SegmentIn } from "../scan/injection/engine.ts";
import { judgeArguments, type ArgRules } from "../scan/arg-rules.ts";
import { asFindings, responseSegments } from "./response.ts";

/** `mcp.<method>` as written in locations (a method that is not a plain name is quoted). */
export function mcpRoot(method: string): string {
  return /^[A-Za-z0-9_$/-]{1,64}$/.test(method) ? `mcp.${method}` : `mcp[${JSON.stringify(method.slice(0, 64))}]`;
}

/** A JSON value's fragments (body-fragments' walk: bounded depth, long numbers as written) at `root`. */
function jsonFragments(root: string, value: unknown): Fragment[] {
  const parsed = bodyFragments("application/json", Buffer.from(JSON.stringify(value) ?? "null", "utf8"));
  const rooted = parsed.fragments.map((f) => ({
    ...f,
    location: f.location.startsWith("body.json-key") ? `${root}${f.location.slice("body.json-key".length)}.(key)` : f.location.startsWith("body.json") ? `${root}${f.location.slice("body.json".length)}` : `${root}.text`,
  }));
  return [...rooted, ...joinedFragments(rooted)];
}

/** DLP over a value a client sends (`params` of a request or notification, a result it returns): findings and what they decide. */
export function dlpOver(root: string, value: unknown, dlp: DlpSettings, framing: { readonly method?: string; readonly id?: string } = {}): ContentVerdict | null {
  // The JSON-RPC framing (method, id) is the sender's text too: scanned at mcp.method / mcp.id.
  const extra: Fragment[] = [];
  if (framing.method !== undefined) extra.push({ location: "mcp.method", text: framing.method });
  if (framing.id !== undefined) extra.push({ location: "mcp.id", text: framing.id });
  if (value === undefined && extra.length === 0) return null;
  return decideFindings(dlp.engine.scan([...(value === undefined ? [] : jsonFragments(root, value)), ...extra]));
}

/**
 * Prompt injection over a value a server sends the client (a result, an error, its own request),
 * read as a JSON document: every string, keys split as names. Null when nothing was found;
 * otherwise a decision: block at the threshold (strip cannot apply to a message: it blocks too;
 * warn records), allow with the findings under it.
 */
export function injectionOver(root: string, value: unknown, inj: InjectionSettings, audit: boolean, extra: readonly SegmentIn[] = [], escaped?: ReadonlyMap<string, number>): Decision | null {
  if (value === undefined) return null;
  const segments = [...responseSegments("json", JSON.stringify(value) ?? "null", escaped).map((s) => ({ ...s, location: `${root}${s.location.slice("body.json".length)}` })), ...extra];
  const r = inj.engine.scan(segments);
  if (r.findings.length === 0) return null;
  const over = r.score >= inj.engine.threshold;
  const top = [...r.findings].sort((a, b) => b.weight - a.weight)[0]!;
  const rules = [...new Set(r.findings.map((f) => f.rule))];
  const reason: Reason = { rule: top.rule, code: "injection_detected", detail: `injection score ${r.score}${over ? " >=" : " <"} threshold ${inj.engine.threshold} in ${root}: ${rules.join(", ")}` };
  const findings = asFindings(r.findings);
  if (!over) return { verdict: "allow", reasons: [reason], findings };
  if (inj.action === "warn") return { verdict: "warn", reasons: [reason], findings };
  if (audit) return { verdict: "allow", wouldBlock: true, reasons: [reason], findings };
  return { verdict: "block", reasons: [reason], findings };
}

/**
 * What a server sends, both ways judged: injection (for the model) and DLP (secrets it hands
 * back). `escaped`: the strings the message as received wrote with escaped letters (response.ts
 * escapedStrings), an obfuscation the parsed value no longer shows.
 */
export function judgeFromServer(root: string, value: unknown, dlp: DlpSettings | null, inj: InjectionSettings | null, audit: boolean, extra: readonly SegmentIn[] = [], escaped?: ReadonlyMap<string, number>): Decision | null {
  const injection = inj ? injectionOver(root, value, inj, audit, extra, escaped) : null;
  const secrets = dlp ? contentDecision(dlpOver(root, value, dlp), audit) : null;
  return strictest(injection, secrets);
}

/** A DLP verdict as the decision to enact: redact cannot apply to a relayed message (it blocks); audit mode blocks nothing. */
export function contentDecision(v: ContentVerdict | null, audit: boolean): Decision | null {
  if (v === null) return null;
  const d = v.decision;
  const blocks = d.verdict === "block" || d.verdict === "redact";
  if (!blocks) return d;
  const reasons = d.verdict === "redact" ? d.reasons.map((r, i) => (i === 0 ? { ...r, detail: `${r.detail}; set to redact, but an MCP message is not rewritten` } : r)) : d.reasons;
  return audit ? { ...d, verdict: "allow", wouldBlock: true, reasons } : { ...d, verdict: "block", reasons };
}

const RANK = { allow: 0, warn: 1, redact: 2, block: 3 } as const;

/** The stricter of two decisions (null: none), with both reasons and findings. */
export function strictest(a: Decision | null, b: Decision | null): Decision | null {
  if (a === null) return b;
  if (b === null) return a;
  const rank = (d: Decision) => RANK[d.verdict] + (d.wouldBlock ? 1.5 : 0);
  const [s, o] = rank(b) > rank(a) ? [b, a] : [a, b];
  return { ...s, reasons: [...s.reasons, ...o.reasons], findings: [...(s.findings ?? []), ...(o.findings ?? [])], ...(a.wouldBlock || b.wouldBlock ? { wouldBlock: true } : {}) };
}


/** Method families of the Model Context Protocol (spec, "Base Protocol" and its features). */
const MCP_METHOD = /^(?:initialize|ping|(?:tools|resources|prompts|completion|logging|sampling|elicitation|roots|notifications)\/[A-Za-z/_]{1,64})$/;

/**
 * The MCP method a request body carries (one JSON-RPC 2.0 message, or a batch), or null: how an
 * MCP session over HTTP to a server nobody listed (shadow MCP) is recognised. Only JSON is read.
 */
export function mcpMethodIn(body: Uint8Array): string | null {
  let i = 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0xef || body[i] === 0xbb || body[i] === 0xbf)) i++;
  if (body[i] !== 0x7b && body[i] !== 0x5b) return null;
  // Most JSON bodies are not JSON-RPC: not parsed a second time (DLP parsed them) unless they name
  // `jsonrpc`, or hold a \u escape that could spell it.
  const raw = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (!raw.includes("jsonrpc") && !raw.includes("\\u")) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8").replace(/^\uFEFF/, ""));
  } catch {
    return null;
  }
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    if (typeof m === "object" && m !== null && (m as Record<string, unknown>).jsonrpc === "2.0") {
      const method = (m as Record<string, unknown>).method;
      if (typeof method === "string" && MCP_METHOD.test(method)) return method;
    }
  }
  return null;
}

/** `sshPrivateKey`, `ssh_private_key` -> `ssh private key`. */
function splitName(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2").replace(/[_\-.]+/g, " ").toLowerCase().trim();
}

/**
 * A tool definition's parameter names as words, each on a line after a `property` label: a
 * parameter built to receive a secret (`ssh_private_key`, `conversationHistory`) reads as what it
 * asks for (rules/mcp/secret-parameters.yaml). Their descriptions are read where they are, in the
 * schema. One segment per tool, bounded: the first 256 names, 8 levels deep.
 */
export function propertySegments(root: string, tool: unknown): SegmentIn[] {
  const lines: string[] = [];
  const walk = (schema: unknown, depth: number) => {
    if (lines.length >= 256 || depth > 8 || schema === null || typeof schema !== "object") return;
    const props = (schema as Record<string, unknown>).properties;
    if (props === null || typeof props !== "object") return;
    for (const [k, v] of Object.entries(props as Record<string, unknown>)) {
      lines.push(`property ${splitName(k)}`);
      walk(v, depth + 1);
    }
  };
  if (tool !== null && typeof tool === "object") walk((tool as Record<string, unknown>).inputSchema, 0);
  return lines.length === 0 ? [] : [{ location: `${root}.inputSchema.properties.(names)`, carrier: "text", text: lines.join("\n") }];
}

/**
 * tools/call arguments against rules/mcp-args, after shell de-obfuscation (scan/shell.ts): the
 * weights of the rules found add up; at 50 the call is refused (action block) or recorded (warn).
 */
export function argumentsDecision(root: string, args: unknown, rules: ArgRules, action: "block" | "warn", audit: boolean): Decision | null {
  const found = judgeArguments(rules, args);
  if (found.length === 0) return null;
  const byRule = new Map<string, number>();
  for (const f of found) byRule.set(f.rule, Math.max(byRule.get(f.rule) ?? 0, f.weight ?? 50));
  const score = [...byRule.values()].reduce((a, b) => a + b, 0);
  const top = [...found].sort((a, b) => (b.weight ?? 50) - (a.weight ?? 50))[0]!;
  const findings = found.slice(0, 16).map((f) => ({ rule: f.rule, location: `${root}.arguments${f.path ? `.${f.path}` : ""}`, preview: f.preview, via: f.reading > 0 ? ["shell"] : [] }));
  const reason = { rule: top.rule, code: "dangerous_arguments" as const, detail: `arguments score ${score} (${[...byRule.keys()].join(", ")})${score >= 50 ? "" : " < 50"}` };
  if (score < 50 || action === "warn") return { verdict: score < 50 ? "allow" : "warn", reasons: [reason], findings };
  return audit ? { verdict: "allow", wouldBlock: true, reasons: [reason], findings } : { verdict: "block", reasons: [reason], findings };
}

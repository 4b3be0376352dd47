/**
 * Renders a Helm chart with its default values, for the small part of Helm's template language
 * the generated chart uses, and throws on anything else (so the chart cannot drift into syntax
 * this renderer would get wrong). Supported, with Go text/template and Helm semantics:
 *
 *   {{ PIPELINE }}  {{- ... -}} (trim markers)   {{ if PIPELINE }} ... {{ else }} ... {{ end }}
 *   {{ range PIPELINE }} ... {{ end }} over a list, `.` the element, `$` the top
 *   operands: .Values.a.b  .Release.Namespace  .Release.Name  .Chart.Name  .  .field  $  $.a.b
 *             integers, "strings"
 *   functions: toYaml, quote, indent N, nindent N, b64enc, sha256sum (a pipe passes the value
 *             as the last argument)
 *
 * Values are read as YAML 1.1, as Helm reads them. Numbers print as Go prints Helm's float64
 * values only while that is plain digits (below 1e6, integers); anything else throws.
 */
import { createHash } from "node:crypto";
import { parse, parseAllDocuments, stringify } from "yaml";

type Node =
  | { readonly t: "text"; readonly text: string }
  | { readonly t: "print"; readonly pipe: string }
  | { readonly t: "if"; readonly pipe: string; readonly then: Node[]; readonly else: Node[] }
  | { readonly t: "range"; readonly pipe: string; readonly body: Node[] };

interface Token {
  readonly text: string;
  /** An action's content, trim markers removed; undefined for text. */
  readonly action?: string;
}

/** Splits a template into text and actions, applying the trim markers to the text around them. */
function tokenize(src: string): Token[] {
  const out: { text: string; action?: string }[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf("{{", i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, "");
    if (open < 0) {
      out.push({ text });
      break;
    }
    const close = src.indexOf("}}", open);
    if (close < 0) throw new Error(`unclosed {{ at offset ${open}`);
    let inner = src.slice(open + 2, close);
    if (/^-\s/.test(inner)) {
      text = text.replace(/\s+$/, "");
      inner = inner.slice(1);
    } else if (inner.startsWith("-")) throw new Error(`"{{-" must be followed by a space: {{${inner}}}`);
    trimNext = /\s-$/.test(inner);
    if (trimNext) inner = inner.slice(0, -1);
    out.push({ text });
    out.push({ text: "", action: inner.trim() });
    i = close + 2;
  }
  return out;
}

function parseNodes(tokens: Token[], at: { i: number }, until: readonly string[]): { nodes: Node[]; end: string } {
  const nodes: Node[] = [];
  while (at.i < tokens.length) {
    const tok = tokens[at.i++]!;
    if (tok.action === undefined) {
      if (tok.text) nodes.push({ t: "text", text: tok.text });
      continue;
    }
    const a = tok.action;
    if (a === "end" || a === "else") {
      if (!until.includes(a)) throw new Error(`unexpected {{ ${a} }}`);
      return { nodes, end: a };
    }
    const keyword = /^(\w+)\s+([\s\S]+)$/.exec(a);
    if (keyword && keyword[1] === "if") {
      const then = parseNodes(tokens, at, ["else", "end"]);
      const otherwise = then.end === "else" ? parseNodes(tokens, at, ["end"]).nodes : [];
      nodes.push({ t: "if", pipe: keyword[2]!, then: then.nodes, else: otherwise });
    } else if (keyword && keyword[1] === "range") {
      if (/:=/.test(keyword[2]!)) throw new Error(`range with variables is not supported: {{ ${a} }}`);
      nodes.push({ t: "range", pipe: keyword[2]!, body: parseNodes(tokens, at, ["end"]).nodes });
    } else if (keyword && ["with", "define", "template", "block", "else", "break", "continue"].includes(keyword[1]!)) {
      throw new Error(`{{ ${keyword[1]} }} is not supported`);
    } else {
      nodes.push({ t: "print", pipe: a });
    }
  }
  if (until.length > 0) throw new Error(`missing {{ end }}`);
  return { nodes, end: "" };
}

interface Scope {
  readonly dot: unknown;
  readonly top: unknown;
}

const FUNCTIONS: Readonly<Record<string, (...args: unknown[]) => unknown>> = {
  toYaml: (v) => {
    if (v === undefined) throw new Error("toYaml of a missing value");
    return stringify(v, { version: "1.1", aliasDuplicateObjects: false, lineWidth: 0 }).replace(/\n$/, "");
  },
  quote: (...args) => args.map((a) => goQuote(printable(a))).join(" "),
  indent: (n, s) => indent(int(n), str(s)),
  nindent: (n, s) => `\n${indent(int(n), str(s))}`,
  b64enc: (s) => Buffer.from(str(s)).toString("base64"),
  sha256sum: (s) => createHash("sha256").update(str(s)).digest("hex"),
};

const indent = (n: number, s: string) => " ".repeat(n) + s.replaceAll("\n", `\n${" ".repeat(n)}`);

function int(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new Error(`expected an integer, got ${JSON.stringify(v)}`);
  return v;
}

function str(v: unknown): string {
  if (typeof v !== "string") throw new Error(`expected a string, got ${JSON.stringify(v)}`);
  return v;
}

/** Go's %q for printable ASCII (what the chart quotes); anything else would need Go's escaping rules. */
function goQuote(s: string): string {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Error(`quote of ${JSON.stringify(s)}: only printable ASCII is supported`);
  return `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** How Go's text/template prints a value from Helm's values (numbers are float64 there). */
function printable(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return String(v);
  if (typeof v === "number") {
    // Go's %v of a float64 switches to 1e+06 style from a million on.
    if (!Number.isInteger(v) || Math.abs(v) >= 1e6) throw new Error(`printing ${v}: Go would print it otherwise`);
    return String(v);
  }
  throw new Error(`printing ${v === undefined ? "a missing value" : JSON.stringify(v)}: only strings, numbers and booleans print`);
}

function operand(token: string, scope: Scope): unknown {
  if (/^-?\d+$/.test(token)) return Number(token);
  if (/^"([^"\\]|\\.)*"$/.test(token)) return JSON.parse(token) as string;
  let base: unknown;
  let path: string;
  if (token === "$" || token.startsWith("$.")) {
    base = scope.top;
    path = token.slice(1);
  } else if (token.startsWith(".")) {
    base = scope.dot;
    path = token;
  } else {
    throw new Error(`not supported: ${token}`);
  }
  if (path === "" || path === ".") return base;
  for (const key of path.slice(1).split(".")) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`not a field name: ${key} in ${token}`);
    base = base !== null && typeof base === "object" && !Array.isArray(base) ? (base as Record<string, unknown>)[key] : undefined;
  }
  return base;
}

function evaluate(pipe: string, scope: Scope): unknown {
  if (/:=|\(|\)/.test(pipe)) throw new Error(`not supported: ${pipe}`);
  let value: unknown;
  pipe.split("|").forEach((command, i) => {
    const words = command.trim().match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
    if (words.length === 0) throw new Error(`empty command in ${pipe}`);
    const [head, ...rest] = words as [string, ...string[]];
    const fn = FUNCTIONS[head];
    if (fn === undefined) {
      if (/^[a-zA-Z]/.test(head)) throw new Error(`function ${head} is not supported`);
      if (i > 0 || rest.length > 0) throw new Error(`not supported: ${command.trim()}`);
      value = operand(head, scope);
      return;
    }
    const args = rest.map((w) => operand(w, scope));
    value = fn(...(i === 0 ? args : [...args, value]));
  });
  return value;
}

/** Go template truth: false, 0, nil, "" and empty lists and maps are false. */
function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

function run(nodes: readonly Node[], scope: Scope): string {
  let out = "";
  for (const n of nodes) {
    if (n.t === "text") out += n.text;
    else if (n.t === "print") out += printable(evaluate(n.pipe, scope));
    else if (n.t === "if") out += run(truthy(evaluate(n.pipe, scope)) ? n.then : n.else, scope);
    else {
      const list = evaluate(n.pipe, scope);
      if (list === undefined || list === null) continue;
      if (!Array.isArray(list)) throw new Error(`range over a ${typeof list}: only lists are supported`);
      for (const item of list) out += run(n.body, { dot: item, top: scope.top });
    }
  }
  return out;
}

/** One template rendered against `top` (the `.` of a chart: Values, Release, Chart). */
export function renderTemplate(src: string, top: unknown): string {
  return run(parseNodes(tokenize(src), { i: 0 }, []).nodes, { dot: top, top });
}

/**
 * The objects `helm template` would print for the chart in `files` (path -> text) with its
 * default values, in template file order.
 */
export function renderChart(files: ReadonlyMap<string, string>, release = { Name: "sluice", Namespace: "default" }): Record<string, unknown>[] {
  const chart = parse(files.get("Chart.yaml") ?? "", { version: "1.1" }) as { apiVersion?: string; name?: string; version?: string } | null;
  if (chart?.apiVersion !== "v2" || !chart.name || !chart.version) throw new Error("Chart.yaml needs apiVersion v2, name and version");
  const Values = parse(files.get("values.yaml") ?? "", { version: "1.1" }) ?? {};
  const top = { Values, Release: release, Chart: { Name: chart.name, Version: chart.version } };
  const objects: Record<string, unknown>[] = [];
  for (const path of [...files.keys()].filter((p) => p.startsWith("templates/")).sort()) {
    if (!path.endsWith(".yaml")) throw new Error(`${path}: only .yaml templates are supported (no helpers, no NOTES.txt)`);
    let text: string;
    try {
      text = renderTemplate(files.get(path)!, top);
    } catch (e) {
      throw new Error(`${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    for (const doc of parseAllDocuments(text, { version: "1.1" })) {
      if (doc.errors.length > 0) throw new Error(`${path} renders invalid YAML: ${doc.errors[0]!.message}`);
      const o = doc.toJS() as Record<string, unknown> | null;
      if (o !== null) objects.push(o);
    }
  }
  return objects;
}

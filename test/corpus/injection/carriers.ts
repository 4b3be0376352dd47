/**
 * Carriers: the response bodies an agent receives (web pages, API JSON, READMEs, mail, feeds,
 * tool output, chat streams), read from data/carriers/*.yaml. A template has one `{{payload}}`
 * slot; HTML templates also a `{{head}}` slot (the page's meta description). Other `{{...}}`
 * slots are filled from the seeded PRNG: dates, ids, numbers and `{{pick:a|b|c}}`.
 */
import { escAttr, escCdata, escCsv, escXml, jsonUnicode } from "./markup.ts";
import type { Rng } from "./rng.ts";
import { ALNUM, HEX } from "./rng.ts";
import type { Markup, SlotInfo } from "./techniques.ts";

export const CARRIERS = ["html", "json", "markdown", "text", "email", "sse", "xml"] as const;
export type Carrier = (typeof CARRIERS)[number];

export interface Template {
  readonly id: string;
  readonly carrier: Carrier;
  readonly contentType: string;
  /** Language of the template's own text. */
  readonly lang: string;
  /** What the payload slot holds. */
  readonly markup: Markup;
  /** `short` slots (snippets, cells, alerts) take only short benign texts. */
  readonly slot: "long" | "short";
  /** The page's own meta description, for `{{head}}`. */
  readonly description?: string;
  /** How the slot escapes what goes in: XML text, a CDATA section, a quoted CSV field. */
  readonly escape?: "xml" | "cdata" | "csv";
  /** A text template (HTML, markdown, mail, XML, plain text). */
  readonly body?: string;
  /** A JSON template: the document, `{{payload}}` inside one string value. */
  readonly json?: unknown;
  readonly indent?: number;
  /** A chat stream: the assistant's text is `before + payload + after`, cut into deltas. */
  readonly sse?: "openai" | "anthropic" | "generic";
  readonly before?: string;
  readonly after?: string;
  readonly model?: string;
}

export const slotInfo = (t: Template): SlotInfo => ({ markup: t.markup, head: t.body?.includes("{{head}}") ?? false, json: t.json !== undefined });

const SLOT = /\{\{(\w+)(?::([^}]*))?\}\}/g;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const pad = (n: number) => String(n).padStart(2, "0");

/** One sample's slot values: a base time all its dates stay near, and the two payload slots. */
class Filler {
  private readonly base: number;
  constructor(
    private readonly rng: Rng,
    private readonly vars: Record<string, string>,
  ) {
    // 2025-06-01 .. 2026-11-30, whole seconds.
    this.base = Date.UTC(2025, 5, 1) + rng.int(548 * 86400) * 1000;
  }

  private time(): Date {
    return new Date(this.base - this.rng.int(72 * 3600) * 1000);
  }

  private readonly memo = new Map<string, string>();

  /** `{{name:arg}}`; `{{name:arg#key}}` is drawn once per sample and repeated wherever `key` recurs. */
  value(name: string, arg: string | undefined): string {
    const hash = arg?.lastIndexOf("#") ?? -1;
    if (arg !== undefined && hash >= 0) {
      const key = `${name}:${arg}`;
      if (!this.memo.has(key)) this.memo.set(key, this.draw(name, arg.slice(0, hash) || undefined));
      return this.memo.get(key)!;
    }
    return this.draw(name, arg);
  }

  private draw(name: string, arg: string | undefined): string {
    const rng = this.rng;
    if (name in this.vars) return this.vars[name]!;
    switch (name) {
      case "iso":
        return this.time().toISOString().replace(/\.\d{3}Z$/, "Z");
      case "date":
        return this.time().toISOString().slice(0, 10);
      case "rfc2822": {
        const d = this.time();
        return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
      }
      case "unix":
        return String(Math.floor(this.time().getTime() / 1000));
      case "num": {
        const [lo, hi] = (arg ?? "0-999").split("-").map(Number);
        return String(rng.range(lo!, hi!));
      }
      case "hex":
        return rng.chars(HEX, Number(arg ?? 8));
      case "alnum":
        return rng.chars(ALNUM, Number(arg ?? 12));
      case "uuid": {
        const h = rng.chars(HEX, 32);
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${rng.pick(["8", "9", "a", "b"])}${h.slice(17, 20)}-${h.slice(20)}`;
      }
      case "pick":
        return rng.pick((arg ?? "").split("|"));
      default:
        throw new Error(`unknown template slot {{${name}}}`);
    }
  }

  fill(s: string): string {
    return s.replace(SLOT, (_, name: string, arg: string | undefined) => this.value(name, arg));
  }
}

const NUMERIC = /^\{\{(num|unix)(?::[^}]*)?\}\}$/;

/** Marks the payload's place in a JSON document when it is written as \u escapes after stringify. */
const MARK = "@@INJ-SLOT@@";

function fillJson(v: unknown, f: Filler): unknown {
  if (typeof v === "string") return NUMERIC.test(v) ? Number(f.fill(v)) : f.fill(v);
  if (Array.isArray(v)) return v.map((x) => fillJson(x, f));
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fillJson(x, f)]));
  return v;
}

/** Cuts a text into stream deltas: a word or two each; long unbroken runs (CJK, encoded blobs) 2 to 6 characters. */
export function deltas(text: string, rng: Rng): string[] {
  const pieces: string[] = [];
  for (const w of text.match(/\s*\S+|\s+$/g) ?? [text]) {
    const cps = Array.from(w);
    if (cps.length <= 12) {
      pieces.push(w);
      continue;
    }
    for (let i = 0; i < cps.length; ) {
      const n = 2 + rng.int(5);
      pieces.push(cps.slice(i, i + n).join(""));
      i += n;
    }
  }
  const out: string[] = [];
  for (let i = 0; i < pieces.length; ) {
    const n = 1 + rng.int(2);
    out.push(pieces.slice(i, i + n).join(""));
    i += n;
  }
  if (out.join("") !== text) throw new Error("stream deltas do not rejoin to the text");
  return out;
}

function renderSse(t: Template, text: string, f: Filler, rng: Rng): string {
  const parts = deltas(text, rng);
  const model = f.fill(t.model ?? "assistant-1");
  const ev = (data: unknown, event?: string) => `${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(data)}\n\n`;
  switch (t.sse) {
    case "openai": {
      const head = { id: `chatcmpl-${rng.chars(ALNUM, 24)}`, object: "chat.completion.chunk", created: Number(f.value("unix", undefined)), model, system_fingerprint: `fp_${rng.chars(HEX, 10)}` };
      const chunk = (delta: unknown, finish: string | null) => ev({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
      return [chunk({ role: "assistant", content: "" }, null), ...parts.map((p) => chunk({ content: p }, null)), chunk({}, "stop"), "data: [DONE]\n\n"].join("");
    }
    case "anthropic": {
      const id = `msg_01${rng.chars(ALNUM, 22)}`;
      return [
        ev({ type: "message_start", message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 200 + rng.int(4000), output_tokens: 1 } } }, "message_start"),
        ev({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }, "content_block_start"),
        ev({ type: "ping" }, "ping"),
        ...parts.map((p) => ev({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: p } }, "content_block_delta")),
        ev({ type: "content_block_stop", index: 0 }, "content_block_stop"),
        ev({ type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: parts.length + rng.int(20) } }, "message_delta"),
        ev({ type: "message_stop" }, "message_stop"),
      ].join("");
    }
    default: {
      const conv = rng.chars(HEX, 12);
      return [
        `retry: 3000\n\n`,
        ...parts.map((p, i) => `id: ${conv}-${i + 1}\nevent: token\ndata: ${JSON.stringify({ token: p })}\n\n`),
        `id: ${conv}-${parts.length + 1}\nevent: done\ndata: ${JSON.stringify({ finish_reason: "stop", tokens: parts.length })}\n\n`,
      ].join("");
    }
  }
}

export interface RenderInput {
  /** What goes in the slot, in the slot's markup, before the carrier's own escaping. */
  readonly fragment: string;
  /** A `<head>` element replacing the template's meta description. */
  readonly head?: string;
  readonly jsonEscape?: boolean;
}

export function render(t: Template, input: RenderInput, rng: Rng): string {
  const headDefault = t.description !== undefined ? `<meta name="description" content="${escAttr(t.description)}">` : "";
  if (t.json !== undefined) {
    const f = new Filler(rng, { payload: input.jsonEscape ? MARK : input.fragment, head: "" });
    const text = JSON.stringify(fillJson(t.json, f), null, t.indent ?? 0);
    return input.jsonEscape ? text.replace(MARK, () => jsonUnicode(input.fragment)) : text;
  }
  if (t.sse !== undefined) {
    const f = new Filler(rng, { payload: "", head: "" });
    return renderSse(t, `${f.fill(t.before ?? "")}${input.fragment}${f.fill(t.after ?? "")}`, f, rng);
  }
  const fragment = t.escape === "xml" ? escXml(input.fragment) : t.escape === "cdata" ? escCdata(input.fragment) : t.escape === "csv" ? escCsv(input.fragment) : input.fragment;
  const f = new Filler(rng, { payload: fragment, head: input.head ?? headDefault });
  return f.fill(t.body!);
}

/** Refuses a malformed template at load, naming it. */
export function checkTemplate(t: Template): void {
  const bad = (why: string) => {
    throw new Error(`carrier template ${t.id ?? "?"}: ${why}`);
  };
  if (!t.id || !(CARRIERS as readonly string[]).includes(t.carrier)) bad(`carrier must be one of ${CARRIERS.join(", ")}`);
  if (!t.contentType || !t.lang) bad("contentType and lang are required");
  if (!["html", "markdown", "text"].includes(t.markup)) bad("markup must be html, markdown or text");
  if (t.slot !== "long" && t.slot !== "short") bad("slot must be long or short");
  const kinds = [t.body, t.json, t.sse].filter((x) => x !== undefined).length;
  if (kinds !== 1) bad("exactly one of body, json, sse");
  if (t.body !== undefined) {
    if (t.body.split("{{payload}}").length !== 2) bad("body needs exactly one {{payload}}");
    if (t.body.includes("{{head}}") && t.description === undefined) bad("{{head}} needs a description");
  }
  if (t.json !== undefined && JSON.stringify(t.json).split("{{payload}}").length !== 2) bad("json needs exactly one {{payload}}");
}

/**
 * Invariants of the prompt-injection corpus loader (test/corpus/injection): enough samples of
 * each label, every attack category, technique, language and carrier present, unique ids,
 * bodies that parse as their carrier says and hold their payload, and the same corpus for the
 * same seed. Detection quality is measured elsewhere; this only holds the data's shape.
 */
import { describe, expect, test } from "bun:test";
import {
  BENIGN_KINDS,
  CARRIERS,
  CATEGORIES,
  CORPUS_SETS,
  DEFAULT_SEED,
  EXTRA_BENIGN_LANGUAGES,
  injectionCorpus,
  LANGUAGES,
  TECHNIQUES,
  type InjectionSample,
} from "../../corpus/injection/corpus.ts";
import { toTagAscii } from "../../corpus/injection/techniques.ts";

/** The invariants hold for any seed and every set: checked on the default seed and two others. */
const SEEDS = [DEFAULT_SEED, 1, 0xbeef];
const SETS = CORPUS_SETS;
const corpora = new Map<string, InjectionSample[]>();
for (const set of SETS) for (const seed of SEEDS) corpora.set(`${set} ${seed}`, await injectionCorpus(seed, { set }));
const samples = corpora.get(`dev ${DEFAULT_SEED}`)!;

const set = <T>(xs: readonly T[]) => [...new Set(xs)].sort();

/** Every string value of a parsed JSON document. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v !== null && typeof v === "object") for (const x of Object.values(v)) strings(x, out);
  return out;
}

/** The assistant text of a chat stream: OpenAI chunks, Anthropic deltas, or `token` events. */
function streamText(body: string): string {
  let text = "";
  for (const event of body.split(/\n\n/)) {
    for (const line of event.split("\n")) {
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") continue;
      const d = JSON.parse(data) as { choices?: { delta?: { content?: string } }[]; delta?: { text?: string }; token?: string };
      text += d.choices?.[0]?.delta?.content ?? d.delta?.text ?? d.token ?? "";
    }
  }
  return text;
}

const xmlEsc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
const unescapeHtml = (s: string) => s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&");
/** Text with markup, whitespace and format characters removed: for comparing a decoded payload with its instruction. */
const bare = (s: string) =>
  unescapeHtml(s.replace(/<\/?(p|pre|br|div|span)\b[^>]*>/g, ""))
    .replace(/[\u200b-\u200d\u2060\ufeff]/g, "")
    .replace(/\s+/g, "");

const CONTENT_TYPE: Record<string, RegExp> = {
  html: /^text\/html/,
  json: /^application\/([\w.+-]+\+)?json/,
  markdown: /^text\/(markdown|plain)/,
  text: /^(text\/|application\/(x-ndjson|ndjson|jsonl|x-jsonlines|jsonlines|yaml|x-yaml|x-subrip|sql))/,
  email: /^message\/rfc822$/,
  sse: /^text\/event-stream/,
  xml: /^(application\/([\w.+-]+\+)?xml|image\/svg\+xml)/,
};

for (const [name, samples] of corpora) {
  const attacks = samples.filter((s) => s.label === "attack");
  const benign = samples.filter((s) => s.label === "benign");

  describe(`injection corpus (${name}): counts and coverage`, () => {
    test("at least 320 attack and 320 benign samples, and no fewer benign than attacks", () => {
      expect(attacks.length).toBeGreaterThanOrEqual(320);
      expect(benign.length).toBeGreaterThanOrEqual(320);
      expect(benign.length).toBeGreaterThanOrEqual(attacks.length);
      expect(samples.length).toBe(attacks.length + benign.length);
    });

    test("attacks cover every category, technique, language and carrier, and nothing else", () => {
      expect(set(attacks.map((s) => s.category))).toEqual(set(CATEGORIES));
      expect(set(attacks.map((s) => s.technique))).toEqual(set(TECHNIQUES));
      expect(set(attacks.map((s) => s.language))).toEqual(set(LANGUAGES));
      expect(set(attacks.map((s) => s.carrier))).toEqual(set(CARRIERS));
    });

    test("every category has attacks in every language", () => {
      const pairs = new Set(attacks.map((s) => `${s.category}/${s.language}`));
      for (const c of CATEGORIES) for (const l of LANGUAGES) expect({ pair: `${c}/${l}`, present: pairs.has(`${c}/${l}`) }).toEqual({ pair: `${c}/${l}`, present: true });
    });

    test("every technique is used at least 10 times, every carrier at least 20", () => {
      const count = (k: (s: InjectionSample) => string, v: string) => attacks.filter((s) => k(s) === v).length;
      for (const t of TECHNIQUES) expect({ t, ok: count((s) => s.technique, t) >= 10 }).toEqual({ t, ok: true });
      for (const c of CARRIERS) expect({ c, ok: count((s) => s.carrier, c) >= 20 }).toEqual({ c, ok: true });
    });

    test("benign samples cover every benign kind, every carrier and every language; technique is none", () => {
      expect(set(benign.map((s) => s.category))).toEqual(set(BENIGN_KINDS));
      expect(set(benign.map((s) => s.carrier))).toEqual(set(CARRIERS));
      for (const l of LANGUAGES) expect({ l, present: benign.some((s) => s.language === l) }).toEqual({ l, present: true });
      const langs: readonly string[] = [...LANGUAGES, ...EXTRA_BENIGN_LANGUAGES];
      for (const s of benign) {
        expect(s.technique).toBe("none");
        expect(langs).toContain(s.language);
        expect(s.payload).toBeUndefined();
      }
    });

    test("benign kinds that mimic an attack category name real categories", () => {
      for (const s of benign) for (const m of s.mimics ?? []) expect(CATEGORIES as readonly string[]).toContain(m);
      const mimicked = new Set(benign.flatMap((s) => s.mimics ?? []));
      for (const c of CATEGORIES) expect({ c, mimicked: mimicked.has(c) }).toEqual({ c, mimicked: true });
    });
  });

  describe(`injection corpus (${name}): samples are well formed`, () => {
    test("ids are unique and shaped atk.<lang>.<category>.<n>.<k> or ben.<id>", () => {
      expect(new Set(samples.map((s) => s.id)).size).toBe(samples.length);
      for (const s of attacks) expect(s.id).toMatch(new RegExp(`^atk\\.${s.language}\\.${s.category}\\.\\d{2}\\.\\d$`));
      for (const s of benign) expect(s.id).toMatch(/^ben\.[a-z0-9-]+(\.\d+)?$/);
    });

    test("content types agree with carriers; bodies are non-empty", () => {
      for (const s of samples) {
        expect({ id: s.id, ok: CONTENT_TYPE[s.carrier]!.test(s.contentType) }).toEqual({ id: s.id, ok: true });
        expect(s.body.length).toBeGreaterThan(40);
      }
    });

    test("attacks carry their instruction and a non-empty payload", () => {
      for (const s of attacks) {
        expect(s.instruction?.length ?? 0).toBeGreaterThan(10);
        expect(s.payload?.length ?? 0).toBeGreaterThan(0);
        expect(s.instruction).not.toContain("{{");
      }
    });

    test("JSON bodies parse, and an attack's payload is inside one of their string values", () => {
      for (const s of samples.filter((x) => x.carrier === "json")) {
        let doc: unknown;
        expect(() => (doc = JSON.parse(s.body))).not.toThrow();
        if (s.label === "attack") expect({ id: s.id, found: strings(doc).some((v) => v.includes(s.payload!)) }).toEqual({ id: s.id, found: true });
      }
    });

    test("json-unicode-escape attacks write the payload as \\u escapes only", () => {
      const esc = attacks.filter((s) => s.technique === "json-unicode-escape");
      expect(esc.length).toBeGreaterThan(0);
      for (const s of esc) {
        expect(s.carrier).toBe("json");
        expect(s.body.includes(s.payload!)).toBe(false);
        expect(s.body).toMatch(/(\\u[0-9a-f]{4}){20}/);
      }
    });

    test("chat streams: every data line is JSON or [DONE], and the deltas rejoin to hold the payload", () => {
      for (const s of samples.filter((x) => x.carrier === "sse")) {
        let text = "";
        expect(() => (text = streamText(s.body))).not.toThrow();
        // A whole benign stream may be of another kind (a deploy log's events), with no deltas.
        if (s.label === "attack" || s.template !== "standalone") expect(text.length).toBeGreaterThan(0);
        if (s.label === "attack") {
          expect({ id: s.id, found: text.includes(s.payload!) }).toEqual({ id: s.id, found: true });
          // The stream cuts the payload: no single event holds it whole (unless it is short).
          if ([...s.payload!].length > 40) expect(s.body.includes(JSON.stringify(s.payload!).slice(1, -1))).toBe(false);
        }
      }
    });

    test("other carriers hold the payload as written, or as the slot escapes it (XML text, CSV field, CDATA)", () => {
      for (const s of attacks.filter((x) => x.carrier !== "json" && x.carrier !== "sse")) {
        const p = s.payload!;
        const found = s.body.includes(p) || s.body.includes(xmlEsc(p)) || s.body.includes(p.replace(/"/g, '""')) || s.body.includes(p.replace(/]]>/g, "]]]]><![CDATA[>"));
        expect({ id: s.id, found }).toEqual({ id: s.id, found: true });
      }
    });

    test("meta-description attacks replace the page's description in <head>", () => {
      for (const s of attacks.filter((x) => x.technique === "meta-description")) {
        const head = s.body.slice(0, s.body.indexOf("</head>"));
        expect(head).toContain(s.payload!);
        expect(s.payload!).toStartWith('<meta name="description" content="');
      }
    });

    test("encoded payloads decode back to their instruction", () => {
      const collapse = (x: string) => x.replace(/\s+/g, " ").trim();
      for (const s of attacks) {
        const p = unescapeHtml(s.payload!);
        const ins = s.instruction!;
        switch (s.technique) {
          case "base64": {
            const blob = p.match(/[A-Za-z0-9+/]{16,}={0,2}/g)!.sort((a, b) => b.length - a.length)[0]!;
            expect(Buffer.from(blob, "base64").toString("utf8")).toBe(ins);
            break;
          }
          case "hex": {
            const blob = p.match(/(?:(?:\\x)?[0-9a-f]{2} ?){8,}/g)!.sort((a, b) => b.length - a.length)[0]!;
            expect(Buffer.from(blob.replace(/\\x| /g, ""), "hex").toString("utf8")).toBe(ins);
            break;
          }
          case "percent":
            expect(decodeURIComponent(p.match(/(?:%[0-9A-F]{2})+/g)!.sort((a, b) => b.length - a.length)[0]!)).toBe(ins);
            break;
          case "unicode-tags": {
            const ascii = [...p].filter((c) => c.codePointAt(0)! >= 0xe0020 && c.codePointAt(0)! <= 0xe007e).map((c) => String.fromCharCode(c.codePointAt(0)! - 0xe0000)).join("");
            expect(ascii).toBe(toTagAscii(collapse(ins)));
            break;
          }
          case "zero-width":
            expect(p).toMatch(/[\u200b-\u200d\u2060\ufeff]/);
            expect(bare(p)).toContain(bare(ins));
            break;
          case "plain":
          case "json-unicode-escape":
            expect(bare(p)).toContain(bare(ins));
            break;
          case "bidi-override":
            expect(p).toMatch(/[\u202a-\u202e\u2066-\u2069]/);
            break;
          case "homoglyph":
            expect(p).not.toBe(ins);
            expect(p).toMatch(s.language === "ru" ? /[aeopcyxAEKMHOPCTXB]/ : /[\u0400-\u04ff]/);
            break;
        }
      }
    });

    test("benign bodies are not attack bodies", () => {
      const attackBodies = new Set(attacks.map((s) => s.body));
      for (const s of benign) expect(attackBodies.has(s.body)).toBe(false);
    });
  });
}

describe("injection corpus: the sets stand apart", () => {
  // Without its URLs and mail addresses (ASCII: in Japanese, with no space, `\S+` took the whole text).
  const bareInstruction = (s: InjectionSample) => s.instruction!.replace(/https?:\/\/[\x21-\x7e]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g, "");
  const benignId = (s: InjectionSample) => s.id.replace(/\.\d+$/, "");
  /** No instruction or benign entry of `later` is also in any of `earlier`. */
  const apart = (later: string, earlier: string[]) => {
    const before = earlier.flatMap((e) => corpora.get(`${e} ${DEFAULT_SEED}`)!);
    const instructions = new Set(before.filter((s) => s.label === "attack").map(bareInstruction));
    const benignIds = new Set(before.filter((s) => s.label === "benign").map(benignId));
    for (const s of corpora.get(`${later} ${DEFAULT_SEED}`)!) {
      if (s.label === "attack") expect({ id: s.id, shared: instructions.has(bareInstruction(s)) }).toEqual({ id: s.id, shared: false });
      else expect({ id: s.id, shared: benignIds.has(benignId(s)) }).toEqual({ id: s.id, shared: false });
    }
  };

  test("no holdout instruction or benign text is also in the dev set", () => apart("holdout", ["dev"]));

  test("no holdout2 instruction or benign text is also in the dev set or the first holdout", () => apart("holdout2", ["dev", "holdout"]));

  test("no dev2 instruction or benign text is also in the dev set or either holdout", () => apart("dev2", ["dev", "holdout", "holdout2"]));

  test("no dev3 instruction or benign text is also in any other set", () => apart("dev3", ["dev", "dev2", "holdout", "holdout2"]));

  test("no dev4 instruction or benign text is also in any other set", () => apart("dev4", ["dev", "dev2", "dev3", "holdout", "holdout2"]));

  test("no dev5 instruction or benign text is also in any other set", () => apart("dev5", ["dev", "dev2", "dev3", "dev4", "holdout", "holdout2"]));

  test("no dev6 instruction or benign text is also in any other set", () => apart("dev6", ["dev", "dev2", "dev3", "dev4", "dev5", "holdout", "holdout2"]));

  test("no holdout3 instruction or benign text is also in any other set", () => apart("holdout3", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2"]));

  test("no holdout4 instruction or benign text is also in any other set", () => apart("holdout4", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3"]));

  test("no holdout5 instruction or benign text is also in any other set", () => apart("holdout5", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4"]));
  test("no holdout6 instruction or benign text is also in any other set", () => apart("holdout6", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5"]));
  test("no holdout7 instruction or benign text is also in any other set", () => apart("holdout7", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6"]));
  test("no holdout8 instruction or benign text is also in any other set", () => apart("holdout8", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7"]));
  test("no holdout9 instruction or benign text is also in any other set", () => apart("holdout9", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8"]));
  test("no holdout10 instruction or benign text is also in any other set", () => apart("holdout10", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9"]));
  test("no holdout11 instruction or benign text is also in any other set", () => apart("holdout11", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10"]));
  test("no holdout12 instruction or benign text is also in any other set", () => apart("holdout12", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11"]));
  test("no holdout13 instruction or benign text is also in any other set", () => apart("holdout13", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12"]));
  test("no holdout14 instruction or benign text is also in any other set", () => apart("holdout14", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13"]));
  test("no dev7 instruction or benign text is also in any other set", () => apart("dev7", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14"]));
  test("no holdout15 instruction or benign text is also in any other set", () => apart("holdout15", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7"]));
  test("no dev8 instruction or benign text is also in any other set", () => apart("dev8", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15"]));
  test("no dev9 instruction or benign text is also in any other set", () => apart("dev9", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8"]));
  test("no holdout16 instruction or benign text is also in any other set", () => apart("holdout16", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9"]));
  test("no dev10 instruction or benign text is also in any other set", () => apart("dev10", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16"]));
  test("no holdout17 instruction or benign text is also in any other set", () => apart("holdout17", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10"]));
  test("no holdout18 instruction or benign text is also in any other set", () => apart("holdout18", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17"]));
  test("no holdout19 instruction or benign text is also in any other set", () => apart("holdout19", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18"]));
  test("no holdout20 instruction or benign text is also in any other set", () => apart("holdout20", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19"]));
  test("no dev11 instruction or benign text is also in any other set", () => apart("dev11", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20"]));
  test("no holdout21 instruction or benign text is also in any other set", () => apart("holdout21", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11"]));
  test("no holdout22 instruction or benign text is also in any other set", () => apart("holdout22", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21"]));
  test("no holdout23 instruction or benign text is also in any other set", () => apart("holdout23", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22", "dev12"]));
  test("no holdout24 instruction or benign text is also in any other set", () => apart("holdout24", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22", "dev12", "holdout23"]));
  test("no holdout25 instruction or benign text is also in any other set", () => apart("holdout25", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22", "dev12", "holdout23", "holdout24"]));
  test("no holdout26 instruction or benign text is also in any other set", () => apart("holdout26", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22", "dev12", "holdout23", "holdout24", "holdout25"]));
  test("no holdout27 instruction or benign text is also in any other set", () => apart("holdout27", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22", "dev12", "holdout23", "holdout24", "holdout25", "holdout26"]));
  test("no holdout28 instruction or benign text is also in any other set", () => apart("holdout28", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22", "dev12", "holdout23", "holdout24", "holdout25", "holdout26", "holdout27"]));
  test("no holdout29 instruction or benign text is also in any other set", () => apart("holdout29", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22", "dev12", "holdout23", "holdout24", "holdout25", "holdout26", "holdout27", "holdout28"]));
  test("no holdout30 instruction or benign text is also in any other set", () => apart("holdout30", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22", "dev12", "holdout23", "holdout24", "holdout25", "holdout26", "holdout27", "holdout28", "holdout29"]));
  test("no holdout31 instruction or benign text is also in any other set", () => apart("holdout31", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22", "dev12", "holdout23", "holdout24", "holdout25", "holdout26", "holdout27", "holdout28", "holdout29", "holdout30"]));
  test("no dev12 instruction or benign text is also in any other set", () => apart("dev12", ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "dev7", "holdout15", "dev8", "dev9", "holdout16", "dev10", "holdout17", "holdout18", "holdout19", "holdout20", "dev11", "holdout21", "holdout22"]));
});

describe("injection corpus: determinism", () => {
  test("the same seed gives the same corpus", async () => {
    const again = await injectionCorpus(DEFAULT_SEED);
    expect(again).toEqual(samples);
    const a = await injectionCorpus(7);
    const b = await injectionCorpus(7);
    expect(a).toEqual(b);
  });

  test("another seed gives the same ids with other bodies", async () => {
    const other = await injectionCorpus(DEFAULT_SEED + 1);
    expect(other.map((s) => s.id)).toEqual(samples.map((s) => s.id));
    const changed = other.filter((s, i) => s.body !== samples[i]!.body).length;
    expect(changed).toBeGreaterThan(samples.length / 2);
  });
});

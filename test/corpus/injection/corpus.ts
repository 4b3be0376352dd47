/**
 * The labelled prompt-injection corpus: response bodies an agent receives (web pages, API JSON,
 * READMEs, mail, feeds, tool output, chat streams), each either carrying one injected
 * instruction, hidden one of many ways, or benign, many of them look-alikes (articles that quote
 * attacks, shell tutorials, chat-template docs, hidden menus, bidi text, data: images).
 *
 * Source data only (data/): attack payloads by language and category, carrier templates,
 * per-language lead-ins for the encodings, and hand-written benign texts and documents. Samples
 * are expanded here at run time from a seed (mulberry32): the same seed, the same corpus. Nothing
 * here knows the scanner or its rules.
 *
 *   const samples = await injectionCorpus();        // DEFAULT_SEED
 *   const other = await injectionCorpus(7);
 */
import { Glob } from "bun";
import { join } from "node:path";
import { CARRIERS, checkTemplate, render, slotInfo, type Carrier, type Template } from "./carriers.ts";
import { markdownToHtml, textToHtml } from "./markup.ts";
import { createRng, leastUsed, type Rng } from "./rng.ts";
import { hide, TECHNIQUES, techniqueFitsLanguage, techniqueFitsSlot, type LangKit, type Markup, type Technique } from "./techniques.ts";

export { CARRIERS } from "./carriers.ts";
export { TECHNIQUES } from "./techniques.ts";

export const CATEGORIES = [
  "instruction-override",
  "role-spoofing",
  "authority-urgency",
  "exfiltration",
  "tool-coercion",
  "credential-solicitation",
  "memory-poisoning",
  "covert-action",
  "jailbreak",
] as const;
export type Category = (typeof CATEGORIES)[number];

export const LANGUAGES = ["en", "es", "fr", "de", "pt", "ru", "zh", "ja", "ko"] as const;
export type Language = (typeof LANGUAGES)[number];

export const BENIGN_KINDS = [
  "security-article",
  "shell-tutorial",
  "chat-template-docs",
  "code-tokens",
  "multilingual",
  "api-json",
  "email",
  "web-page",
  "readme",
  "news",
  "recipe",
  "product-page",
  "issue-comment",
  "chat-response",
  "tool-output",
  "hidden-benign",
] as const;
export type BenignKind = (typeof BENIGN_KINDS)[number];

/** Benign texts may also be in these (right-to-left and other scripts with invisible marks; Italian, which holdout7 brought). */
export const EXTRA_BENIGN_LANGUAGES = ["ar", "he", "fa", "th", "it"] as const;

export const DEFAULT_SEED = 0x1a7c;
/** Samples per attack payload (each a different technique and carrier as far as they fit). */
export const PER_PAYLOAD = 2;

export interface InjectionSample {
  /** Stable, unique: `atk.<lang>.<category>.<n>.<k>` or `ben.<entry id>[.<k>]`. */
  id: string;
  label: "attack" | "benign";
  /** Attack category (CATEGORIES) or benign kind (BENIGN_KINDS). */
  category: string;
  /** Hiding technique (TECHNIQUES) for attacks; "none" for benign. */
  technique: string;
  language: string;
  carrier: "html" | "json" | "markdown" | "text" | "email" | "sse" | "xml";
  contentType: string;
  /** The full response body as the agent would receive it. */
  body: string;
  /** The carrier template (data/carriers/), or "standalone" for a benign document used as written. */
  template: string;
  /**
   * Attacks: the fragment placed in the template's slot, after the technique and before the
   * carrier's own escaping (a JSON string value, XML text, a CSV field, stream deltas). A
   * meta-description attack's fragment is its `<meta>` element.
   */
  payload?: string;
  /** Attacks: the instruction as written in the payload file, before any hiding. */
  instruction?: string;
  /** Benign: the attack categories this text resembles, where it was written to resemble one. */
  mimics?: string[];
}

interface BenignEntry {
  readonly id: string;
  readonly kind: BenignKind;
  readonly lang: Language | (typeof EXTRA_BENIGN_LANGUAGES)[number];
  readonly mimics?: string[];
  /** A text placed in carrier templates (`wraps` of them). */
  readonly text?: string;
  readonly markup?: Markup;
  /** Restricts the carriers a text goes into: carrier kinds or template ids. */
  readonly carriers?: string[];
  readonly wraps?: number;
  /** A whole document, used as written. */
  readonly body?: string;
  readonly carrier?: Carrier;
  readonly contentType?: string;
}

interface TechniqueData {
  readonly hosts: string[];
  readonly emails: string[];
  readonly kits: Record<string, LangKit>;
}

interface Data {
  readonly payloads: Record<string, Record<string, string[]>>;
  readonly technique: TechniqueData;
  readonly templates: Template[];
  readonly benign: BenignEntry[];
}

const DATA = join(import.meta.dir, "data");
const yaml = async (path: string): Promise<unknown> => Bun.YAML.parse(await Bun.file(path).text());
const files = (dir: string) => [...new Glob("*.yaml").scanSync(join(DATA, dir))].sort();

/**
 * Which payloads and benign texts: `dev` (data/payloads, data/benign), the set the rules were
 * written against; `holdout` (data/holdout/), written apart from the rules and never tuned
 * against, though later rule work looked at its aggregate figures, so it is no longer a clean
 * measure; or `holdout2` (data/holdout2/), the fresh independent set, written on 2026-11-28 by
 * an author who had not seen the rules, the lexicons, the scanner, the dev set or the first
 * holdout's texts, and never tuned against, so its figures say how the scanner does on text it
 * has not seen; or `dev2` (data/dev2/), a tuning set written on 2026-11-28 by a separate author
 * (who had not seen the rules, the scanner or the holdout sets) to give rule work more data than
 * dev: tuning on it is allowed; or `dev3` (data/dev3/), a third tuning set by another author who
 * had seen none of the rules, the scanner or any other set's texts, with more benign look-alikes
 * than the others; or `dev4` (data/dev4/), a fourth tuning set written on 2026-11-28 by two more
 * authors (one the attacks, one the benign texts) who had seen none of the above, weighted to
 * benign look-alikes; or `dev5` (data/dev5/) and `dev6` (data/dev6/), a fifth and sixth tuning
 * set written the same way by two more authors each (dev6's weighted to subtle attacks and to
 * benign text that reads like an order or quotes an attack); or `dev7` (data/dev7/), a seventh
 * written on 2026-11-29 for the word model (attacks in plain words of many voices, no stock
 * phrases; benign text weighted to the kinds most often blocked); or `dev8` (data/dev8/), an
 * eighth the same day (short quiet orders of the kind found in attributes, fields and log lines;
 * benign text weighted to hidden markup), not trained on; or `dev9` (data/dev9/), a ninth written
 * on 2026-11-29 (quiet orders and covert actions in everyday words, no stock phrases; benign text
 * weighted to hidden markup in nine languages, news and template docs); or `dev10` (data/dev10/), a
 * tenth the same day (plain orders with no stock phrase, covert actions and credential requests;
 * benign text weighted to the kinds most often blocked); or `dev11` (data/dev11/), an eleventh
 * the same day (authority and urgency claims, credential requests and covert actions in shop,
 * ticket and news text; benign text weighted to product pages, issue comments, news and code),
 * not trained on; or `dev12` (data/dev12/), a twelfth the same day (plain and covert orders, a
 * quarter in the words of security and testing; benign text weighted to hidden markup, code,
 * issue comments, assistants' answers and security articles that quote attacks), not
 * trained on; or `holdout3` (data/holdout3/), a
 * third independent set by two more authors who had seen none of the above, written on
 * 2026-11-28; or `holdout4` (data/holdout4/), `holdout5` (data/holdout5/), `holdout6`
 * (data/holdout6/), `holdout7` (data/holdout7/), `holdout8` (data/holdout8/), `holdout9`
 * (data/holdout9/), `holdout10` (data/holdout10/), `holdout11` (data/holdout11/), `holdout12`
 * (data/holdout12/), `holdout13` (data/holdout13/), `holdout14` (data/holdout14/), `holdout15`
 * (data/holdout15/), `holdout16` (data/holdout16/), `holdout17` (data/holdout17/), `holdout18`
 * (data/holdout18/), `holdout19` (data/holdout19/), `holdout20` (data/holdout20/), `holdout21`
 * (data/holdout21/), `holdout22` (data/holdout22/), `holdout23` (data/holdout23/), `holdout24`
 * (data/holdout24/), `holdout25` (data/holdout25/), `holdout26` (data/holdout26/), `holdout27`
 * (data/holdout27/), `holdout28` (data/holdout28/), `holdout29` (data/holdout29/), `holdout30`
 * (data/holdout30/) and `holdout31` (data/holdout31/), a fourth to thirty-first written the same way.
 * holdout3 and holdout4 are trained on since 2026-11-28 (the word model, scripts/words-model.ts),
 * holdout5 to holdout11 since holdout13 was written, holdout12 and holdout13 since holdout15 was,
 * holdout14 to holdout16 since holdout17 was; holdout17 to holdout31 are never trained on. All use the same carrier templates and techniques.
 */
export type CorpusSet = "dev" | "dev2" | "dev3" | "dev4" | "dev5" | "dev6" | "dev7" | "dev8" | "dev9" | "dev10" | "dev11" | "dev12" | "holdout" | "holdout2" | "holdout3" | "holdout4" | "holdout5" | "holdout6" | "holdout7" | "holdout8" | "holdout9" | "holdout10" | "holdout11" | "holdout12" | "holdout13" | "holdout14" | "holdout15" | "holdout16" | "holdout17" | "holdout18" | "holdout19" | "holdout20" | "holdout21" | "holdout22" | "holdout23" | "holdout24" | "holdout25" | "holdout26" | "holdout27" | "holdout28" | "holdout29" | "holdout30" | "holdout31";
const SET_DIR: Record<CorpusSet, string> = { dev: "", dev2: "dev2", dev3: "dev3", dev4: "dev4", dev5: "dev5", dev6: "dev6", dev7: "dev7", dev8: "dev8", dev9: "dev9", dev10: "dev10", dev11: "dev11", dev12: "dev12", holdout: "holdout", holdout2: "holdout2", holdout3: "holdout3", holdout4: "holdout4", holdout5: "holdout5", holdout6: "holdout6", holdout7: "holdout7", holdout8: "holdout8", holdout9: "holdout9", holdout10: "holdout10", holdout11: "holdout11", holdout12: "holdout12", holdout13: "holdout13", holdout14: "holdout14", holdout15: "holdout15", holdout16: "holdout16", holdout17: "holdout17", holdout18: "holdout18", holdout19: "holdout19", holdout20: "holdout20", holdout21: "holdout21", holdout22: "holdout22", holdout23: "holdout23", holdout24: "holdout24", holdout25: "holdout25", holdout26: "holdout26", holdout27: "holdout27", holdout28: "holdout28", holdout29: "holdout29", holdout30: "holdout30", holdout31: "holdout31" };
/** Every set, tuning sets first, the holdouts last (holdout31, the freshest, at the end). */
export const CORPUS_SETS = Object.keys(SET_DIR) as readonly CorpusSet[];

const cached = new Map<CorpusSet, Promise<Data>>();

function loadData(set: CorpusSet): Promise<Data> {
  let data = cached.get(set);
  if (data === undefined) {
    data = readData(set);
    cached.set(set, data);
  }
  return data;
}

async function readData(set: CorpusSet): Promise<Data> {
  const dir = SET_DIR[set];
  const payloads: Record<string, Record<string, string[]>> = {};
  for (const lang of LANGUAGES) {
    const doc = (await yaml(join(DATA, dir, "payloads", `${lang}.yaml`))) as Record<string, string[]>;
    for (const key of Object.keys(doc)) if (!(CATEGORIES as readonly string[]).includes(key)) throw new Error(`${join(dir, "payloads", lang)}.yaml: unknown category ${key}`);
    for (const cat of CATEGORIES) {
      const list = doc[cat];
      if (!Array.isArray(list) || list.length === 0 || list.some((p) => typeof p !== "string" || p.trim() === "")) throw new Error(`${join(dir, "payloads", lang)}.yaml: ${cat} needs a list of payload strings`);
    }
    payloads[lang] = doc;
  }
  const technique = (await yaml(join(DATA, "techniques.yaml"))) as TechniqueData;
  for (const lang of LANGUAGES) {
    const kit = technique.kits[lang];
    if (!kit || (["base64", "hex", "percent", "cover", "linkText"] as const).some((k) => !Array.isArray(kit[k]) || kit[k].length === 0)) throw new Error(`techniques.yaml: kit for ${lang} incomplete`);
    for (const k of ["base64", "hex", "percent"] as const) for (const l of kit[k]) if (!l.includes("{{encoded}}")) throw new Error(`techniques.yaml: ${lang}.${k} lead-in without {{encoded}}: ${l}`);
  }
  const templates: Template[] = [];
  for (const f of files("carriers")) templates.push(...((await yaml(join(DATA, "carriers", f))) as Template[]));
  const ids = new Set<string>();
  for (const t of templates) {
    checkTemplate(t);
    if (ids.has(t.id)) throw new Error(`duplicate carrier template ${t.id}`);
    ids.add(t.id);
  }
  const benign: BenignEntry[] = [];
  for (const f of files(join(dir, "benign"))) benign.push(...((await yaml(join(DATA, dir, "benign", f))) as BenignEntry[]));
  const bids = new Set<string>();
  for (const e of benign) {
    const bad = (why: string) => {
      throw new Error(`benign entry ${e.id ?? "?"}: ${why}`);
    };
    if (!e.id || bids.has(e.id)) bad("missing or duplicate id");
    bids.add(e.id);
    if (!(BENIGN_KINDS as readonly string[]).includes(e.kind)) bad(`unknown kind ${e.kind}`);
    if (![...LANGUAGES, ...EXTRA_BENIGN_LANGUAGES].includes(e.lang)) bad(`unknown lang ${e.lang}`);
    if ((e.text === undefined) === (e.body === undefined)) bad("exactly one of text, body");
    if (e.body !== undefined && (!e.carrier || !(CARRIERS as readonly string[]).includes(e.carrier) || !e.contentType)) bad("a body needs carrier and contentType");
    if (e.markup !== undefined && !["html", "markdown", "text"].includes(e.markup)) bad("markup must be html, markdown or text");
  }
  return { payloads, technique, templates, benign };
}

/** `{{host}}` and `{{email}}` in a payload: an attacker's collection host and mailbox. */
function fillPayload(p: string, d: TechniqueData, rng: Rng): string {
  const host = rng.pick(d.hosts);
  const email = rng.pick(d.emails);
  return p.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (name === "host") return host;
    if (name === "email") return email;
    throw new Error(`unknown payload slot {{${name}}} in: ${p}`);
  });
}

/** A benign text in a template's markup, or null where it does not fit. */
function benignFragment(e: BenignEntry, t: Template): string | null {
  const m = e.markup ?? "text";
  const text = e.text!;
  if (e.carriers && !e.carriers.includes(t.carrier) && !e.carriers.includes(t.id)) return null;
  if (t.slot === "short" && text.length > 420) return null;
  if (t.markup === "html") return m === "html" ? text : m === "markdown" ? markdownToHtml(text) : textToHtml(text);
  if (m === "html") return null;
  return text;
}

/** With probability `p`, only the templates written in `lang` (when any fit); otherwise all. */
function preferLanguage(ts: Template[], lang: string, p: number, rng: Rng): Template[] {
  const native = ts.filter((t) => t.lang === lang);
  return native.length > 0 && rng.chance(p) ? native : ts;
}

const TECHNIQUE_WEIGHT = (t: Technique) => (t === "plain" ? 3 : 1);

export async function injectionCorpus(seed: number = DEFAULT_SEED, options: { perPayload?: number; set?: CorpusSet } = {}): Promise<InjectionSample[]> {
  const data = await loadData(options.set ?? "dev");
  const rng = createRng(seed);
  const perPayload = options.perPayload ?? PER_PAYLOAD;
  const out: InjectionSample[] = [];

  // Attacks: every payload, perPayload times, spread evenly over the techniques that fit its
  // language and over the carriers that fit the technique (half the time among the carriers
  // written in the payload's language, where one fits).
  const techUse = new Map<string, number>();
  const tmplUse = new Map<string, number>();
  for (const lang of LANGUAGES) {
    const kit = data.technique.kits[lang]!;
    for (const category of CATEGORIES) {
      data.payloads[lang]![category]!.forEach((raw, n) => {
        for (let k = 0; k < perPayload; k++) {
          const instruction = fillPayload(raw.replace(/\n+$/, ""), data.technique, rng);
          const technique = leastUsed(TECHNIQUES.filter((t) => techniqueFitsLanguage(t, lang)), (t) => t, techUse, rng, TECHNIQUE_WEIGHT);
          const template = leastUsed(preferLanguage(data.templates.filter((t) => techniqueFitsSlot(technique, slotInfo(t))), lang, 0.5, rng), (t) => t.id, tmplUse, rng);
          const hidden = hide(technique, instruction, lang, slotInfo(template), kit, data.technique.hosts, rng);
          out.push({
            id: `atk.${lang}.${category}.${String(n).padStart(2, "0")}.${k}`,
            label: "attack",
            category,
            technique,
            language: lang,
            carrier: template.carrier,
            contentType: template.contentType,
            body: render(template, hidden, rng),
            template: template.id,
            payload: hidden.head ?? hidden.fragment,
            instruction,
          });
        }
      });
    }
  }
  const attacks = out.length;

  // Benign: documents as written, and texts placed in the same carrier templates as the
  // attacks, enough of them for at least as many benign samples as attacks.
  const standalone = data.benign.filter((e) => e.body !== undefined);
  const texts = data.benign.filter((e) => e.text !== undefined);
  const wraps = Math.max(2, Math.ceil((attacks - standalone.length) / texts.length));
  for (const e of standalone) {
    out.push({ id: `ben.${e.id}`, label: "benign", category: e.kind, technique: "none", language: e.lang, carrier: e.carrier!, contentType: e.contentType!, body: e.body!, template: "standalone", ...(e.mimics ? { mimics: [...e.mimics] } : {}) });
  }
  const benignUse = new Map<string, number>();
  for (const e of texts) {
    const fits = data.templates.filter((t) => benignFragment(e, t) !== null);
    if (fits.length === 0) throw new Error(`benign entry ${e.id}: no carrier template fits it`);
    const taken = new Set<string>();
    for (let k = 0; k < (e.wraps ?? wraps); k++) {
      const fresh = fits.filter((t) => !taken.has(t.id));
      const template = leastUsed(preferLanguage(fresh.length > 0 ? fresh : fits, e.lang, 0.5, rng), (t) => t.id, benignUse, rng);
      taken.add(template.id);
      out.push({
        id: `ben.${e.id}.${k}`,
        label: "benign",
        category: e.kind,
        technique: "none",
        language: e.lang,
        carrier: template.carrier,
        contentType: template.contentType,
        body: render(template, { fragment: benignFragment(e, template)! }, rng),
        template: template.id,
        ...(e.mimics ? { mimics: [...e.mimics] } : {}),
      });
    }
  }
  return out;
}

/** Counts of samples by a field, sorted by key: for reports. */
export function countBy(samples: readonly InjectionSample[], key: (s: InjectionSample) => string): Record<string, number> {
  const m: Record<string, number> = {};
  for (const s of samples) m[key(s)] = (m[key(s)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => a.localeCompare(b)));
}

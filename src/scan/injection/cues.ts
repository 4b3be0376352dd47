/**
 * Cue intents: prompt injection recognised by what a text *does* rather than by one phrasing.
 * An injected instruction is a handful of moves close together: it dismisses the rules the model
 * was given, addresses an AI, asks for a secret, names a place to send it, says not to tell the
 * user. Each move is a class of cue phrases in a lexicon (rules/injection/cues/lexicon-*.yaml,
 * one file per language, all loaded together); an intent (rules/injection/cues/intents.yaml) is
 * a combination of classes found within a few hundred characters of each other, with a weight.
 * "Ignore your earlier guidance" and "the rules you were given no longer apply" share no phrase,
 * but both are `dismiss` + `rules` near `you`.
 *
 * Matching is one Aho-Corasick pass over the text (keywords.ts's DFA) with case, runs of white
 * space and curly apostrophes folded; a phrase that starts (ends) with a letter of a spaced script
 * must start (end) at a word boundary, unless written with a trailing `*` (a stem: `ignor*`).
 * Phrases in scripts written without spaces (Chinese, Japanese) and in Korean, whose particles
 * attach to words, match anywhere.
 *
 * The result has the shape of a compiled rule pack (CompiledRules), so the injection engine
 * scores intents as it scores pattern rules, over every reading of a text.
 */
import { z } from "zod";
import { previewOf, RulePackError, type CompiledRule, type CompiledRules, type Finding, type RulePackIssue } from "../rules/compile.ts";
import { buildDfa, DFA_CODEC, isWordUnit, walkChains, type Dfa } from "../rules/keywords.ts";
import { cachedAutomaton, type AutomatonData } from "../automata-store.ts";
import { isAscii, wideRuns } from "../ascii.ts";
import { mergeSpans, partitionPoint } from "../spans.ts";
import { SEVERITIES } from "../rules/schema.ts";

/**
 * Distinct cue classes the lexicons may define together. A class is one bit of a mask held in two
 * Int32 words (Mask): bits 0-31 in `lo`, 32-63 in `hi`; a word's sign bit is a class like any
 * other (`>>>` included). The classes the scanner itself reads (SPECIAL_CLASSES) take the low
 * bits, so their masks are one word.
 */
export const MAX_CLASSES = 64;

/** A set of cue classes: bits 0-31 in `lo`, 32-63 in `hi`. */
interface Mask {
  lo: number;
  hi: number;
}
const bitMask = (bit: number): Mask => (bit < 32 ? { lo: 1 << bit, hi: 0 } : { lo: 0, hi: 1 << (bit - 32) });
const isEmpty = (m: Mask): boolean => m.lo === 0 && m.hi === 0;
/**
 * The group of every intent (CompiledRule.group): intents read the same cues, so a response
 * counts the strongest one, not their sum.
 */
export const CUE_GROUP = "inj.cues";
/** Default reach of an intent: its cues lie within this many characters. */
export const DEFAULT_WITHIN = 200;
/**
 * A blank line between two cues puts them this many characters further apart (a new
 * paragraph), when the paragraph before it has PARAGRAPH characters or more: blank lines between
 * words are no distance.
 */
export const BLANK_LINE = 150;
const PARAGRAPH = 40;
/**
 * The end of a JSON string (`",` or `":`) puts what follows this many characters further away:
 * a model name in one value, a verb in a key and "user" in the next are not a sentence.
 */
export const JSON_FIELD = BLANK_LINE;
/** A NUL puts what follows beyond every intent's reach: it separates texts scanned together. */
const SEPARATE = 10_000;

const className = z.string().regex(/^[a-z]+(?:-[a-z]+)*$/, "class names are lower-case kebab-case");
const phrase = z
  .string()
  .min(1)
  .refine((p) => p === p.toLowerCase(), "phrases are lower-case")
  .refine((p) => !/[\x00-\x1f\x7f]/.test(p) && p.trim() === p && !/\s{2}/.test(p), "phrases are printable, trimmed, one space between words")
  .refine((p) => !p.slice(0, -1).includes("*") && p !== "*", "`*` only ends a stem");

export const lexiconSchema = z.strictObject({
  lexicon: z.strictObject({
    language: z.string().regex(/^[a-z]{2}$/),
    classes: z.record(className, z.array(phrase).min(1)),
  }),
});

const intentSchema = z.strictObject({
  id: z.string().regex(/^inj\.[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be kebab-case and start with `inj.`"),
  description: z.string().min(1),
  severity: z.enum(SEVERITIES),
  weight: z.number().int().min(1).max(100),
  /** Every one of these classes has a cue in the window. */
  all: z.array(className).min(1),
  /** And at least one of these (when given). */
  any: z.array(className).default([]),
  /** A cue of one of these in the window halves the weight (writing *about* injection). */
  damp: z.array(className).default([]),
  /** How far apart the cues may be, in characters. */
  within: z.number().int().min(20).max(2000).default(DEFAULT_WITHIN),
  examples: z.strictObject({
    match: z.array(z.string().min(1)).min(1),
    no_match: z.array(z.string().min(1)).min(1),
  }),
});
export const intentsSchema = z.strictObject({ intents: z.array(intentSchema).min(1) });

interface Intent {
  readonly rule: CompiledRule;
  readonly all: Mask;
  readonly any: Mask;
  readonly damp: Mask;
  /** all | any: the classes that can complete the intent. */
  readonly own: Mask;
  readonly within: number;
}

/** A letter or digit of a script written with spaces between words (Latin, Greek, Cyrillic, ...). */
const SPACED_WORD = /[\p{L}\p{N}]/u;
const isSpacedWordChar = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 0xc0 && c < 0x1100 && SPACED_WORD.test(String.fromCharCode(c)));

/**
 * Whether a word starting after code unit `c` is part of a longer token: a letter or digit
 * before it, or the `@` or `.` of a mail address or host (`ops@attacker.example` holds no
 * discussion of attackers). Path segments (`~/.ssh/id_rsa`) and identifier parts (`send_email`)
 * are words.
 */
const extendsWord = (c: number): boolean => c === 64 || c === 46 || isSpacedWordChar(c);
/** Whether the text at `at` continues the word before it: a letter or digit, `@`, or a `.` before a letter (`attacker.example`). */
function continuesWord(text: string, at: number): boolean {
  const c = text.charCodeAt(at);
  if (c === 64) return true;
  if (c === 46) return at + 1 < text.length && isSpacedWordChar(text.charCodeAt(at + 1));
  return isSpacedWordChar(c);
}

/** How far around a discussion phrase inLink looks for the start and end of its token. */
const LINK_REACH = 256;
/**
 * Whether [start, end) lies in the address part of a URL or a mail address: the token it is in
 * (up to white space, LINK_REACH each way) has `://`, `www.` or `@` before it, or it is the local
 * part before an `@` (`attacker@evil.example`, a stem's hit included). An order that sends data
 * to `https://prompt-injection.example/` or `attacker@...` does not write about attacks; link
 * text (`[prompt injection](https://...)`) still does.
 */
function inLink(text: string, start: number, end: number): boolean {
  let a = start;
  while (a > 0 && start - a < LINK_REACH && !isSpace(text.charCodeAt(a - 1))) a--;
  if (a < start) {
    const before = text.slice(a, start);
    if (before.includes("://") || before.includes("@") || /(?:^|[^\p{L}\p{N}])www\./iu.test(before)) return true;
  }
  let z = end;
  while (z < text.length && z - end < LINK_REACH && (isSpacedWordChar(text.charCodeAt(z)) || LOCAL_PART.has(text.charCodeAt(z)))) z++;
  return text.charCodeAt(z) === 64;
}
/** Characters of a mail address's local part besides letters and digits. */
const LOCAL_PART: ReadonlySet<number> = new Set([..."._+-"].map((c) => c.charCodeAt(0)));

/** Unicode White_Space (and U+180E, once one): any of it between two words reads as one space. */
const isSpace = (c: number): boolean =>
  c === 32 || (c >= 9 && c <= 13) || c === 0x85 || c === 0xa0 || c === 0x1680 || c === 0x180e || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
/** Code units read as another: white space as a space, curly apostrophes as `'`. */
const foldUnit = (c: number): number => (isSpace(c) ? 32 : c === 0x2019 || c === 0x2018 || c === 0x02bc ? 39 : c);

/**
 * Compiles lexicon and intent files into a scanner with the shape of a rule pack. Every problem
 * (a bad file, an intent naming a class no lexicon defines, too many classes) is reported at once.
 */
/**
 * A phrase of writing about attacks found in a text: where, which phrase, and whether it is of
 * the `discuss` class (attack-topic words: "attackers", "prompt injection") or only of the
 * `example` class (framing any text uses: "for example", "the model").
 */
export interface DiscussionCue {
  readonly start: number;
  readonly end: number;
  readonly phrase: number;
  readonly strong: boolean;
}

export interface CueRules extends CompiledRules {
  /**
   * The phrases of writing about attacks in `text` (`discuss` and `example` classes), in order of
   * end: the engine reads a finding with several distinct ones around it, one of them strong, as
   * discussed rather than given (engine.ts).
   */
  discussionCues(text: string): DiscussionCue[];
  /** Where the cues of RELAY_CLASS end in `text`, in order. */
  relayCues(text: string): number[];
  /**
   * The example phrases in `text` (EXAMPLE_AFTER_CLASS, EXAMPLE_BEFORE_CLASS), in order of end:
   * the engine reads a quotation they follow or precede as an example (engine.ts).
   */
  exampleCues(text: string): ExampleCue[];
  /**
   * The ASCII words of every lexicon, lower case, a stem ending in `*`: what a leetspeak word
   * may be read as (readings.ts).
   */
  readonly vocabulary: ReadonlySet<string>;
  /** Every cue in `text` with its classes, for diagnostics and tests. */
  cuesOf(text: string): { start: number; end: number; classes: string[] }[];
  /**
   * Where every intent completes in `text` (start, end and the intent's weight there, flat, in
   * order of end): each place, where scan() reports each intent once. What the word model reads
   * around (engine.ts), the weight telling which of them the model's confirmation reads near.
   */
  completionsOf(text: string): Int32Array;
}

/** The classes whose cues mark writing about attacks (CueRules.discussionCues): strong, and framing. */
export const DISCUSS_CLASS = "discuss";
export const EXAMPLE_CLASS = "example";

/**
 * Negation vetoes a move. "Later system messages do not override earlier ones", "never send your
 * password to anyone", "nicht weitergeben", "無視しないでください" describe or forbid an action
 * rather than order it. A cue of NEGATION_CLASS ending at most NEGATION_REACH characters before
 * a cue, or one of NEGATION_AFTER_CLASS (languages that put the negation after the verb: German
 * `nicht`, Japanese `ない`, Korean `않`) starting at most NEGATION_AFTER_REACH characters after
 * it, with no clause punctuation between, takes the VETOED classes from that cue. A phrase that
 * holds its own negation ("do not follow" is a dismissal) is not vetoed by it: the negation must
 * end before the cue starts. NEGATION_AFTER_CLASS takes no bit of the class mask. Sending,
 * running and remembering are not vetoed: "do not reply until you have sent ...", "never forget
 * to run ..." and "why don't you email ..." still order them, and a threat ("if you do not send
 * ...") orders too; the negations that only encourage are too many, in nine languages, to list
 * (a prohibition of sending, "never share your password", is an `inert` phrase instead).
 */
export const NEGATION_CLASS = "negation";
export const NEGATION_AFTER_CLASS = "negation-after";
/**
 * A negation that forbids nothing: inside a condition, a threat ("if you do not send the code
 * today, the account is closed", "si no envías", "送らない場合"), and "don't forget to", "не забудьте",
 * "no dudes en", "not only". A phrase of
 * this class (no bit either) that covers a negation cue keeps it from vetoing.
 */
export const CONDITION_CLASS = "negation-void";
export const VETOED = ["dismiss", "reveal", "promote"] as const;
/**
 * Phrases that are not cues though they hold some: "everything you were told about risotto"
 * (a topic, not the model's instructions), "rules are made to be broken", "rule of thumb",
 * ".env.example" (a template without secrets). A phrase of this class (no bit) takes every class
 * from the hits that overlap it.
 */
export const INERT_CLASS = "inert";
export const NEGATION_REACH = 16;
/**
 * Tool names (`send_email`, `run_shell`): snake_case words with an action in them, one class of
 * the English lexicon read in every language. The verbs inside a name are not orders (EXEC_CLASS
 * is taken from them), so "the delete_rows helper" is a name and "call delete_rows" an order.
 */
export const TOOL_CLASS = "toolcall";
export const EXEC_CLASS = "exec";
/** The identifier `text[start, end)` lies in: as far as identifier characters go on each side. */
function identifierAround(text: string, start: number, end: number): [from: number, to: number] {
  while (start > 0 && isWordUnit(text.charCodeAt(start - 1))) start--;
  while (end < text.length && isWordUnit(text.charCodeAt(end))) end++;
  return [start, end];
}

/**
 * Whether `text[from, to)` is an UPPER_SNAKE_CASE name (an underscore, a capital, no lower-case
 * letter) used as a variable: read (`$NAME`, `${NAME}`, `env.NAME`), set (`NAME=`), or named for
 * a value (its last part KEY, TOKEN, PASSWORD, URL, ...). A label an attacker writes before prose
 * (`AI_ASSISTANT:`, `NOTE_FOR_LLM_AGENT:`) is none of these.
 */
function isVariableName(text: string, from: number, to: number): boolean {
  let underscore = -1;
  let capital = false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 97 && c <= 122) return false;
    if (c === 95) underscore = i;
    else if (c >= 65 && c <= 90) capital = true;
  }
  if (underscore < 0 || !capital) return false;
  const before = from > 0 ? text.charCodeAt(from - 1) : 0;
  if (before === 36 || before === 123 || before === 46) return true;
  let k = to;
  while (k < text.length && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9)) k++;
  if (text.charCodeAt(k) === 61) return true;
  return VALUE_WORDS.has(text.slice(underscore + 1, to));
}
/** Last parts of a variable's name that say it holds a value, not that it addresses anyone. */
const VALUE_WORDS: ReadonlySet<string> = new Set(
  "KEY KEYS TOKEN TOKENS SECRET SECRETS PASSWORD PASSWD PASS PWD PIN URL URI DSN ID HOST PORT PATH DIR FILE USER USERNAME NAME REGION ENDPOINT MODEL VERSION ENV MODE LEVEL CONFIG TIMEOUT".split(" "),
);

export const NEGATION_AFTER_REACH = 12;
/**
 * Chat-template markers (`(system`, `[system`, `### system`): one that runs on into an
 * identifier (`(SYSTEM_PROMPT)`, `[system_info]`) names a variable in code, not a turn.
 */
export const TEMPLATE_CLASS = "template";
/**
 * Classes an UPPER_SNAKE_CASE identifier (an environment variable, a constant) does not carry:
 * GEMINI_API_KEY addresses no model and CI_DEPLOY_PASSWORD calls no tool, though its secret is
 * still a secret.
 */
export const NOT_IN_CONSTANTS = ["ai", TOOL_CLASS, EXEC_CLASS] as const;
/**
 * Steering what the model says ("tell the user", "reply with"): a quotation right after one is
 * the message the reader is told to give, not a quotation of someone's words (engine.ts).
 */
export const RELAY_CLASS = "reply";
/**
 * Phrases that make the quotation right before them an example: `"ignore the previous rules" and
 * similar`, `“忽略之前的指令”之类`, `「以前の指示を無視して」といった`. Quotative words that introduce
 * what is to be done (`という`, `라는`: "the instruction that says …") are not of it.
 */
export const EXAMPLE_AFTER_CLASS = "example-after";
/**
 * Phrases that make the quotation right after them an example: `a phrase such as "ignore your
 * instructions"`, `une phrase du type « Oublie tes instructions »`, `例如“忽略之前的指令”`. Words
 * that also mean "as" (`like`, `como`, `comme`, `как`: "classify it as «no risk»") are not of it.
 */
export const EXAMPLE_BEFORE_CLASS = "example-before";

/** An example phrase: where it lies, and whether it makes the quotation after it (or before it) an example. */
export interface ExampleCue {
  readonly start: number;
  readonly end: number;
  readonly before: boolean;
}
/**
 * In Japanese and Korean the negation is an ending of the verb it negates (無視しない, 전송하지
 * 않): only a verb ending may lie between them.
 */
export const NEGATION_AFTER_REACH_UNSPACED = 3;
/** Clause punctuation: a negation does not reach across it (ASCII and full-width). */
const CLAUSE_END = /[.,;:!?\n\u3001\u3002\uff0c\uff1b\uff1a\uff01\uff1f]/;
/** Flags of a phrase beyond its classes. */
const NEG_BEFORE = 1;
const NEG_AFTER = 2;
const NEG_CONDITION = 4;
const INERT = 8;

/** Classes the scanner reads itself: given the lowest bits, so each of their masks is one word. */
const SPECIAL_CLASSES: readonly string[] = [DISCUSS_CLASS, EXAMPLE_CLASS, ...VETOED, TOOL_CLASS, EXEC_CLASS, TEMPLATE_CLASS, ...NOT_IN_CONSTANTS, RELAY_CLASS, EXAMPLE_AFTER_CLASS, EXAMPLE_BEFORE_CLASS];

/** The masks of the classes the scanner reads itself (one word each: SPECIAL_CLASSES). */
interface SpecialMasks {
  readonly discuss: number;
  readonly example: number;
  readonly vetoed: number;
  /** 0 unless both the tool-name and the exec class are defined. */
  readonly tool: number;
  readonly exec: number;
  readonly template: number;
  readonly notInConstants: number;
  readonly relay: number;
  readonly exampleAfter: number;
  readonly exampleBefore: number;
}

export function compileCues(lexicons: readonly { path: string; doc: unknown }[], intentFiles: readonly { path: string; doc: unknown }[]): CueRules {
  const issues: RulePackIssue[] = [];
  const parsedLexicons: { path: string; classes: [string, string[]][] }[] = [];
  for (const file of lexicons) {
    const parsed = lexiconSchema.safeParse(file.doc);
    if (!parsed.success) {
      for (const i of parsed.error.issues) issues.push({ path: file.path, id: "(lexicon)", message: `${i.path.join(".")}: ${i.message}` });
      continue;
    }
    parsedLexicons.push({ path: file.path, classes: Object.entries(parsed.data.lexicon.classes) });
  }
  // Each class a bit: the scanner's own first, then the rest in the order the files name them.
  const named = new Set<string>();
  for (const lexicon of parsedLexicons) for (const [name] of lexicon.classes) if (name !== NEGATION_AFTER_CLASS && name !== CONDITION_CLASS && name !== INERT_CLASS) named.add(name);
  const classes = new Map<string, number>();
  for (const name of [...SPECIAL_CLASSES.filter((c) => named.has(c)), ...named]) if (!classes.has(name)) classes.set(name, classes.size);
  if (classes.size > MAX_CLASSES) issues.push({ path: parsedLexicons.at(-1)!.path, id: "(lexicon)", message: `${classes.size} cue classes, more than ${MAX_CLASSES}` });
  // phrase -> [class mask, stem, flags]
  const phrases = new Map<string, { mask: Mask; stem: boolean; flags: number }>();
  for (const lexicon of parsedLexicons) {
    for (const [name, list] of lexicon.classes) {
      const bit = classes.get(name);
      const mask = bit === undefined || bit >= MAX_CLASSES ? null : bitMask(bit);
      for (const raw of list) {
        const stem = raw.endsWith("*");
        const text = stem ? raw.slice(0, -1) : raw;
        const entry = phrases.get(text) ?? { mask: { lo: 0, hi: 0 }, stem, flags: 0 };
        phrases.set(text, entry);
        if (mask === null) {
          entry.flags |= name === CONDITION_CLASS ? NEG_CONDITION : name === INERT_CLASS ? INERT : name === NEGATION_AFTER_CLASS ? NEG_AFTER : 0;
          continue;
        }
        entry.mask.lo |= mask.lo;
        entry.mask.hi |= mask.hi;
        entry.stem ||= stem;
        if (name === NEGATION_CLASS) entry.flags |= NEG_BEFORE;
      }
    }
  }
  const intents: Intent[] = [];
  const ids = new Set<string>();
  for (const file of intentFiles) {
    const parsed = intentsSchema.safeParse(file.doc);
    if (!parsed.success) {
      for (const i of parsed.error.issues) issues.push({ path: file.path, id: "(intents)", message: `${i.path.join(".")}: ${i.message}` });
      continue;
    }
    for (const it of parsed.data.intents) {
      const bad = (message: string) => issues.push({ path: file.path, id: it.id, message });
      if (ids.has(it.id)) bad("duplicate intent id");
      ids.add(it.id);
      const maskOf = (names: readonly string[]): Mask => {
        const m = { lo: 0, hi: 0 };
        for (const n of names) {
          const bit = classes.get(n);
          if (bit === undefined) bad(`no lexicon defines the class ${n}`);
          else if (bit < MAX_CLASSES) {
            const b = bitMask(bit);
            m.lo |= b.lo;
            m.hi |= b.hi;
          }
        }
        return m;
      };
      const all = maskOf(it.all);
      const any = maskOf(it.any);
      intents.push({
        rule: { id: it.id, description: it.description, severity: it.severity, keywords: [], validator: undefined, weight: it.weight, group: CUE_GROUP, examples: it.examples, path: file.path },
        all,
        any,
        damp: maskOf(it.damp),
        own: { lo: all.lo | any.lo, hi: all.hi | any.hi },
        within: it.within,
      });
    }
  }
  if (issues.length > 0) throw new RulePackError(issues);
  // SPECIAL_CLASSES have bits below 32: one word each.
  const maskOf = (...names: readonly string[]): number => {
    let m = 0;
    for (const name of names) {
      const bit = classes.get(name);
      if (bit !== undefined) m |= 1 << bit;
    }
    return m;
  };
  const special: SpecialMasks = {
    discuss: maskOf(DISCUSS_CLASS),
    example: maskOf(EXAMPLE_CLASS),
    vetoed: maskOf(...VETOED),
    tool: classes.has(EXEC_CLASS) ? maskOf(TOOL_CLASS) : 0,
    exec: maskOf(EXEC_CLASS),
    template: maskOf(TEMPLATE_CLASS),
    notInConstants: maskOf(...NOT_IN_CONSTANTS),
    relay: maskOf(RELAY_CLASS),
    exampleAfter: maskOf(EXAMPLE_AFTER_CLASS),
    exampleBefore: maskOf(EXAMPLE_BEFORE_CLASS),
  };
  return buildCueScanner([...phrases.entries()].map(([text, e]) => ({ text, ...e })), intents, [...classes.keys()], special);
}

function buildCueScanner(phrases: readonly { text: string; mask: Mask; stem: boolean; flags: number }[], intents: readonly Intent[], classNames: readonly string[], special: SpecialMasks): CueRules {
  const { discuss: discussMask, example: exampleMask, vetoed: vetoedMask, tool: toolMask, exec: execMask, template: templateMask, notInConstants, relay: relayMask, exampleAfter: exampleAfterMask, exampleBefore: exampleBeforeMask } = special;
  const texts = phrases.map((p) => p.text);
  const lengths = Int32Array.from(texts, (t) => t.length);
  // Each phrase's classes: the low word (every class the scanner reads itself) and the high one.
  const masks = Int32Array.from(phrases, (p) => p.mask.lo);
  const masksHi = Int32Array.from(phrases, (p) => p.mask.hi);
  const flags = Uint8Array.from(phrases, (p) => p.flags);
  const afterReach = Uint8Array.from(phrases, (p) => (isSpacedWordChar(p.text.charCodeAt(0)) ? NEGATION_AFTER_REACH : NEGATION_AFTER_REACH_UNSPACED));
  const anyNegation = phrases.some((p) => p.flags & (NEG_BEFORE | NEG_AFTER | NEG_CONDITION)) && vetoedMask !== 0;
  const anyInert = phrases.some((p) => p.flags & INERT);
  const spaced = Uint8Array.from(texts, (t) => (t.includes(" ") ? 1 : 0));
  // Boundary checks per phrase: 1 = at the start, 2 = at the end, 4 = a discussion phrase, which
  // does not count inside a mail address or host name (`ops@attackers.example`), 8 = a template
  // marker, which does not count followed by `_` (an identifier).
  const bounds = Uint8Array.from(phrases, (p) => {
    const wordEnd = !p.stem && isSpacedWordChar(p.text.charCodeAt(p.text.length - 1));
    return (isSpacedWordChar(p.text.charCodeAt(0)) ? 1 : 0) | (wordEnd ? 2 : 0) | (p.mask.lo & (discussMask | exampleMask) ? 4 : 0) | (wordEnd && p.mask.lo & templateMask ? 8 : 0);
  });
  const maxWithin = intents.reduce((m, i) => Math.max(m, i.within), 0);
  // Words of the phrases; a stem's last word marked with `*` (readings.ts reads a leetspeak word
  // as any word it starts: "d1sr3g4rd1ng" is "disregard*").
  // By hand: a split per phrase cost ~15 ms of start-up over the built-in pack's phrases.
  const vocabulary = new Set<string>();
  for (const p of phrases) {
    const t = p.text;
    let start = -1;
    for (let i = 0; i <= t.length; i++) {
      const c = i < t.length ? t.charCodeAt(i) : 0;
      if (c >= 97 && c <= 122) {
        if (start < 0) start = i;
        continue;
      }
      if (start >= 0 && i - start >= 3) {
        const w = t.slice(start, i);
        vocabulary.add(p.stem && i === t.length ? `${w}*` : w);
      }
      start = -1;
    }
  }

  // ASCII phrases: one complete DFA (keywords.ts), a table lookup per character. Phrases with
  // other characters (accented Latin, Cyrillic, CJK, Hangul): a sparse automaton of their own,
  // run only on text that has such a character. In one table their thousands of letters would
  // widen every row (hundreds of megabytes for eight languages).
  const asciiIds: number[] = [];
  const wideIds: number[] = [];
  texts.forEach((t, k) => (/[^\x00-\x7f]/.test(t) ? wideIds : asciiIds).push(k));
  const asciiPhrases = asciiIds.map((k) => texts[k]!);
  const ascii = cachedAutomaton("cue-dfa-runs", asciiPhrases, () => foldSpaceRuns(buildDfa(asciiPhrases)), DFA_CODEC);
  const widePhrases = wideIds.map((k) => texts[k]!);
  const sparse = sparseScanner(cachedAutomaton("cue-sparse", widePhrases, () => buildSparse(widePhrases), SPARSE_CODEC));

  // For each damping mask of the intents (its slot), the running count of the hits it damps
  // (counts[h]: those before hit h), made once per scan when an intent first asks.
  const dampSlots = new Map<string, number>();
  const dampSlot = new Map<Intent, number>();
  for (const it of intents) {
    const key = `${it.damp.lo},${it.damp.hi}`;
    if (!dampSlots.has(key)) dampSlots.set(key, dampSlots.size);
    dampSlot.set(it, dampSlots.get(key)!);
  }
  const dampCounts: (Int32Array | null)[] = new Array(dampSlots.size).fill(null);
  // Reused between scans: hit starts and ends (offsets in the text), where they are for the
  // windows (`places`: the end plus BLANK_LINE for each blank line before it), and their masks.
  let starts = new Int32Array(1024);
  let ends = new Int32Array(1024);
  // Float64: separators add SEPARATE each, and a body can hold very many segments.
  let places = new Float64Array(1024);
  let hitMasks = new Int32Array(1024);
  let hitMasksHi = new Int32Array(1024);
  let hitPhrases = new Int32Array(1024);
  let n = 0;

  // The intents a phrase's classes can complete, found when the phrase is first hit (a hit may
  // have lost classes since: its own are checked too).
  const phraseIntents: (Intent[] | undefined)[] = new Array(phrases.length);
  const intentsOf = (k: number): Intent[] =>
    (phraseIntents[k] ??= intents.filter((it) => ((masks[k]! & it.own.lo) | (masksHi[k]! & it.own.hi)) !== 0));

  /** Records phrase k ending at i (inclusive) when its word boundaries hold. */
  const hit = (text: string, k: number, i: number) => {
    const b = bounds[k]!;
    if (b & 2 && i + 1 < text.length && (b & 4 ? continuesWord(text, i + 1) : isSpacedWordChar(text.charCodeAt(i + 1)) || (b & 8 && text.charCodeAt(i + 1) === 95))) return;
    // A phrase with a space may have matched a longer run of white space.
    const start = spaced[k] === 1 ? startOf(text, i, texts[k]!) : i + 1 - lengths[k]!;
    if (b & 1 && start > 0 && (b & 4 ? extendsWord(text.charCodeAt(start - 1)) : isSpacedWordChar(text.charCodeAt(start - 1)))) return;
    if (b & 4 && inLink(text, start, i + 1)) return;
    if (n === starts.length) {
      starts = grow(starts);
      ends = grow(ends);
      places = growFloat(places);
      hitMasks = grow(hitMasks);
      hitMasksHi = grow(hitMasksHi);
      hitPhrases = grow(hitPhrases);
    }
    starts[n] = start;
    ends[n] = i + 1;
    hitMasks[n] = masks[k]!;
    hitMasksHi[n] = masksHi[k]!;
    hitPhrases[n] = k;
    n++;
  };

  // The ASCII automaton's class of every UTF-16 code unit: white space (Unicode's) as a space,
  // curly apostrophes as `'`, upper case as lower, anything no phrase holds as 0. A run of white
  // space reads as one space: the automaton stays where the first one took it (foldSpaceRuns).
  const unitClass = new Uint16Array(65536);
  for (let c = 0; c < 65536; c++) {
    const f = foldUnit(c);
    unitClass[c] = f < 128 ? ascii.classOf[f]! : 0;
  }

  const maxAsciiLength = asciiPhrases.reduce((m, t) => Math.max(m, t.length), 0);

  /** Records the phrases of output row `row` (positive) ending at i. */
  const outputs = (text: string, row: number, i: number) => {
    const { width, outAt, outList } = ascii;
    const o = outAt[(row / width) | 0]!;
    for (let j = o + 1, end = o + 1 + outList[o]!; j < end; j++) hit(text, asciiIds[outList[j]!]!, i);
  };

  /** From `at`, `count` characters as the automaton reads them (a run of white space is one) back (`step` -1) or forward (1). */
  const readAcross = (text: string, at: number, count: number, step: 1 | -1): number => {
    let j = at;
    for (let read = 0; read < count && (step < 0 ? j > 0 : j < text.length); ) {
      const c = text.charCodeAt(step < 0 ? j - 1 : j);
      const next = text.charCodeAt(step < 0 ? j - 2 : j + 1);
      j += step;
      if (!isSpace(c) || !isSpace(next)) read++;
    }
    return j;
  };

  /**
   * Where a chain that records from `at` on must start: back from it over more than
   * maxAsciiLength characters as the automaton reads them, so that every phrase ending at `at`
   * or later is read whole.
   */
  const warmFrom = (text: string, at: number): number => readAcross(text, at, maxAsciiLength + 1, -1);

  /**
   * The ASCII phrases in `text`, in order of end: the automaton walked in four chains
   * (keywords.ts walkChains), each from far enough before its quarter (warmFrom).
   */
  const findAscii = (text: string) => walkChains(text, ascii.delta, unitClass, (at) => warmFrom(text, at), (row, i) => outputs(text, row, i));

  const maxWideLength = widePhrases.reduce((m, t) => Math.max(m, t.length), 0);
  /**
   * The other phrases in `text`, in order of end. Each has a character beyond ASCII that no
   * folding makes ASCII (é, ж, 指), and a match lies within maxWideLength characters (as the
   * automaton reads them) of it: only the stretches around such characters are walked, merged
   * where they touch, so a page with one © in it is not walked whole. Characters less than twice
   * that far apart are one stretch without measuring.
   */
  const findWide = (text: string) => {
    const reach = maxWideLength;
    let first = -1;
    let last = -1;
    let from = -1;
    let to = -1;
    const close = () => {
      const a = readAcross(text, first, reach, -1);
      const b = readAcross(text, last, reach, 1);
      if (to >= 0 && a <= to) to = Math.max(to, b);
      else {
        if (to >= 0) walkWide(text, from, to);
        from = a;
        to = b;
      }
    };
    const visit = (k: number) => {
      if (foldUnit(text.charCodeAt(k)) < 128) return;
      if (last >= 0 && k - last <= 2 * reach) {
        last = k;
        return;
      }
      if (last >= 0) close();
      first = last = k;
    };
    // The characters beyond ASCII: those of its few runs (wideRuns), or found one by one.
    const runs = wideRuns(text);
    if (runs !== null) {
      for (let r = 0; r < runs.length; r += 2) for (let k = runs[r]!, end = runs[r + 1]!; k < end; k++) visit(k);
    } else for (let k = 0, n = text.length; k < n; k++) if (text.charCodeAt(k) >= 128) visit(k);
    if (last >= 0) close();
    if (to >= 0) walkWide(text, from, to);
  };

  /** The other phrases in `text[from, to)`, the automaton started there, in order of end. */
  const walkWide = (text: string, from: number, to: number) => {
    const { step, fail, outStart, outIds, lower } = sparse;
    let state = 0;
    let prevSpace = true;
    for (let i = from, len = to; i < len; i++) {
      let c = foldUnit(text.charCodeAt(i));
      if (c === 32) {
        if (prevSpace) continue;
        prevSpace = true;
      } else {
        prevSpace = false;
        c = c < 128 ? (c >= 65 && c <= 90 ? c + 32 : c) : (lower.get(c) ?? c);
      }
      let t = step(state, c);
      while (t < 0 && state !== 0) {
        state = fail[state]!;
        t = step(state, c);
      }
      state = t < 0 ? 0 : t;
      for (let j = outStart[state]!, end = outStart[state + 1]!; j < end; j++) hit(text, wideIds[outIds[j]!]!, i);
    }
  };

  /**
   * Where each hit is for the windows (`places`, hits in order of end): its end, plus what the
   * text puts between it and the text's start (distanceMarks).
   */
  const placeHits = (text: string) => {
    const lists = distanceMarks(text);
    const next = lists.map(() => 0);
    let shift = 0;
    for (let h = 0; h < n; h++) {
      const last = ends[h]! - 1;
      for (let l = 0; l < lists.length; l++) {
        const { at, amount } = lists[l]!;
        let k = next[l]!;
        while (k < at.length && at[k]! <= last) {
          shift += amount;
          k++;
        }
        next[l] = k;
      }
      places[h] = ends[h]! + shift;
    }
  };

  /**
   * Every cue phrase in `text`, in order of end; returns the count. The last text's hits are
   * kept: the engine asks for the discussion cues and then scans the same text.
   */
  let lastText: string | null = null;
  const findCues = (text: string): number => {
    if (text === lastText) return n;
    lastText = text;
    n = 0;
    findAscii(text);
    if (wideIds.length > 0 && !isAscii(text)) {
      const asciiHits = n;
      findWide(text);
      if (asciiHits > 0 && n > asciiHits) sortHits();
    }
    if (n > 0) placeHits(text);
    if (anyInert) clearInert();
    if (anyNegation) applyVetoes(text);
    if (toolMask !== 0) unverbToolNames(text);
    if (notInConstants !== 0) quietConstants(text);
    if (templateMask !== 0) quietTranscriptLabels(text);
    return n;
  };

  /**
   * Takes every class from the cues in the speaker labels of a transcript (transcriptsOf):
   * in a support chat exported as text, `Assistant:` is the document's format, neither a spoofed
   * turn nor an AI addressed. A label written once in it (`System:` slipped into a chat) keeps
   * its classes. Read only when a turn marker starts two lines or more.
   */
  const quietTranscriptLabels = (text: string) => {
    let markers = 0;
    for (let h = 0; h < n && markers < 2; h++) if ((hitMasks[h]! & templateMask) !== 0 && startsLine(text, starts[h]!)) markers++;
    if (markers < 2) return;
    const transcripts = transcriptsOf(text);
    if (transcripts.length === 0) return;
    // The cues inside a speaker's label (which starts its line: a cue starting within a label's
    // length of a line break or the text's start), on a line of the transcript the speaker speaks in.
    for (let h = 0; h < n; h++) {
      const at = starts[h]!;
      // The first transcript ending after the hit starts: the only one that can hold it.
      const transcript = transcripts[partitionPoint(transcripts.length, (i) => transcripts[i]!.end <= at)];
      if (transcript === undefined || at < transcript.start) continue;
      let line = at;
      while (line > 0 && at - line < LABEL_REACH && text.charCodeAt(line - 1) !== 10) line--;
      if (line > 0 && text.charCodeAt(line - 1) !== 10) continue;
      const [label, end] = lineLabelAt(text, line);
      if (ends[h]! <= end && transcript.speakers.has(label)) hitMasks[h] = hitMasksHi[h] = 0;
    }
  };

  /**
   * Takes every class from the hits an inert phrase overlaps (INERT_CLASS). The inert spans are
   * merged first and each hit is looked up among them, so a text full of inert phrases costs
   * n log n, not n squared.
   */
  const clearInert = () => {
    const spans: [number, number][] = [];
    for (let h = 0; h < n; h++) if ((flags[hitPhrases[h]!]! & INERT) !== 0) spans.push([starts[h]!, ends[h]!]);
    if (spans.length === 0) return;
    const merged = mergeSpans(spans);
    for (let k = 0; k < n; k++) {
      // The last merged span that starts before this hit ends: the only one that can overlap it.
      const at = partitionPoint(merged.length, (i) => merged[i]![0] < ends[k]!) - 1;
      if (at >= 0 && merged[at]![1] > starts[k]!) hitMasks[k] = hitMasksHi[k] = 0;
    }
  };

  /**
   * A tool's name is not an order to use it: the verbs inside `delete_rows` or `run_shell`
   * (`delete`, `run`, `shell`) lose the EXEC_CLASS of their hits, so a tool-call intent needs an
   * order of its own (call, invoke, use the tool) besides the name.
   */
  const unverbToolNames = (text: string) => {
    // Each name once: a hit inside the name just done is done (a name of many tool words would
    // otherwise be walked once per word).
    let from = -1;
    let to = -1;
    for (let h = 0; h < n; h++) {
      if ((hitMasks[h]! & toolMask) === 0 || (starts[h]! >= from && ends[h]! <= to)) continue;
      [from, to] = identifierAround(text, starts[h]!, ends[h]!);
      // Hits are in order of end: those inside the name end within it.
      for (let k = h; k >= 0 && ends[k]! > from; k--) if (starts[k]! >= from && (hitMasks[k]! & toolMask) === 0) hitMasks[k] = hitMasks[k]! & ~execMask;
      for (let k = h + 1; k < n && starts[k]! < to; k++) if (starts[k]! >= from && ends[k]! <= to && (hitMasks[k]! & toolMask) === 0) hitMasks[k] = hitMasks[k]! & ~execMask;
    }
  };

  /**
   * Takes NOT_IN_CONSTANTS from the hits inside a variable's name (isVariableName): GEMINI_API_KEY
   * addresses no model; AI_ASSISTANT: before prose does.
   */
  const quietConstants = (text: string) => {
    // Each name once (hits come in order of end; those inside the last name share its answer).
    let from = -1;
    let to = -1;
    let variable = false;
    for (let h = 0; h < n; h++) {
      if ((hitMasks[h]! & notInConstants) === 0) continue;
      if (starts[h]! < from || ends[h]! > to) {
        [from, to] = identifierAround(text, starts[h]!, ends[h]!);
        variable = isVariableName(text, from, to);
      }
      if (variable) hitMasks[h] = hitMasks[h]! & ~notInConstants;
    }
  };

  /**
   * Takes the VETOED classes from the cue a negation governs (NEGATION_CLASS, NEGATION_AFTER_CLASS):
   * the nearest one with such a class after it (before it), so "don't forget to send" vetoes
   * only "forget".
   */
  const applyVetoes = (text: string) => {
    const clear = (from: number, to: number) => from <= to && !CLAUSE_END.test(text.slice(from, to));
    /** Whether a condition phrase covers negation hit h. */
    const conditional = (h: number): boolean => {
      for (let k = h + 1; k < n && ends[k]! <= ends[h]! + 32; k++) if (flags[hitPhrases[k]!]! & NEG_CONDITION && starts[k]! <= starts[h]!) return true;
      for (let k = h - 1; k >= 0 && ends[k]! === ends[h]!; k--) if (flags[hitPhrases[k]!]! & NEG_CONDITION && starts[k]! <= starts[h]!) return true;
      return false;
    };
    for (let h = 0; h < n; h++) {
      const f = flags[hitPhrases[h]!]! & (NEG_BEFORE | NEG_AFTER);
      if (f === 0 || conditional(h)) continue;
      if (f & NEG_BEFORE) {
        const end = ends[h]!;
        // Hits are in order of end: a cue starting within reach after the negation ends within
        // reach plus its own length. The governed cue starts first; cues starting with it go too.
        let first = -1;
        for (let k = h + 1; k < n && ends[k]! <= end + NEGATION_REACH + 64; k++) {
          const s = starts[k]!;
          if (hitMasks[k]! & vetoedMask && s >= end && s - end <= NEGATION_REACH && (first < 0 || s < first)) first = s;
        }
        if (first >= 0 && clear(end, first))
          for (let k = h + 1; k < n && ends[k]! <= end + NEGATION_REACH + 64; k++) if (starts[k] === first) hitMasks[k] = hitMasks[k]! & ~vetoedMask;
      }
      if (f & NEG_AFTER) {
        const start = starts[h]!;
        const reach = afterReach[hitPhrases[h]!]!;
        let last = -1;
        for (let k = h - 1; k >= 0 && ends[k]! >= start - NEGATION_AFTER_REACH - 64; k--) {
          const e = ends[k]!;
          if (hitMasks[k]! & vetoedMask && e <= start && start - e <= reach && e > last) last = e;
        }
        if (last >= 0 && clear(last, start))
          for (let k = h - 1; k >= 0 && ends[k]! >= start - NEGATION_AFTER_REACH - 64; k--) if (ends[k] === last) hitMasks[k] = hitMasks[k]! & ~vetoedMask;
      }
    }
  };

  /** Puts the hits of both passes in order of end. */
  const sortHits = () => {
    const order = Array.from({ length: n }, (_, h) => h).sort((x, y) => ends[x]! - ends[y]! || x - y);
    const s = starts.slice(0, n);
    const e = ends.slice(0, n);
    const m = hitMasks.slice(0, n);
    const mh = hitMasksHi.slice(0, n);
    const k = hitPhrases.slice(0, n);
    order.forEach((from, to) => {
      starts[to] = s[from]!;
      ends[to] = e[from]!;
      hitMasks[to] = m[from]!;
      hitMasksHi[to] = mh[from]!;
      hitPhrases[to] = k[from]!;
    });
  };

  const classCounts = new Int32Array(MAX_CLASSES);
  // The hits of each class in order (classHits[classStart[c] .. classStart[c + 1]]), made once per
  // scan when an intent first asks (classHitsReady), and per reach (the intents' `within`, a
  // slot each) and class, a cursor at the first of them that can still lie in that reach: reaches
  // only move forward, so an intent's span costs a few steps, not a walk over every hit in it
  // (dense text has hundreds).
  const reachSlots = new Map<number, number>();
  for (const it of intents) if (!reachSlots.has(it.within)) reachSlots.set(it.within, reachSlots.size);
  const reachSlot = new Map<Intent, number>(intents.map((it) => [it, reachSlots.get(it.within)!]));
  const cursors = new Int32Array(reachSlots.size * MAX_CLASSES);
  const classStart = new Int32Array(MAX_CLASSES + 1);
  let classHits = new Int32Array(1024);
  let classHitsReady = false;
  // Every completion of the last text scan() read (completionsOf).
  let completionsText: string | null = null;
  let completions = new Int32Array(64);
  let completionCount = 0;

  return {
    rules: intents.map((i) => i.rule),
    vocabulary,
    completionsOf(text: string): Int32Array {
      if (text !== completionsText) scan(text);
      return completions.slice(0, completionCount * 3);
    },
    cuesOf(text: string) {
      const count = findCues(text);
      const out: { start: number; end: number; classes: string[] }[] = [];
      for (let h = 0; h < count; h++) out.push({ start: starts[h]!, end: ends[h]!, classes: classNames.filter((_, bit) => (bit < 32 ? hitMasks[h]! : hitMasksHi[h]!) & (1 << bit)) });
      return out;
    },
    relayCues(text: string): number[] {
      if (relayMask === 0) return [];
      const count = findCues(text);
      const out: number[] = [];
      for (let h = 0; h < count; h++) if (hitMasks[h]! & relayMask) out.push(ends[h]!);
      return out;
    },
    exampleCues(text: string): ExampleCue[] {
      const either = exampleAfterMask | exampleBeforeMask;
      if (either === 0) return [];
      const count = findCues(text);
      const out: ExampleCue[] = [];
      for (let h = 0; h < count; h++) if (hitMasks[h]! & either) out.push({ start: starts[h]!, end: ends[h]!, before: (hitMasks[h]! & exampleBeforeMask) !== 0 });
      return out;
    },
    discussionCues(text: string): DiscussionCue[] {
      const either = discussMask | exampleMask;
      if (either === 0) return [];
      const count = findCues(text);
      const out: DiscussionCue[] = [];
      for (let h = 0; h < count; h++) {
        const m = hitMasks[h]!;
        if (m & either) out.push({ start: starts[h]!, end: ends[h]!, phrase: hitPhrases[h]!, strong: (m & discussMask) !== 0 });
      }
      return out;
    },
    scan,
  };

  /** Whether the classes `lo`/`hi` hold every class of `it.all` and one of `it.any` (if any). */
  function completes(it: Intent, lo: number, hi: number): boolean {
    const { all, any } = it;
    return (lo & all.lo) === all.lo && (hi & all.hi) === all.hi && ((any.lo === 0 && any.hi === 0) || (lo & any.lo) !== 0 || (hi & any.hi) !== 0);
  }

  function scan(text: string): Finding[] {
    const count = findCues(text);
    dampCounts.fill(null);
    classHitsReady = false;
    completionsText = text;
    completionCount = 0;
    if (count === 0) return [];
    const best = new Map<string, Finding & { weight: number }>();
    classCounts.fill(0);
    // The classes in the window, low and high word.
    let lo = 0;
    let hi = 0;
    let left = 0;
    for (let r = 0; r < count; r++) {
      const at = places[r]!;
      for (let m = hitMasks[r]!, bit = 0; m !== 0; m >>>= 1, bit++) if (m & 1 && classCounts[bit]!++ === 0) lo |= 1 << bit;
      for (let m = hitMasksHi[r]!, bit = 0; m !== 0; m >>>= 1, bit++) if (m & 1 && classCounts[32 + bit]!++ === 0) hi |= 1 << bit;
      while (places[left]! < at - maxWithin) {
        for (let m = hitMasks[left]!, bit = 0; m !== 0; m >>>= 1, bit++) if (m & 1 && --classCounts[bit]! === 0) lo &= ~(1 << bit);
        for (let m = hitMasksHi[left]!, bit = 0; m !== 0; m >>>= 1, bit++) if (m & 1 && --classCounts[32 + bit]! === 0) hi &= ~(1 << bit);
        left++;
      }
      // An intent is complete at its last cue: only intents this cue belongs to can be.
      const rLo = hitMasks[r]!;
      const rHi = hitMasksHi[r]!;
      if ((rLo | rHi) === 0) continue;
      for (const it of intentsOf(hitPhrases[r]!)) {
        if (((rLo & it.own.lo) | (rHi & it.own.hi)) === 0 || !completes(it, lo, hi)) continue;
        // The intent's own reach, narrower than the window: recompute over its span.
        const span = intentSpan(it, r, count);
        if (span === null) continue;
        const weight = span.damped ? Math.ceil(it.rule.weight! / 2) : it.rule.weight!;
        if (completionCount * 3 + 3 > completions.length) completions = grow(completions);
        completions[completionCount * 3] = span.start;
        completions[completionCount * 3 + 1] = ends[r]!;
        completions[completionCount * 3 + 2] = weight;
        completionCount++;
        const prior = best.get(it.rule.id);
        if (prior !== undefined && prior.weight >= weight) continue;
        best.set(it.rule.id, { rule: it.rule.id, start: span.start, end: ends[r]!, preview: previewOf(text.slice(span.start, ends[r]!)), weight });
      }
    }
    return [...best.values()];
  }

  /** The running count of the hits `it` is damped by, for the hits of the scan under way (dampCounts). */
  function dampCountsOf(it: Intent, count: number): Int32Array {
    const slot = dampSlot.get(it)!;
    let counts = dampCounts[slot];
    if (counts === null || counts === undefined) {
      const { lo, hi } = it.damp;
      counts = new Int32Array(count + 1);
      for (let h = 0; h < count; h++) counts[h + 1] = counts[h]! + (((hitMasks[h]! & lo) | (hitMasksHi[h]! & hi)) !== 0 ? 1 : 0);
      dampCounts[slot] = counts;
    }
    return counts;
  }

  /** Fills classStart and classHits from the scan's hits, and puts every cursor at its class's first hit. */
  function indexClasses(count: number): void {
    classStart.fill(0);
    for (let h = 0; h < count; h++) {
      for (let m = hitMasks[h]!; m !== 0; m &= m - 1) classStart[32 - Math.clz32(m & -m)]!++;
      for (let m = hitMasksHi[h]!; m !== 0; m &= m - 1) classStart[64 - Math.clz32(m & -m)]!++;
    }
    for (let c = 0; c < MAX_CLASSES; c++) classStart[c + 1]! += classStart[c]!;
    if (classHits.length < classStart[MAX_CLASSES]!) classHits = new Int32Array(classStart[MAX_CLASSES]! * 2);
    const fill = classStart.slice(0, MAX_CLASSES);
    for (let h = 0; h < count; h++) {
      for (let m = hitMasks[h]!; m !== 0; m &= m - 1) classHits[fill[31 - Math.clz32(m & -m)]!++] = h;
      for (let m = hitMasksHi[h]!; m !== 0; m &= m - 1) classHits[fill[63 - Math.clz32(m & -m)]!++] = h;
    }
    for (let slot = 0; slot < reachSlots.size; slot++) cursors.set(classStart.subarray(0, MAX_CLASSES), slot * MAX_CLASSES);
    classHitsReady = true;
  }

  /**
   * The first hit of class c placed at or after `floor` and at or before hit r, or -1: the
   * cursor of slot `base` for c moves forward over the hits placed before `floor` (placed
   * before every later reach too, since places rise with the hits and scan() asks in order).
   */
  function firstInReach(base: number, c: number, floor: number, r: number): number {
    const end = classStart[c + 1]!;
    let i = cursors[base + c]!;
    while (i < end && places[classHits[i]!]! < floor) i++;
    cursors[base + c] = i;
    return i < end && classHits[i]! <= r ? classHits[i]! : -1;
  }

  /** Whether every class of `m` has a hit in the reach (firstInReach), or with `some`, one of them does. */
  function inReach(m: Mask, some: boolean, base: number, floor: number, r: number): boolean {
    for (let w = m.lo; w !== 0; w &= w - 1) if ((firstInReach(base, 31 - Math.clz32(w & -w), floor, r) >= 0) === some) return some;
    for (let w = m.hi; w !== 0; w &= w - 1) if ((firstInReach(base, 63 - Math.clz32(w & -w), floor, r) >= 0) === some) return some;
    return !some;
  }

  /**
   * The cues of `it` in its reach ending at hit r (the hits placed within `it.within` before
   * it): where the first of its own starts, and whether a damping cue lies within the reach on
   * either side; null when its classes are not all there.
   */
  function intentSpan(it: Intent, r: number, count: number): { start: number; damped: boolean } | null {
    if (!classHitsReady) indexClasses(count);
    const at = places[r]!;
    const { all, any, own, damp } = it;
    const base = reachSlot.get(it)! * MAX_CLASSES;
    const floor = at - it.within;
    if (!inReach(all, false, base, floor, r) || (!isEmpty(any) && !inReach(any, true, base, floor, r))) return null;
    // The first of its own cues (hit r is one).
    let first = r;
    for (let w = own.lo; w !== 0; w &= w - 1) {
      const h = firstInReach(base, 31 - Math.clz32(w & -w), floor, r);
      if (h >= 0 && h < first) first = h;
    }
    for (let w = own.hi; w !== 0; w &= w - 1) {
      const h = firstInReach(base, 63 - Math.clz32(w & -w), floor, r);
      if (h >= 0 && h < first) first = h;
    }
    const start = starts[first]!;
    let damped = false;
    if (!isEmpty(damp)) {
      // Before the first cue and after the last one, as far as the intent reaches: the hits
      // from the first placed at or after the first cue's place less the reach, to the last
      // placed at or before the last cue's plus the reach (places rise with the hits), counted
      // from the damping hits' running count rather than walked (dense text has hundreds in reach).
      const counts = dampCountsOf(it, count);
      const from = partitionPoint(first, (h) => places[h]! < places[first]! - it.within);
      const to = partitionPoint(count, (h) => places[h]! <= at + it.within);
      damped = counts[to]! - counts[from]! > 0;
    }
    return { start, damped };
  }
}

/**
 * An Aho-Corasick automaton kept sparse, for phrases over large alphabets (CJK, Hangul,
 * Cyrillic): each state's edges sorted by character in flat arrays, found by binary search
 * (`step`), failure links, and each state's outputs (`outStart[s] .. outStart[s + 1]` index
 * `outIds`, its own and its failure states'). `lower` maps the upper case of the phrases'
 * letters to them.
 */
interface Sparse {
  /** The state after `s` on code unit `c`, or -1 when `s` has no such edge. */
  readonly step: (s: number, c: number) => number;
  readonly fail: Int32Array;
  readonly outStart: Int32Array;
  readonly outIds: Int32Array;
  readonly lower: Map<number, number>;
}

/** A Sparse as plain data (scan/automata-store.ts): its edges, `edgeStart[s] .. edgeStart[s + 1]` sorted by character. */
interface SparseData {
  readonly edgeStart: Int32Array;
  readonly edgeChar: Uint16Array;
  readonly edgeTo: Int32Array;
  readonly fail: Int32Array;
  readonly outStart: Int32Array;
  readonly outIds: Int32Array;
  readonly lower: Map<number, number>;
}

const SPARSE_CODEC = {
  toData: (d: SparseData): AutomatonData => ({ ...d }),
  fromData: (d: AutomatonData): SparseData => d as unknown as SparseData,
};

/** The automaton over its data. */
function sparseScanner(d: SparseData): Sparse {
  return { step: sparseStep(d.edgeStart, d.edgeChar, d.edgeTo), fail: d.fail, outStart: d.outStart, outIds: d.outIds, lower: d.lower };
}

/** A state's edge on code unit c, by binary search of its edges (-1: none). */
function sparseStep(edgeStart: Int32Array, edgeChar: Uint16Array, edgeTo: Int32Array): (s: number, c: number) => number {
  return (s, c) => {
    let lo = edgeStart[s]!;
    let hi = edgeStart[s + 1]! - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = edgeChar[mid]!;
      if (m === c) return edgeTo[mid]!;
      if (m < c) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  };
}

function buildSparse(phrases: readonly string[]): SparseData {
  // The trie's edges in one map while building, keyed state * 65536 + code unit.
  const edges = new Map<number, number>();
  const lower = new Map<number, number>();
  let states = 1;
  const ends: number[] = [];
  phrases.forEach((p) => {
    let s = 0;
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i);
      if (c >= 128) {
        const upper = String.fromCharCode(c).toUpperCase();
        if (upper.length === 1 && upper.charCodeAt(0) !== c) lower.set(upper.charCodeAt(0), c);
      }
      const key = s * 65536 + c;
      let t = edges.get(key);
      if (t === undefined) edges.set(key, (t = states++));
      s = t;
    }
    ends.push(s);
  });
  const keys = [...edges.keys()].sort((x, y) => x - y);
  const edgeStart = new Int32Array(states + 1);
  const edgeChar = new Uint16Array(keys.length);
  const edgeTo = new Int32Array(keys.length);
  keys.forEach((key, i) => {
    const s = Math.floor(key / 65536);
    edgeStart[s + 1]!++;
    edgeChar[i] = key % 65536;
    edgeTo[i] = edges.get(key)!;
  });
  for (let s = 0; s < states; s++) edgeStart[s + 1]! += edgeStart[s]!;
  const step = sparseStep(edgeStart, edgeChar, edgeTo);
  // Breadth first: failure links.
  const fail = new Int32Array(states);
  const order = new Int32Array(states);
  let tail = 0;
  for (let e = edgeStart[0]!; e < edgeStart[1]!; e++) order[tail++] = edgeTo[e]!;
  for (let head = 0; head < tail; head++) {
    const s = order[head]!;
    for (let e = edgeStart[s]!; e < edgeStart[s + 1]!; e++) {
      const c = edgeChar[e]!;
      const t = edgeTo[e]!;
      let f = fail[s]!;
      let next = step(f, c);
      while (next < 0 && f !== 0) {
        f = fail[f]!;
        next = step(f, c);
      }
      fail[t] = next < 0 ? 0 : next;
      order[tail++] = t;
    }
  }
  // Outputs: each state's own phrases, then its failure chain's.
  const own: number[][] = [];
  ends.forEach((s, id) => (own[s] ??= []).push(id));
  const outStart = new Int32Array(states + 1);
  const list: number[] = [];
  for (let s = 0; s < states; s++) {
    outStart[s] = list.length;
    for (let f = s; f !== 0; f = fail[f]!) if (own[f] !== undefined) list.push(...own[f]!);
  }
  outStart[states] = list.length;
  return { edgeStart, edgeChar, edgeTo, fail, outStart, outIds: Int32Array.from(list), lower };
}

/** Where (in order) one kind of mark lies, and how far it puts what follows. */
export interface MarkList {
  readonly at: readonly number[];
  readonly amount: number;
}

/**
 * What puts two cues further apart than their distance in characters, one list per kind: a
 * blank line (the second line break of a run of white space) after a paragraph of PARAGRAPH
 * characters or more that are not white space, since the start or the last such blank line:
 * BLANK_LINE; the end of a JSON string (`",` `":`, at the `,` or `:`): JSON_FIELD; a NUL:
 * SEPARATE. Found with indexOf, not a pass of our own over every character.
 */
export function distanceMarks(text: string): MarkList[] {
  const blank: number[] = [];
  const len = text.length;
  // Blank lines. `counted` non-space characters lie in [last blank line + 1, countedTo): counting
  // stops at PARAGRAPH, so each character is read at most once.
  let counted = 0;
  let countedTo = 0;
  for (let q = text.indexOf("\n"); q >= 0; ) {
    // q is the first line break of a run of white space; the run's next one, if any, at r.
    let r = q + 1;
    while (r < len && text.charCodeAt(r) !== 10 && isSpace(text.charCodeAt(r))) r++;
    if (r >= len) break;
    if (text.charCodeAt(r) !== 10) {
      q = text.indexOf("\n", r);
      continue;
    }
    while (counted < PARAGRAPH && countedTo < q) if (!isSpace(text.charCodeAt(countedTo++))) counted++;
    if (counted >= PARAGRAPH) {
      blank.push(r);
      counted = 0;
      countedTo = r + 1;
    }
    // Further line breaks of the same run are no new paragraph.
    while (r < len && isSpace(text.charCodeAt(r))) r++;
    q = text.indexOf("\n", r);
  }
  const all = (needle: string, offset: number): number[] => {
    const at: number[] = [];
    for (let k = text.indexOf(needle); k >= 0; k = text.indexOf(needle, k + 1)) at.push(k + offset);
    return at;
  };
  return [
    { at: blank, amount: BLANK_LINE },
    { at: all('",', 1), amount: JSON_FIELD },
    { at: all('":', 1), amount: JSON_FIELD },
    { at: all("\u0000", 0), amount: SEPARATE },
  ];
}

/**
 * The automaton with a run of white space read as one space: every state a space leads to (its
 * phrases end in a space, so none ends there) stays where it is on another.
 */
function foldSpaceRuns(dfa: Dfa): Dfa {
  const space = dfa.classOf[32]!;
  if (space === 0) return dfa;
  const { width, delta } = dfa;
  for (let row = 0; row < delta.length; row += width) {
    const to = delta[row + space]!;
    // Targets of a space are stored as rows (positive: no phrase ends in a space).
    if (to > 0) delta[to + space] = to;
  }
  return dfa;
}

/** Where `phrase`, matched with white space runs folded, starts if it ends at `end` (inclusive). */
function startOf(text: string, end: number, phrase: string): number {
  let i = end;
  for (let p = phrase.length - 1; p >= 0 && i >= 0; p--) {
    if (phrase.charCodeAt(p) === 32) while (i > 0 && isSpace(text.charCodeAt(i - 1))) i--;
    i--;
  }
  return Math.max(0, i + 1);
}

/** How far into its line a speaker's label reaches (LABEL_LINE: markup, 32 characters, a colon). */
const LABEL_REACH = 40;
/** Fewest labelled lines of a transcript. */
const TRANSCRIPT_TURNS = 4;
/** Most lines of a turn after its label line (an answer of a few paragraphs). */
const TURN_LINES = 3;
/** A line's speaker label: up to four words (or 32 characters) and a colon, after list or quote markup. */
const LABEL_LINE = /^[ \t>*_-]{0,6}([^\s:：*_][^:：\n]{0,31}?)[*_ \t]*[:：]/;

/** Whether `at` is the first character of its line but for list, quote or emphasis markup. */
function startsLine(text: string, at: number): boolean {
  for (let k = at - 1; k >= 0 && at - k <= 7; k--) {
    const c = text.charCodeAt(k);
    if (c === 10) return true;
    if (c !== 32 && c !== 9 && c !== 62 && c !== 42 && c !== 95 && c !== 45) return false;
  }
  // Markup only back to the text's start.
  return at <= 6;
}

/** The speaker label of the line `at` is on, lower case ("" for none), and where it ends (its colon included). */
function lineLabelAt(text: string, at: number): [label: string, end: number] {
  const start = text.lastIndexOf("\n", at - 1) + 1;
  const m = LABEL_LINE.exec(text.slice(start, Math.min(text.length, start + 64)));
  return m === null || m[1]!.split(/\s+/).length > 4 ? ["", start] : [m[1]!.toLowerCase(), start + m[0].length];
}

/** A transcript in a text: from its first labelled line's start to its last one's end, and who speaks twice or more in it. */
interface Transcript {
  readonly start: number;
  readonly end: number;
  readonly speakers: ReadonlySet<string>;
}

/**
 * The transcripts in `text`, in order: runs of TRANSCRIPT_TURNS labelled lines or more (at most
 * TURN_LINES other lines between two; a NUL, which parts two segments, ends one), with two
 * speakers or more each given two turns or more. A chat pasted into a page is a transcript; one
 * fake `Assistant:` line is not, nor is a line far from a chat that carries a label of it.
 */
function transcriptsOf(text: string): Transcript[] {
  const out: Transcript[] = [];
  let turns = new Map<string, number>();
  let labelled = 0;
  let gap = 0;
  let first = -1;
  let last = -1;
  const close = () => {
    const speakers = [...turns].filter(([, k]) => k >= 2).map(([label]) => label);
    if (labelled >= TRANSCRIPT_TURNS && speakers.length >= 2) out.push({ start: first, end: last, speakers: new Set(speakers) });
    turns = new Map();
    labelled = 0;
    first = -1;
  };
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const head = text.slice(start, Math.min(end, start + 256));
    if (head.includes("\u0000")) close();
    else if (/\S/.test(head)) {
      const [label] = lineLabelAt(text, start);
      if (label !== "") {
        turns.set(label, (turns.get(label) ?? 0) + 1);
        labelled++;
        gap = 0;
        if (first < 0) first = start;
        last = end;
      } else if (++gap > TURN_LINES) close();
    }
    start = end + 1;
  }
  close();
  return out;
}

function growFloat(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}

function grow(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

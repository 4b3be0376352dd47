/**
 * The prompt-injection engine: the `inj.*` rule pack run over every reading (readings.ts) of
 * every segment of a response (a page's visible text and each hidden carrier, a JSON string, an
 * event of a stream), scored. Pure; compiled once per policy.
 *
 * Score: each rule that matches anywhere adds its weight once; a match inside a hidden carrier
 * (html.ts), in Unicode tag characters, in an encoded segment or behind an obfuscation adds the
 * weight of the carrier rule below once more, because text a person cannot see (or a model is
 * asked to decode) carrying an instruction is itself the attack. The response is over the line
 * when the score reaches the threshold.
 */
import type { DecodeLimits } from "../decode/index.ts";
import { previewOf, type CompiledRules } from "../rules/compile.ts";
import type { Carrier } from "./html.ts";
import { CUE_GROUP, type DiscussionCue, type ExampleCue } from "./cues.ts";
import { deobfuscated, leetReadable, leetStretches, mixedStretches, mixedWordsFolded, obfuscatedStretches, overrideSpans, readingsOf, unicodeTags, type Reading, type ReadingName } from "./readings.ts";
import { reportedStrings } from "./verdict.ts";
import { nextPart, PART, strongestWindow, WORD_RULE, type WordModel } from "./words.ts";
import { partitionPoint } from "../spans.ts";

/** One piece of a response to scan, where it came from, and whether a person would see it. */
export interface SegmentIn {
  /** `body.html`, `body.json.results[0].snippet`, `body.sse[3]`, ... */
  readonly location: string;
  readonly carrier: Carrier | "text";
  readonly text: string;
  /** Raw range of a hidden carrier in the body (html.ts), so `strip` can cut it out whole. */
  readonly range?: readonly [start: number, end: number];
  /** Blocks of code inside `text` (markdown fences): what lies wholly in one counts as code. */
  readonly code?: readonly (readonly [start: number, end: number])[];
  /** Block quotes inside `text` (`<blockquote>`, markdown's `>` lines): in writing about attacks, the word model reads them as it reads code there. */
  readonly quotes?: readonly (readonly [start: number, end: number])[];
  /**
   * Text a classifier's record reports on (a moderation result's `input` beside
   * `"is_injection": true`, an evaluation case labelled `prompt_injection`; verdict.ts): shown as
   * data, like a quotation.
   */
  readonly reported?: boolean;
  /**
   * Written with its plain letters as escapes (a JSON string of `\u0049\u0067...`,
   * inspect/response.ts): what is found in it is obfuscated, as in a leetspeak reading; and,
   * hidden from whoever reads the bytes (a log, grep, a reviewer) while a model gets the words,
   * it is read whole by the word model as a hidden carrier is.
   */
  readonly escaped?: boolean;
}

export interface InjectionFinding {
  readonly rule: string;
  readonly weight: number;
  readonly location: string;
  readonly carrier: Carrier | "text";
  /** The reading it was found in (`raw`: as written). */
  readonly reading: ReadingName;
  readonly via?: readonly string[];
  /** A few characters of each end of the match. */
  readonly preview: string;
  /** The match as written (reading `raw`), for `strip`; null when it was found in another reading. */
  readonly literal: string | null;
  readonly range?: readonly [start: number, end: number];
}

export interface InjectionResult {
  readonly score: number;
  readonly findings: readonly InjectionFinding[];
}

/**
 * What a response has scored so far, for a response judged in pieces (an event stream): each
 * rule or group counted once, at its highest weight, across the pieces.
 */
export interface ScoreTally {
  readonly counted: Map<string, number>;
  score: number;
  /**
   * The word model's strongest window so far (a stream's earlier pieces count, as in the whole
   * body), and what it found around each text it read (a stream reads the same text again).
   */
  words?: { probability: number; segment: SegmentIn; preview: string };
  wordsRead?: Map<string, { probability: number; preview: string } | null>;
}

export interface InjectionEngine {
  readonly threshold: number;
  readonly ruleIds: readonly string[];
  /** Scores `segments`; with `tally`, on top of what it holds (and into it): the score returned is the total. */
  scan(segments: readonly SegmentIn[], tally?: ScoreTally): InjectionResult;
}

/**
 * Rules of the engine itself, for what carries an instruction rather than what it says. Their
 * weights add once per response, on top of the instruction rule's own.
 */
export const CARRIER_RULES = {
  hidden: { id: "inj.hidden-content", weight: 40 },
  tags: { id: "inj.unicode-tag-smuggling", weight: 50 },
  encoded: { id: "inj.encoded-instructions", weight: 30 },
  obfuscated: { id: "inj.obfuscated-instructions", weight: 20 },
} as const;

const OBFUSCATIONS: ReadonlySet<ReadingName> = new Set(["invisible-removed", "invisible-as-space", "bidi-reversed", "folded", "mixed-script", "leetspeak", "spaced-letters", "joined-words"]);
/** Carriers read together as one text: what a person sees, and code (never a hidden carrier). */
const SHOWN: ReadonlySet<string> = new Set(["visible", "text", "code", "script"]);

/**
 * Writing about attacks (a security article, a detector's docs, a bug report) quotes them. A
 * finding in shown text with DISCUSSION_MIN distinct phrases of the lexicons' `discuss` and
 * `example` classes within DISCUSSION_REACH characters of it, in its own segment, one of them of
 * `discuss` (attackers, prompt injection, malicious, ...) or DISCUSSION_MIN_FRAMING of `example`
 * alone, counts half, and all such findings count as one: an article quotes several attacks; it
 * performs none. Hidden carriers never get this (nobody hides an explanation), and no discount
 * takes a rule below half its weight.
 */
export const DISCUSSION_MIN = 2;
/** Without a `discuss` phrase, framing alone ("for example", "the model", "such as") takes this many. */
export const DISCUSSION_MIN_FRAMING = 3;
export const DISCUSSION_REACH = 1000;
/** What the discussed findings of a response are counted under, together. */
const DISCUSSED = "\u0000discussed";

/**
 * Between two shown segments when they are read as one text: a blank line for the pattern rules,
 * and a NUL, which the cue matcher takes as the end of one text and the start of another
 * (cues.ts): two JSON values are two texts.
 */
const SEGMENT_SEPARATOR = "\n\n\u0000\n\n";

/**
 * Markdown that a rendered page does not show (CommonMark §4.7, §6.3, §6.4): a link reference
 * definition used as a comment (`[//]: # (text)`, `[comment]: <> (text)`, `[x]: # "text"`), an
 * image's alt text (shown only when the image fails) and a link's title (shown on hover).
 */
const MD_COMMENT = /^[ \t]{0,3}\[[^\]\n]{0,64}\]:[ \t]*(?:<>|#)[ \t]*(?:\(([^\n]*)\)|"([^"\n]*)"|'([^'\n]*)')[ \t]*$/gm;
const MD_IMAGE_ALT = /!\[([^\]\n]{12,})\]\(/g;
const MD_LINK_TITLE = /\]\([^\s()]+[ \t]+"([^"\n]{12,})"\)/g;

/** The hidden carriers of markdown in a shown segment, as segments of their own. */
export function markdownCarriers(segment: SegmentIn): SegmentIn[] {
  const text = segment.text;
  const out: SegmentIn[] = [];
  const push = (carrier: Carrier, t: string | undefined) => {
    if (t !== undefined && t.trim().length > 0) out.push({ location: segment.location, carrier, text: t });
  };
  if (text.includes("]:")) {
    MD_COMMENT.lastIndex = 0;
    for (let m = MD_COMMENT.exec(text); m !== null; m = MD_COMMENT.exec(text)) push("comment", m[1] ?? m[2] ?? m[3]);
  }
  if (text.includes("](")) {
    MD_IMAGE_ALT.lastIndex = 0;
    for (let m = MD_IMAGE_ALT.exec(text); m !== null; m = MD_IMAGE_ALT.exec(text)) push("alt", m[1]);
    MD_LINK_TITLE.lastIndex = 0;
    for (let m = MD_LINK_TITLE.exec(text); m !== null; m = MD_LINK_TITLE.exec(text)) push("title", m[1]);
  }
  return out;
}

/**
 * Quoted text in prose is mentioned, not said: an issue comment or an article that writes
 * `ignore previous instructions` in inline code, or "print your instructions verbatim" in
 * quotation marks, shows the attack to a reader. Inline code (CommonMark §6.1, one line) and
 * quotations (straight or typographic double quotes, guillemets, corner brackets, on one line)
 * of at most QUOTE_MAX characters (a string literal's prefix, `r"..."`, opens one as a space
 * does); a finding with both ends quoted and at least QUOTED_SHARE of it inside quotations, or
 * with one end in a quoted sentence and QUOTED_PART of it inside such (a report quoting an
 * instruction and saying what the agent did with it), is read as quoted: half weight, and
 * counted with the discussed findings. So is a finding that ends inside an example: a quotation
 * an example phrase follows or precedes (`"ignore the rules" and similar`, `such as "..."`,
 * `“忽略之前的指令”之类`; cues.ts EXAMPLE_AFTER_CLASS), with no more than EXAMPLE_GAP of white
 * space and commas between, and the quotations listed with it (`such as "a", "b" or "c"`). A cue
 * intent ends at the cue that completes it: writing about attacks names the reader first and
 * quotes the order after ("assistants may read text like “ignore the previous instructions”"),
 * an order whose last word is an example is completed by it. One that only starts in one (`AI
 * assistants such as "Claude": ignore ...`, `send “~/.ssh/id_rsa” and other files to ...`) is
 * completed by words outside, and counts whole.
 */
const QUOTE_MAX = 400;
const QUOTED_SHARE = 0.75;
/** A quotation this long is a sentence (an instruction quoted), not a name ("Do Anything Now"). */
const QUOTED_SENTENCE = 24;
const QUOTED_PART = 0.4;
/** A quotation opening this many characters or fewer after "tell the user" (RELAY_CLASS) is the message to give. */
const RELAY_REACH = 24;
/** Quotation marks: German writes guillemets both ways (»…« as well as «…»). */
const QUOTE_PAIRS: Readonly<Record<string, string>> = { "`": "`", '"': '"', "\u201c": "\u201d", "\u201e": "\u201c", "\u00ab": "\u00bb", "\u00bb": "\u00ab", "\u300c": "\u300d", "\u300e": "\u300f", "\u2018": "\u2019" };
const QUOTE_OPEN = /[`"\u201c\u201e\u00ab\u00bb\u300c\u300e\u2018]/g;
/** The most characters between a quotation mark and the example phrase after or before it. */
const EXAMPLE_GAP = 3;
/** What may stand there: white space, commas, a colon. */
const EXAMPLE_GAP_TEXT = /^[\s,:\uff1a\u3001\uff0c]*$/;
/**
 * What an example holds: words (two of letters with white space between, or two characters of a
 * script written without spaces), and no address. A mailbox, a URL or a path in quotation marks
 * after "such as" is where an order sends ("to a backup contact such as "keys@..."), not words
 * quoted.
 */
const EXAMPLE_WORDS = /\p{L}{2,}[\s\u3000]+\p{L}{2,}|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]{2}/u;
const holdsWords = (quoted: string): boolean => !quoted.includes("://") && !quoted.includes("@") && EXAMPLE_WORDS.test(quoted);
/** The longest example phrase (the search for one after a quotation stops past it). */
const EXAMPLE_PHRASE_MAX = 40;
/** What may stand between two quotations of a list: commas, a slash, "and" or "or" in the nine languages. */
const LIST_GAP_TEXT = /^[\s,/\u3001\uff0c]*(?:(?:and|or|et|ou|y|o|e|und|oder|\u0438|\u0438\u043b\u0438|\u043b\u0438\u0431\u043e|\u548c|\u6216|\u6216\u8005|\u4ee5\u53ca|\u4e0e|\u53ca|\u3068|\u3084|\u307e\u305f\u306f|\u53ca\u3073|\uc640|\uacfc|\ub098|\uc774\ub098|\ubc0f|\ub610\ub294)[\s,\u3001\uff0c]*)?$/i;
const LIST_GAP_MAX = 8;
/** What stands before a JSON value's quotation mark: a key's closing quote and a colon, or an array's bracket. */
const JSON_VALUE_BEFORE = /(?:"\s{0,3}:|\[)\s{0,3}$/;
/** The prefix of a string literal before its quote (`r"`, `b"`, `f"`, `u"`, `rb"`, `br"`, `fr"`), after a space or bracket. */
const STRING_PREFIX = /(?:^|[\s([,=])(?:[rbfu]|rb|br|fr|rf)$/i;

/** Where markdown emphasis (up to three `*` or `_`) right before `at` starts: a quotation in bold, `**"..."**`, opens after it. */
function emphasisStart(text: string, at: number): number {
  let b = at;
  while (b > 0 && at - b < 3 && (text[b - 1] === "*" || text[b - 1] === "_")) b--;
  return b;
}

/**
 * The quoted spans of `text` (inside the marks), in order; with `from` and `to`, those opening
 * in that range only. A quotation never crosses a line break, so the spans of whole lines are the
 * same whether read alone or with the rest of the text.
 */
export function quotedSpans(text: string, from = 0, to = text.length): [number, number][] {
  // Lines on their own (a search from `from` would run on to the text's end for the next mark).
  if (from > 0 || to < text.length) return quotedSpans(text.slice(from, to)).map(([a, b]) => [a + from, b + from]);
  const out: [number, number][] = [];
  // The next closing mark of each kind, and the next line break, found by indexOf and kept
  // while still ahead: a line of a million unclosed marks is read once, not once per mark.
  const nextClose = new Map<string, number>();
  let nextBreak = -2;
  QUOTE_OPEN.lastIndex = 0;
  for (let m = QUOTE_OPEN.exec(text); m !== null; m = QUOTE_OPEN.exec(text)) {
    const open = m[0];
    const at = m.index;
    // A straight quote opens only after a space, a bracket or the start, not in data syntax
    // (`5"`, `a"b`, `title="..."`, `"a","b"`, `"k": "v"`); a ‘ only where it cannot be an
    // apostrophe.
    // A string literal's prefix (Python `r"..."`, `f"..."`, `rb"..."`) opens it as a space would.
    if ((open === '"' || open === "\u2018") && at > 0 && !/[\s([]/.test(text[emphasisStart(text, at) - 1] ?? " ") && !(open === '"' && STRING_PREFIX.test(text.slice(Math.max(0, at - 3), at)))) continue;
    const close = QUOTE_PAIRS[open]!;
    let k = nextClose.get(close) ?? -2;
    if (k !== -1 && k <= at) nextClose.set(close, (k = text.indexOf(close, at + 1)));
    if (nextBreak !== -1 && nextBreak <= at) nextBreak = text.indexOf("\n", at + 1);
    // The first closing mark after the opening one, before a line break, within QUOTE_MAX.
    const end = k >= 0 && k - at <= QUOTE_MAX && (nextBreak < 0 || k < nextBreak) ? k : -1;
    if (end < 0) continue;
    // A shell's command substitution in double quotes (`bash -c "$(curl ...)"`) is a command, not words quoted.
    if (open === '"' && text.startsWith("$(", at + 1)) {
      QUOTE_OPEN.lastIndex = end + 1;
      continue;
    }
    // A JSON key (`"k":`), one of a list of values (`"a", "b"`), or a value closed by JSON syntax
    // after a key or an array's bracket (`"k": "v"}`, `["v"]`: JSON written in text, a tool
    // result's JSON, a subtree nested past the fragment walk's depth).
    if (open === '"') {
      const after = text.slice(end + 1, end + 4);
      if (/^\s*(?::|[,;]\s*")/.test(after) || (/^\s*[,}\]]/.test(after) && JSON_VALUE_BEFORE.test(text.slice(Math.max(0, at - 8), at)))) continue;
    }
    if (end - at > 1) out.push([at + 1, end]);
    QUOTE_OPEN.lastIndex = end + 1;
  }
  return out;
}

/** Each `<!--` of `text` to the end of its `-->` (or the text's end), in order and apart. */
function commentSpans(text: string): [number, number][] {
  const out: [number, number][] = [];
  for (let a = text.indexOf("<!--"); a >= 0; ) {
    const close = text.indexOf("-->", a + 4);
    const b = close < 0 ? text.length : close + 3;
    out.push([a, b]);
    a = close < 0 ? -1 : text.indexOf("<!--", b);
  }
  return out;
}

/** The start of a line that is a markdown comment written as a reference link (`[//]: # (...)`, `[comment]: <> (...)`). */
const REFERENCE_COMMENT = /^ {0,3}\[[^\]\n]{0,12}\]:\s{0,3}(?:#|<>)/;

/**
 * A test runner's result line with the test's parameters in brackets (pytest's verbose ids):
 * group 1 the line up to the opening bracket, group 2 the parameters.
 */
const TEST_RESULT_LINE = /^(\s*[\w./\\-]+\.py::[\w.:]+\[)([^\n]*)\]\s+(?:PASSED|FAILED|SKIPPED|XFAIL|XPASS|ERROR)\b/;
/** Longer lines are not read as a test's result. */
const TEST_LINE_MAX = 2048;

/** Lines longer than this are not read as JSON records. */
const RECORD_MAX = 64 * 1024;

/**
 * The spans (in `text`) of the strings the JSON record on the line [lineStart, lineEnd) reports
 * on (verdict.ts): a line that is one JSON object or array, parsed; each such string found after
 * its key, written as JSON writes it (one written with other escapes is not found, and counts in
 * full).
 */
function recordSpans(text: string, lineStart: number, lineEnd: number): [number, number][] {
  let a = lineStart;
  let b = lineEnd;
  while (a < b && text.charCodeAt(a) <= 32) a++;
  while (b > a && text.charCodeAt(b - 1) <= 32) b--;
  const first = text.charCodeAt(a);
  const last = text.charCodeAt(b - 1);
  if (b - a > RECORD_MAX || !((first === 123 && last === 125) || (first === 91 && last === 93))) return [];
  let value: unknown;
  try {
    value = JSON.parse(text.slice(a, b));
  } catch {
    return [];
  }
  // A key written twice is read by JSON.parse as its last value, by another reader as its first:
  // such a record says nothing for sure.
  if (writtenKeys(text, a, b) !== parsedKeys(value)) return [];
  const spans: [number, number][] = [];
  for (const [key, s] of reportedStrings(value)) {
    // Where the key is written with this value after it, not the same text under another key.
    const name = JSON.stringify(key);
    const written = JSON.stringify(s);
    for (let k = text.indexOf(name, a); k >= 0 && k < b; k = text.indexOf(name, k + 1)) {
      let at = k + name.length;
      while (at < b && (text.charCodeAt(at) === 32 || text.charCodeAt(at) === 9)) at++;
      if (text.charCodeAt(at) !== 58) continue;
      at++;
      while (at < b && (text.charCodeAt(at) === 32 || text.charCodeAt(at) === 9)) at++;
      if (at + written.length <= b && text.startsWith(written, at)) {
        spans.push([at + 1, at + written.length - 1]);
        break;
      }
    }
  }
  return spans;
}

/** How many object keys the JSON text [a, b) writes: strings followed by a colon. */
function writtenKeys(text: string, a: number, b: number): number {
  let keys = 0;
  for (let i = a; i < b; i++) {
    if (text.charCodeAt(i) !== 34) continue;
    // To the string's end, over its escapes.
    for (i++; i < b && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++;
    let j = i + 1;
    while (j < b && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 9)) j++;
    if (text.charCodeAt(j) === 58) keys++;
  }
  return keys;
}

/** How many object keys a parsed JSON value holds, at every depth. */
function parsedKeys(value: unknown): number {
  let keys = 0;
  const work: unknown[] = [value];
  for (let v = work.pop(); v !== undefined; v = work.pop()) {
    if (v === null || typeof v !== "object") continue;
    if (Array.isArray(v)) for (const x of v) work.push(x);
    else {
      const o = v as Record<string, unknown>;
      for (const k in o) {
        if (!Object.hasOwn(o, k)) continue;
        keys++;
        work.push(o[k]);
      }
    }
  }
  return keys;
}

/**
 * A reading decoded only from HTML entities, of a text whose entities are all named escapes of
 * markup characters (`&lt;`, `&gt;`, `&amp;`, `&quot;`, `&apos;`, `&#39;`): how XML and HTML
 * must write `<|endoftext|>`, not a disguise, so no `inj.encoded-instructions` for it.
 * Numeric entities spelling letters (`&#105;gnore`) still count.
 */
const ENTITY = /&(#[0-9]+|#x[0-9a-f]+|[a-z][a-z0-9]*);/gi;
const MARKUP_ENTITY = /^(?:lt|gt|amp|quot|apos|#0*3[49]|#0*38|#0*6[02]|#x0*2[26]|#x0*27|#x0*3[ce])$/i;
function markupEscaped(reading: Reading, source: string): boolean {
  if (reading.via === undefined || reading.via.some((v) => v !== "html")) return false;
  ENTITY.lastIndex = 0;
  for (let m = ENTITY.exec(source); m !== null; m = ENTITY.exec(source)) if (!MARKUP_ENTITY.test(m[1]!)) return false;
  return true;
}

/** The index of the first of `spans` (in order, apart) that ends after `at`; spans.length when none does. */
const firstEndAfter = (spans: readonly (readonly [number, number])[], at: number): number => partitionPoint(spans.length, (i) => spans[i]![1] <= at);

/** The index of the first of `sorted` above `at`; sorted.length when none is. */
const firstAbove = (sorted: readonly number[], at: number): number => partitionPoint(sorted.length, (i) => sorted[i]! <= at);

/** Kinds of a quotation (LineQuotes.kind). */
const SENTENCE = 1;
const EXAMPLE = 2;
const RELAYED = 4;

/** The quotations of one line, their kinds, and running sums over them. */
interface LineQuotes {
  readonly spans: [number, number][];
  readonly kind: Uint8Array;
  /** Sums of the lengths before quotation k: of all, and of sentences. */
  readonly lengths: readonly [Float64Array, Float64Array];
  /** How many before quotation k are relayed. */
  readonly relayed: Int32Array;
}

function lineQuotesOf(spans: [number, number][], kindOf: (k: number) => number): LineQuotes {
  const n = spans.length;
  const kind = new Uint8Array(n);
  const lengths = [new Float64Array(n + 1), new Float64Array(n + 1)] as const;
  const relayed = new Int32Array(n + 1);
  for (let k = 0; k < n; k++) {
    const len = spans[k]![1] - spans[k]![0];
    const c = (kind[k] = kindOf(k));
    lengths[0][k + 1] = lengths[0][k]! + len;
    lengths[1][k + 1] = lengths[1][k]! + (c & SENTENCE ? len : 0);
    relayed[k + 1] = relayed[k]! + (c & RELAYED ? 1 : 0);
  }
  return { spans, kind, lengths, relayed };
}

/** How much of [start, end) lies in the quotations [k0, k1) (`kind` 0: all; SENTENCE: sentences): whole ones by the sums, the two at the ends cut. */
function overlapOf(lq: LineQuotes, kind: 0 | typeof SENTENCE, k0: number, k1: number, start: number, end: number): number {
  const sums = lq.lengths[kind === 0 ? 0 : 1];
  let total = sums[k1]! - sums[k0]!;
  if (kind === 0 || lq.kind[k0]! & kind) total -= Math.max(0, start - lq.spans[k0]![0]);
  if (kind === 0 || lq.kind[k1 - 1]! & kind) total -= Math.max(0, lq.spans[k1 - 1]![1] - end);
  return total;
}

/**
 * One special token of a chat template or tokenizer (`<|im_end|>`, `<eos>`, `</s>`), and one that
 * is a role's name (`<|system|>`, `<|tool|>`; not `<tool_call>`, a frame marker a tokenizer lists).
 */
const SPECIAL_TOKEN = /^<\/?\|?[\w.:-]{1,40}\|?>$/;
const ROLE_NAME = /^<\/?\|?(?:system|user|assistant|developer|tool|human|model|bot|ipython|function)\|?>$/i;

/** Encodings a person cannot read at a glance: base64, base32, hex, percent, and layers of them. */
const OPAQUE: ReadonlySet<string> = new Set(["base64", "base32", "hex", "percent", "layered"]);
const isOpaque = (reading: Reading): boolean => reading.via !== undefined && reading.via.some((v) => OPAQUE.has(v));

/**
 * Words of two letters or more followed by white space, or two characters of a script written
 * without spaces (kana, CJK ideographs, Hangul): PROSE_WORDS of them make a text a sentence, not
 * data.
 */
const PROSE_WORD = /(?<!\p{L})\p{L}{2,}[\s\u3000]|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]{2}/gu;
const PROSE_WORDS = 4;
function isProse(text: string, [start, end]: readonly [number, number]): boolean {
  let words = 0;
  PROSE_WORD.lastIndex = start;
  for (let m = PROSE_WORD.exec(text); m !== null && m.index < end; m = PROSE_WORD.exec(text)) if (++words >= PROSE_WORDS) return true;
  return false;
}

/** The word model reads this many characters on each side of a finding (about two windows of words). */
const WORD_REACH = 200;
/** The most hidden carrier text the word model reads whole, per response. */
const HIDDEN_READ = 64 * 1024;
/** Texts the word model's results are kept for, per response (a stream reads the same windows again). */
const WORDS_READ_MAX = 4096;

/** Where a finding or an intent's completion lies, in the text it was found in. */
interface Anchor {
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly segment: SegmentIn;
  /** What the finding or the intent completing there weighs. */
  readonly weight: number;
}

/**
 * Reads the text around `anchors` with the word model: the WORD_REACH around each anchor,
 * overlapping stretches of one text merged, long ones in parts (nextPart). Keeps the strongest
 * window in `tally.words`.
 */
function readAround(words: WordModel, anchors: readonly Anchor[], tally: ScoreTally): void {
  const best = strongestAround(words, anchors, tally);
  if (best !== undefined && best.probability > (tally.words?.probability ?? -1)) tally.words = best;
}

/** The strongest window of the text around `anchors` (readAround), what was read kept in `tally.wordsRead`. */
function strongestAround(words: WordModel, anchors: readonly Anchor[], tally: ScoreTally, reach = WORD_REACH): ScoreTally["words"] {
  let best: ScoreTally["words"];
  const read = (tally.wordsRead ??= new Map());
  const take = (text: string, from: number, to: number, segment: SegmentIn) => {
    for (let at = from; ; ) {
      const part = text.slice(at, Math.min(to, at + PART));
      let found = read.get(part);
      if (found === undefined) {
        const window = strongestWindow(words, part);
        found = window === null ? null : { probability: window.probability, preview: window.normal.slice(window.start, window.end) };
        if (read.size < WORDS_READ_MAX) read.set(part, found);
      }
      if (found !== null && found.probability > (best?.probability ?? -1)) best = { ...found, segment };
      if (at + PART >= to) break;
      at = nextPart(text, at);
    }
  };
  // By text (a reading's text is one string for all its anchors), then by place.
  const byText = new Map<string, Anchor[]>();
  for (const a of anchors) {
    const list = byText.get(a.text);
    if (list === undefined) byText.set(a.text, [a]);
    else list.push(a);
  }
  for (const [text, list] of byText) {
    list.sort((a, b) => a.start - b.start);
    let from = -1;
    let to = -1;
    let segment = list[0]!.segment;
    for (const a of list) {
      const start = Math.max(0, a.start - reach);
      const end = Math.min(text.length, a.end + reach);
      if (start <= to) {
        to = Math.max(to, end);
        continue;
      }
      if (to > from) take(text, from, to, segment);
      from = start;
      to = end;
      segment = a.segment;
    }
    if (to > from) take(text, from, to, segment);
  }
  return best;
}

/**
 * `joined` (segments `shown`, starting at `starts`) with reported text, and code, block quotes
 * and `quotations` (quoted sentences, in joined's offsets) that are `discussed` (in writing about
 * attacks: a security article's examples), as spaces: the same length, the same offsets; and
 * where all code is, and whether it was blanked (a quote blanked is listed as blanked code: it is
 * read on its own as such code is). Code that is not discussed stays: until 2026-11-30 all code
 * was blanked, and an attack wrapped in a markdown fence or `<pre><code>` passed whole (README).
 */
function blankData(joined: string, shown: readonly SegmentIn[], starts: readonly number[], quotations: readonly (readonly [number, number])[], discussed: (start: number, end: number) => boolean, relayed: (start: number) => boolean = () => false): { text: string; code: [start: number, end: number, blanked: boolean][] } {
  const parts: string[] = [];
  const code: [number, number, boolean][] = [];
  let last = 0;
  const blank = (from: number, to: number) => {
    parts.push(joined.slice(last, from), " ".repeat(to - from));
    last = to;
  };
  // Every range, in order of start: reported text (REPORTED, always blanked), code (CODE) and
  // quotes (QUOTE); one inside a range blanked already is blanked with it.
  const REPORTED = 0;
  const CODE = 1;
  const QUOTE = 2;
  const ranges: [from: number, to: number, kind: number][] = [];
  shown.forEach((s, i) => {
    const start = starts[i]!;
    if (s.reported === true) ranges.push([start, start + s.text.length, REPORTED]);
    else if (s.carrier === "code") ranges.push([start, start + s.text.length, CODE]);
    else {
      // A block that is closed: one a fence opens and nothing closes runs to the end of the text,
      // and would hide whatever follows it.
      for (const [a, b] of s.code ?? []) if (closedFence(s.text, a, b)) ranges.push([start + a, start + b, CODE]);
      for (const [a, b] of s.quotes ?? []) ranges.push([start + a, start + b, QUOTE]);
    }
  });
  for (const [a, b] of quotations) ranges.push([a, b, QUOTE]);
  ranges.sort((x, y) => x[0] - y[0] || x[2] - y[2]);
  for (const [from, to, kind] of ranges) {
    if (from < last) continue;
    if (kind === REPORTED) blank(from, to);
    else if (kind === CODE) {
      const quoted = discussed(from, to);
      if (quoted) blank(from, to);
      code.push([from, to, quoted]);
    } else if (discussed(from, to) && !relayed(from)) {
      // A quote only where it is discussed, and not the message an order tells the reader to
      // give: then blanked, and read on its own as such code is.
      blank(from, to);
      code.push([from, to, true]);
    }
  }
  parts.push(joined.slice(last));
  return { text: parts.join(""), code };
}

/** Whether the code block `text[a, b)` (a markdown fence) ends with a closing fence like its opening one. */
function closedFence(text: string, a: number, b: number): boolean {
  const fence = text.slice(a, a + 3);
  if (fence !== "```" && fence !== "~~~") return true;
  const lastLine = text.lastIndexOf("\n", b - 1);
  return lastLine > a && text.startsWith(fence, lastLine + 1);
}

/**
 * The window of `text` the model finds most like an attack, read in parts (words.ts nextPart:
 * every run of 20 words whole in one of them); `unit`: where its middle lies in `text` when that is known
 * (the normalised text a window lies in has the same length as the part read, as ASCII text
 * always does). Null unless a window reaches `floor`.
 */
function strongestIn(words: WordModel, text: string, prose: number, floor: number): { probability: number; preview: string; unit: number | null } | null {
  let best: { probability: number; preview: string; unit: number | null } | null = null;
  for (let at = 0; ; at = nextPart(text, at)) {
    const part = text.slice(at, at + PART);
    const window = strongestWindow(words, part, prose, Math.max(floor, best?.probability ?? 0));
    if (window !== null && (best === null || window.probability > best.probability)) {
      best = { probability: window.probability, preview: window.normal.slice(window.start, window.end), unit: window.normal.length === part.length ? at + ((window.start + window.end) >> 1) : null };
    }
    if (at + PART >= text.length) break;
  }
  return best;
}

/**
 * The cue intents are combinations of everyday phrases ("the user", "from now on", "remember"),
 * written against the tuning sets; on text by new authors half the responses they alone take to
 * the threshold are benign (a chat-template guide, an email asking to keep a deck confidential, a
 * README of a bot that remembers). So a response that the cue intents take over the threshold
 * (what the rest of it scores stays under), with nothing beside them but what is CONFIRMABLE,
 * and none of the intents of CONFIRM_EXEMPT or more (the stock English override,
 * `inj.override-en`, and dropping the model's instructions while sending a secret out), is
 * blocked only when the word model confirms it: a window around what they found of
 * CONFIRM_PROBABILITY or more. Otherwise the response stays one point under the threshold, and
 * the record says why (UNCONFIRMED_RULE). Without the model (disabled, or none) nothing changes.
 * (0.98 until the model was trained on holdout5 to holdout11, 0.99 until it was trained with
 * hard negatives; CONFIRM_EXEMPT 60, which spared every override addressed to the model and every
 * send of private data, until the stock override had a phrase of its own; README.)
 */
export const CONFIRM_PROBABILITY = 0.98;
/**
 * The confirming window is read around what weighs most, near it: the anchors (findings and
 * intent completions) of at least this share of the strongest one's weight, CONFIRM_REACH
 * characters on each side. Until 2026-11-30 it was the strongest window WORD_REACH around any
 * anchor, and a page's own sentences beside a weak cue confirmed what the intents found
 * elsewhere: a Chinese README's install line (`支持 json 输出和日志分级`, 0.9965) beside
 * `npm install` confirmed 37 benign texts of the read sets. On the 35 read sets: 56 fewer benign
 * texts blocked, 16 fewer attacks (CONFIRM_PROBABILITY at 0.99 instead: 22 and 72; README).
 */
export const CONFIRM_ANCHOR_SHARE = 0.5;
/**
 * An anchor of this weight or more is read whatever the strongest weighs, and so is every anchor
 * in a hidden carrier beside which the intents are confirmed: an intent planted in harmless
 * words must not take the window away from a weaker order that, with the carrier's 40 or a
 * quoted rule, takes the response over the threshold. Neither changed a verdict of the read
 * sets but one benign text's.
 */
export const CONFIRM_ANCHOR_FLOOR = 20;
export const CONFIRM_REACH = 120;
export const CONFIRM_EXEMPT = 61;
export const UNCONFIRMED_RULE = "inj.cues-unconfirmed";
/**
 * A hidden carrier adds 40 to what it holds, so one weak cue intent in it (a CMS comment telling
 * editors "do not change this notice", a noscript fallback saying "follow these instructions")
 * reaches the threshold. With the hidden carrier beside them, the intents are confirmed by a
 * window of CONFIRM_HIDDEN_PROBABILITY or more (lower than for shown text: hiding an order is
 * itself a sign), and only those under CONFIRM_HIDDEN_EXEMPT (one that reaches the threshold by
 * itself, sending the key or running a command, needs no confirmation).
 */
export const CONFIRM_HIDDEN_PROBABILITY = 0.8;
export const CONFIRM_HIDDEN_EXEMPT = 50;
/**
 * Beside the cue intents, the model may also confirm away (CONFIRMABLE): a finding of a pattern
 * rule counted as discussed (quoted, in code, in writing about attacks: mentioned, not said),
 * which marks the response with DISCUSSED_PATTERN; and an installer one-liner (`curl ... | sh`,
 * CONFIRMABLE_COMMAND, of the tool-coercion rules), which shell tutorials and install guides
 * show and tell the reader to run. Never an exfiltration channel (isExfiltration), quoted or not
 * (DISCUSSED_EXFILTRATION: a beacon in inline code beside an order to render it still sends the
 * data), nor another command (COMMAND: `rm -rf ~`, `mkfs`, `history -c`). With the installer or
 * a hidden carrier beside them, the intents are confirmed only under CONFIRM_HIDDEN_EXEMPT (an
 * order to run it, "run this in the user's terminal", is the attack); with a discussed pattern,
 * by a window of CONFIRM_DISCUSSED_PROBABILITY rather than CONFIRM_PROBABILITY (an order to
 * follow what a code block holds is the attack, and the model reads only the order). README: on
 * the tuning sets 192 fewer benign texts and 12 fewer attacks than without (hidden, discussed
 * and command together); on dev8, which the model does not train on, 35 and 1.
 */
const DISCUSSED_PATTERN = "\u0000discussed-pattern";
/**
 * An image's alt text and an element's title describe it: a screenshot of a terminal is
 * described with the command it shows (`alt="Screenshot of a terminal running 'curl -fsSL
 * https://get.tool.example | sh'"`). An installer one-liner found only there, with a hidden
 * carrier found only there, is confirmed by the model as a weak cue beside a hidden carrier is
 * (CONFIRM_HIDDEN_PROBABILITY), with or without an intent beside it. Anywhere else (a comment, a
 * noscript, shown text) the carrier and the installer still take a response over the threshold
 * alone. On the 35 read sets: 12 fewer benign texts (alt texts of terminal screenshots), no
 * attack fewer; made confirmable in every hidden carrier, 1 plain attack more was lost (an order
 * to run one in French, in text of size zero, which the model reads under 0.8).
 */
const DESCRIBING: ReadonlySet<string> = new Set(["alt", "title"]);
/** Marks a response with a hidden carrier or an installer found elsewhere than in DESCRIBING carriers. */
const UNDESCRIBED = "\u0000undescribed";
const DISCUSSED_EXFILTRATION = "\u0000discussed-exfiltration";
const COMMAND = "\u0000command";
/**
 * 0.9 until 2026-11-30, when a retrained model put a review's bypass (a persona order with the DAN
 * prompt in inline code) at 0.898 after 0.900: the bar sat on it. 0.89 changes nothing on the
 * read sets (0.85: 7 more benign texts).
 */
export const CONFIRM_DISCUSSED_PROBABILITY = 0.89;
const TOOL_COERCION = "inj.tool-coercion";
const CONFIRMABLE_COMMAND = "inj.pipe-to-shell";
/** The exfiltration channels: the rules of exfiltration.yaml (beacons, shell commands that send files), and sending data away in the other languages. */
const isExfiltration = (rule: string, group: string | undefined): boolean => group === "inj.exfiltration" || rule.startsWith("inj.exfil-");
const CONFIRMABLE: ReadonlySet<string> = new Set([CUE_GROUP, DISCUSSED, DISCUSSED_PATTERN, CARRIER_RULES.hidden.id, TOOL_COERCION, UNDESCRIBED]);

/** What the word model reads: the text in NFKC, lower case (words.ts). */
const WORDS_READING: Reading = { name: "nfkc", text: "" };

/** Findings listed per response; the score counts every rule whatever this cap. */
const MAX_FINDINGS = 64;

/** A finding of `rule` for `match`, found in `reading` of `segment`. */
function findingOf(rule: string, weight: number, segment: SegmentIn, reading: Reading, match: string, literal: string | null): InjectionFinding {
  return {
    rule,
    weight,
    location: segment.location,
    carrier: segment.carrier,
    reading: reading.name,
    ...(reading.via ? { via: reading.via } : {}),
    preview: previewOf(match),
    literal,
    ...(segment.range ? { range: segment.range } : {}),
  };
}

export interface InjectionOptions {
  /**
   * The pack (pack.ts). `discussionCues` (cues.ts), when given, finds the phrases that mark
   * writing about attacks; `relayCues`, where "tell the user" and its kind end; `vocabulary`,
   * the words a leetspeak word may read as.
   */
  readonly rules: CompiledRules & {
    discussionCues?(text: string): DiscussionCue[];
    relayCues?(text: string): number[];
    exampleCues?(text: string): ExampleCue[];
    completionsOf?(text: string): Int32Array;
    readonly vocabulary?: ReadonlySet<string>;
    readonly words?: WordModel | null;
  };
  /** Default 50. */
  readonly threshold?: number;
  /** Rule ids (the carrier rules included) that add nothing. */
  readonly disabled?: ReadonlySet<string>;
  readonly decodeLimits?: DecodeLimits;
}

export function createInjectionEngine(options: InjectionOptions): InjectionEngine {
  const weights = new Map(options.rules.rules.map((r) => [r.id, r.weight ?? 0] as const));
  // What a rule's weight is counted under: its group (cues.ts) or itself.
  const countedAs = new Map(options.rules.rules.map((r) => [r.id, r.group ?? r.id] as const));
  const threshold = options.threshold ?? 50;

  return {
    threshold,
    ruleIds: [...weights.keys(), ...Object.values(CARRIER_RULES).map((r) => r.id), ...(options.rules.words ? [WORD_RULE.id, UNCONFIRMED_RULE] : [])],
    scan(segments: readonly SegmentIn[], given?: ScoreTally): InjectionResult {
      const tally: ScoreTally = given ?? { counted: new Map(), score: 0 };
      // An earlier piece's unconfirmed cues (a stream): judged again with everything found so far.
      const unconfirmed = tally.counted.get(UNCONFIRMED_RULE);
      if (unconfirmed !== undefined) {
        tally.counted.delete(UNCONFIRMED_RULE);
        tally.score -= unconfirmed;
      }
      const findings: InjectionFinding[] = [];
      const words = options.rules.words && !options.disabled?.has(WORD_RULE.id) ? options.rules.words : null;
      // Where the rules found an order (not one discounted as discussed, quoted or reported).
      const anchors: Anchor[] = [];
      // Each rule (or group) counts once, at the highest weight it was found with.
      const counted = tally.counted;
      const count = (rule: string, weight: number) => {
        if (options.disabled?.has(rule)) return;
        const before = counted.get(rule) ?? 0;
        if (weight <= before) return;
        counted.set(rule, weight);
        tally.score += weight - before;
      };
      const seen = new Set<string>();
      // Whether what is shown had a leetspeak reading (some word of it in leetspeak): only then
      // can it have leetStretches for the word model.
      let shownLeet = false;
      /**
       * Scans one text (a segment, or several joined) in every reading. `at(offset)` names the
       * index of the segment a match as written starts in, and `bounds(i)` where segment i lies
       * in the text; matches in other readings are put on segment 0. `shown`: the text is what a
       * person sees (discussion applies).
       */
      const scanUnit = (text: string, units: readonly SegmentIn[], at: (offset: number) => number, bounds: (i: number) => readonly [number, number], shown: boolean) => {
        // Phrases of writing about attacks, found once (as written) for the whole text.
        const discussion = shown ? (options.rules.discussionCues?.(text) ?? []) : [];
        /** Whether the match [start, end) of segment i is in writing about attacks. */
        const discussed = (i: number, start: number, end: number): boolean => {
          const [from, to] = bounds(i);
          return discussedWithin(from, to, start, end);
        };
        /**
         * Whether [start, end) is in writing about attacks, the phrases looked for within [from,
         * to); with `apart` (a location), only phrases outside [start, end) that a reader sees
         * as that location's own words (shownApart).
         */
        const discussedWithin = (from: number, to: number, start: number, end: number, apart?: string): boolean => {
          if (discussion.length < DISCUSSION_MIN) return false;
          const lo = Math.max(from, start - DISCUSSION_REACH);
          const hi = Math.min(to, end + DISCUSSION_REACH);
          // Distinct phrases, overlapping ones once ("prompt injection" is also "injection"), at
          // least one of them about attacks (framing alone, "for example", is any text's).
          const distinct = new Set<number>();
          let strong = false;
          let last = -1;
          // The phrases are in order of end: from the first that ends at lo or later, up to hi
          // (a finding is asked about once, an intent's completion maybe thousands of times).
          for (let k = partitionPoint(discussion.length, (j) => discussion[j]!.end < lo); k < discussion.length; k++) {
            const d = discussion[k]!;
            if (d.end > hi) break;
            if (d.start < lo || d.start < last) continue;
            if (apart !== undefined && ((d.end > start && d.start < end) || !shownApart(d.start, apart))) continue;
            distinct.add(d.phrase);
            strong ||= d.strong;
            last = d.end;
          }
          return distinct.size >= (strong ? DISCUSSION_MIN : DISCUSSION_MIN_FRAMING);
        };
        // Where "tell the user" and its kind end in the text (in order), found when first needed.
        let relays: number[] | null = null;
        /** Whether the quotation opening at `a` does so right after a relay cue: a message to give, not words quoted. */
        const relayed = (a: number): boolean => {
          // The last relay cue ending before the quotation mark.
          const e = relayBefore(a - 1);
          return a - 1 - e <= RELAY_REACH && !text.slice(e, a - 1).includes("\n");
        };
        /** Where the last relay cue ending at or before `at` ends (-Infinity when none does). */
        const relayBefore = (at: number): number => {
          relays ??= options.rules.relayCues?.(text) ?? [];
          const k = firstAbove(relays, at) - 1;
          return k >= 0 ? relays[k]! : -Infinity;
        };
        // Where the example phrases are in the text (in order of end), found when first needed.
        let examples: ExampleCue[] | null = null;
        /**
         * Which of the quotations `q` of one line are examples: an example phrase right after
         * (right before) one, and each quotation listed before (after) it. Two sweeps of the line.
         */
        const examplesAmong = (q: readonly [number, number][]): boolean[] => {
          examples ??= options.rules.exampleCues?.(text) ?? [];
          const flags = q.map(() => false);
          if (examples.length === 0) return flags;
          const ex = examples;
          const listed = (k: number) => q[k + 1]![0] - 1 - (q[k]![1] + 1) <= LIST_GAP_MAX && LIST_GAP_TEXT.test(text.slice(q[k]![1] + 1, q[k + 1]![0] - 1));
          // An example phrase ending at most EXAMPLE_GAP before the opening mark, then the quotations listed after.
          let chain = false;
          for (let k = 0; k < q.length; k++) {
            const open = q[k]![0] - 1;
            let before = false;
            for (let j = partitionPoint(ex.length, (i) => ex[i]!.end < open - EXAMPLE_GAP); j < ex.length && ex[j]!.end <= open && !before; j++) before = ex[j]!.before && EXAMPLE_GAP_TEXT.test(text.slice(ex[j]!.end, open));
            chain = before || (chain && listed(k - 1));
            flags[k] = chain;
          }
          // An example phrase starting at most EXAMPLE_GAP after the closing mark, then the quotations listed before.
          chain = false;
          for (let k = q.length - 1; k >= 0; k--) {
            const close = q[k]![1] + 1;
            let after = false;
            for (let j = partitionPoint(ex.length, (i) => ex[i]!.end <= close); j < ex.length && ex[j]!.end <= close + EXAMPLE_GAP + EXAMPLE_PHRASE_MAX && !after; j++) {
              const e = ex[j]!;
              after = !e.before && e.start >= close && e.start - close <= EXAMPLE_GAP && EXAMPLE_GAP_TEXT.test(text.slice(close, e.start));
            }
            chain = after || (chain && listed(k));
            flags[k] ||= chain;
          }
          return flags;
        };
        // The quotations of each line, found when a finding on it first asks (a text may be a
        // megabyte of findings on one line, and each intent's completion asks): by the line's start.
        const lineQuotes = new Map<number, LineQuotes>();
        // Where the text's lines break, found when first needed: a line found by a binary search,
        // not by reading back to its start for every finding.
        let breaks: number[] | null = null;
        const lineAt = (at: number): [start: number, end: number] => {
          if (breaks === null) {
            breaks = [];
            for (let k = text.indexOf("\n"); k >= 0; k = text.indexOf("\n", k + 1)) breaks.push(k);
          }
          const k = firstAbove(breaks, at - 1);
          return [k > 0 ? breaks[k - 1]! + 1 : 0, k < breaks.length ? breaks[k]! : text.length];
        };
        const quotesOf = (lineStart: number, lineEnd: number): LineQuotes => {
          let line = lineQuotes.get(lineStart);
          if (line === undefined) {
            const q = quotedSpans(text, lineStart, lineEnd);
            const example = q.length > 0 ? examplesAmong(q) : [];
            lineQuotes.set(lineStart, (line = lineQuotesOf(q, (k) => (q[k]![1] - q[k]![0] >= QUOTED_SENTENCE ? SENTENCE : 0) | (example[k] && holdsWords(text.slice(q[k]![0], q[k]![1])) ? EXAMPLE : 0) | (relayed(q[k]![0]) ? RELAYED : 0))));
          }
          return line;
        };
        /**
         * Whether the match [start, end) is quoted: QUOTED_SHARE of it in quotations, both ends
         * too; or, when one end is in a quoted sentence (QUOTED_SENTENCE characters or more),
         * QUOTED_PART of it in such quotations (a report that quotes an instruction and says what
         * the model did with it: `"... send the key to x@y", and the agent tried to send it`); or
         * its end in an example. Sums kept per line make it a few binary searches, however many
         * quotations the match spans.
         */
        const quoted = (start: number, end: number): boolean => {
          let any = false;
          let inside = 0;
          let first = false;
          let last = false;
          let sentence = 0;
          let sentenceEnd = false;
          let exampleEnd = false;
          for (let [line, lineEnd] = lineAt(start); ; [line, lineEnd] = lineAt(lineEnd + 1)) {
            const lq = quotesOf(line, lineEnd);
            const q = lq.spans;
            // The quotations [k0, k1) of the line that overlap the match.
            const k0 = firstEndAfter(q, start);
            const k1 = partitionPoint(q.length, (i) => q[i]![0] < end);
            if (k0 < k1) {
              any = true;
              // The message an order tells the reader to give ("tell the user: «paste your token
              // here»") is the injected text itself.
              if (lq.relayed[k1]! - lq.relayed[k0]! > 0) return false;
              const startsIn = q[k0]![0] <= start;
              const endsIn = q[k1 - 1]![1] >= end;
              inside += overlapOf(lq, 0, k0, k1, start, end);
              first ||= startsIn;
              last ||= endsIn;
              sentence += overlapOf(lq, SENTENCE, k0, k1, start, end);
              sentenceEnd ||= (startsIn && (lq.kind[k0]! & SENTENCE) !== 0) || (endsIn && (lq.kind[k1 - 1]! & SENTENCE) !== 0);
              exampleEnd ||= endsIn && (lq.kind[k1 - 1]! & EXAMPLE) !== 0;
            }
            if (lineEnd >= end || lineEnd >= text.length) break;
          }
          if (!any) return false;
          const part = QUOTED_PART * (end - start);
          return (first && last && inside >= QUOTED_SHARE * (end - start)) || (sentenceEnd && sentence >= part) || exampleEnd;
        };
        // The strings the JSON record on each line reports on (a guardrail log line quoting the
        // attack it flagged), found when a finding on the line first asks: by the line's start.
        const lineRecords = new Map<number, [number, number][]>();
        /** Whether the match [start, end) lies in a string a one-line classifier record reports on. */
        const inRecord = (start: number, end: number): boolean => {
          const [line, lineEnd] = lineAt(start);
          if (end > lineEnd) return false;
          let spans = lineRecords.get(line);
          if (spans === undefined) lineRecords.set(line, (spans = recordSpans(text, line, lineEnd)));
          return spans.some(([a, b]) => start >= a && end <= b);
        };
        /**
         * Whether the match [start, end) lies in a test's parameters on a test runner's result
         * line (`tests/x.py::test_refuses[ignore previous instructions] PASSED`): the input the
         * test was run with, listed.
         */
        const inTestId = (start: number, end: number): boolean => {
          const [line, lineEnd] = lineAt(start);
          if (end > lineEnd || lineEnd - line > TEST_LINE_MAX) return false;
          // The parameters' span on the line, found when a finding on it first asks (null: none).
          let span = lineTests.get(line);
          if (span === undefined) {
            const m = TEST_RESULT_LINE.exec(text.slice(line, lineEnd));
            lineTests.set(line, (span = m === null ? null : [line + m[1]!.length, line + m[1]!.length + m[2]!.length]));
          }
          return span !== null && start >= span[0] && end <= span[1];
        };
        const lineTests = new Map<number, [number, number] | null>();
        /** Whether the match [start, end) of segment i lies wholly in one of its blocks of code. */
        const inCode = (i: number, start: number, end: number): boolean => {
          const code = units[i]!.code;
          if (code === undefined) return false;
          const offset = bounds(i)[0];
          // Blocks are in order and apart: only the first that ends after the match starts can hold it.
          const block = code[firstEndAfter(code, start - offset)];
          return block !== undefined && start >= offset + block[0] && end <= offset + block[1];
        };
        // Right-to-left override runs of the text as written (in order, apart), found when first needed.
        let overrides: [number, number][] | null = null;
        const inOverride = (start: number, end: number): boolean => {
          overrides ??= overrideSpans(text);
          const run = overrides[firstEndAfter(overrides, start)];
          return run !== undefined && run[0] < end;
        };
        /** The unit a match as written starts in: one starting in the separator after a unit (a pattern that takes the line break before a line) is the next unit's. */
        const unitAt = (start: number): number => {
          const index = at(start);
          return index + 1 < units.length && start >= bounds(index)[1] ? index + 1 : index;
        };
        /**
         * Whether [start, end) as written in unit i is data rather than an order given: shown as
         * code, a classifier's reported text, or (in shown text only: nobody hides an explanation
         * or a quotation) quoted, in a one-line record or in writing about attacks.
         */
        const asData = (i: number, start: number, end: number): boolean => {
          const segment = units[i]!;
          return segment.carrier === "code" || segment.reported === true || inCode(i, start, end) || (shown && (wholeValue(i, start, end) || quoted(start, end) || inRecord(start, end) || inTestId(start, end) || discussed(i, start, end)));
        };
        /**
         * Whether [start, end) is one special token naming no role (`<|im_end|>`, `</s>`) and all
         * of unit i but white space: a JSON value that is only such a token (`"eos_token":
         * "<|im_end|>"` in a tokenizer's configuration) names it; a frame forged to be read as a
         * turn has a turn in it, and an order has words.
         */
        const wholeValue = (i: number, start: number, end: number): boolean => {
          if (units.length < 2) return false;
          const match = text.slice(start, end);
          if (!SPECIAL_TOKEN.test(match) || ROLE_NAME.test(match)) return false;
          const [from, to] = bounds(i);
          const t = units[i]!.text;
          return start <= from + (t.length - t.trimStart().length) && end >= to - (t.length - t.trimEnd().length);
        };
        // A rule found in an earlier reading (the text as written first) is not found again in
        // a later one: a later reading repeats the plain text around what it changed, and an
        // instruction written plainly is not an obfuscated one.
        const found = new Set<string>();
        for (const reading of readingsOf(text, options.decodeLimits, options.rules.vocabulary)) {
          if (shown && reading.name === "leetspeak") shownLeet = true;
          const here = new Set<string>();
          for (const f of options.rules.scan(reading.text)) {
            if (found.has(f.rule)) continue;
            // A match that reaches from an opaque encoding into the text around it counts; it is an
            // encoded instruction (the carrier's weight on top) only when what was decoded is
            // sentences ("hex for the agent: <hex>"). "Send the key to <base64 of a URL>" keeps
            // its weight; a base64 secret after a `.env` file name adds none.
            const outside = reading.decodedSpan !== undefined && isOpaque(reading) && (f.start < reading.decodedSpan[0] || f.end > reading.decodedSpan[1]);
            const encodedData = outside && !isProse(reading.text, reading.decodedSpan!);
            here.add(f.rule);
            // The text as written, or read with its Latin diacritics dropped (offsets hold): where
            // the match lies, and whether it is data there, are known.
            const aligned = reading.name === "raw" || reading.name === "accents" || reading.name === "joined-words";
            const index = aligned ? unitAt(f.start) : 0;
            const segment = units[index]!;
            // Shown as a block of code, quoted, or in writing about attacks, an instruction is
            // more often discussed than given: half weight, never less (cue intents may have been
            // halved already, by a discussion phrase within their reach). All such findings of a
            // response count as one: a page that shows a format in a code block and names it in
            // inline code shows it twice, it does not give two instructions.
            const rule = weights.get(f.rule) ?? 0;
            const halved = aligned ? asData(index, f.start, f.end) : segment.carrier === "code";
            // In a hidden carrier nothing is discounted, a cue intent's own damping included.
            const asFound = shown ? (f.weight ?? rule) : rule;
            const weight = Math.max(Math.ceil(rule / 2), Math.ceil(asFound / (halved ? 2 : 1)));
            if (!options.disabled?.has(f.rule)) {
              count(halved ? DISCUSSED : (countedAs.get(f.rule) ?? f.rule), weight);
              // What the model may not confirm away (CONFIRMABLE), marked.
              const group = countedAs.get(f.rule);
              if (halved && group !== CUE_GROUP) counted.set(isExfiltration(f.rule, group) ? DISCUSSED_EXFILTRATION : DISCUSSED_PATTERN, 0);
              if (!halved && group === TOOL_COERCION && f.rule !== CONFIRMABLE_COMMAND) counted.set(COMMAND, 0);
              if (!DESCRIBING.has(segment.carrier) && (f.rule === CONFIRMABLE_COMMAND || !SHOWN.has(segment.carrier))) counted.set(UNDESCRIBED, 0);
            }
            // What the word model may read: the text around a finding given as an order.
            if (words && !halved && weight > 0) anchors.push({ text: reading.text, start: f.start, end: f.end, segment, weight });
            const match = reading.text.slice(f.start, f.end);
            const carrier =
              !SHOWN.has(segment.carrier)
                ? CARRIER_RULES.hidden
                : reading.name === "unicode-tags"
                  ? CARRIER_RULES.tags
                  : reading.name === "decoded"
                    ? markupEscaped(reading, text) || encodedData
                      ? null
                      : CARRIER_RULES.encoded
                    : OBFUSCATIONS.has(reading.name) || (aligned && (segment.escaped === true || inOverride(f.start, f.end)))
                      ? CARRIER_RULES.obfuscated
                      : null;
            // The carrier is a finding of its own, listed once per response.
            if (carrier !== null && !counted.has(carrier.id) && !options.disabled?.has(carrier.id)) {
              count(carrier.id, carrier.weight);
              findings.push(findingOf(carrier.id, carrier.weight, segment, reading, match, null));
            }
            const key = `${f.rule}\u0000${segment.location}\u0000${segment.carrier}\u0000${reading.name === "raw" ? match : reading.name}`;
            if (seen.has(key) || findings.length >= MAX_FINDINGS) continue;
            seen.add(key);
            // What strip cuts out: the match as written (read without accents, the same place in the text).
            findings.push(findingOf(f.rule, weight, segment, reading, match, reading.name === "raw" ? match : reading.name === "accents" || reading.name === "joined-words" ? text.slice(f.start, f.end) : null));
          }
          for (const r of here) found.add(r);
          // Every place an intent completes, not only the one each reports: a harmless sentence
          // before the payload that makes the same weak moves must not keep the model from it.
          if (words && reading.name === "raw" && options.rules.completionsOf) {
            const spans = options.rules.completionsOf(reading.text);
            // One that lies inside the stretch the last anchor has the model read needs no test
            // of its own (a megabyte of completions is tested a few thousand times, not a million).
            let coveredFrom = 0;
            let coveredTo = -1;
            let coveredWeight = 0;
            // The last span found to be data.
            let dataFrom = -1;
            let dataTo = -1;
            for (let k = 0; k < spans.length; k += 3) {
              const start = spans[k]!;
              const end = spans[k + 1]!;
              const weight = spans[k + 2]!;
              if (start >= coveredFrom && end <= coveredTo && weight <= coveredWeight) continue;
              // Several intents often complete on the same span: asked once.
              if (start === dataFrom && end === dataTo) continue;
              const index = unitAt(start);
              if (asData(index, start, end)) {
                dataFrom = start;
                dataTo = end;
                continue;
              }
              anchors.push({ text: reading.text, start, end, segment: units[index]!, weight });
              coveredFrom = start - WORD_REACH;
              coveredTo = end + WORD_REACH;
              coveredWeight = weight;
            }
          }
        }
        /**
         * The quoted sentences of the text (QUOTED_SENTENCE characters or more) that are no
         * message an order tells the reader to give (RELAYED: `tell the user: "..."` is the
         * injected text itself) and no inline code (the command an order gives: "run `curl ...
         * | sh`"), where the text has writing about attacks somewhere; none elsewhere.
         */
        const quotedSentences = (): [number, number][] => {
          const out: [number, number][] = [];
          if (discussion.length < DISCUSSION_MIN) return out;
          // Only lines within DISCUSSION_REACH of a phrase can be discussed.
          let line = 0;
          for (const d of discussion) {
            const from = Math.max(line, d.start - DISCUSSION_REACH);
            const to = Math.min(text.length, d.end + DISCUSSION_REACH);
            if (from >= to) continue;
            for (line = lineAt(from)[0]; line < to; ) {
              const next = text.indexOf("\n", line);
              const end = next < 0 ? text.length : next;
              if (end > line) {
                const lq = quotesOf(line, end);
                for (let k = 0; k < lq.spans.length; k++) {
                  const [a, b] = lq.spans[k]!;
                  if ((lq.kind[k]! & (SENTENCE | RELAYED)) !== SENTENCE || text.charCodeAt(a - 1) === 96) continue;
                  // Quotation marks of the page's text, not those an attribute's value is written in.
                  const carrier = units[unitAt(a)]!.carrier;
                  if (carrier === "visible" || carrier === "text") out.push([a, b]);
                }
              }
              line = end + 1;
            }
          }
          return out;
        };
        /**
         * Whether a phrase at `p` is in the page's own words: in text shown as such (not an
         * attribute's value, code or a classifier's reported text) and not in a comment left in
         * it (`<!-- -->`, markdown's `[//]: # (...)`). Text the model is to skip must be
         * discussed by words a reader sees around it, at its own location (the page; not another
         * JSON value, a tag list beside a body), and not by itself: a quotation that names
         * attacks, a comment or another value beside it, would otherwise hide any order.
         */
        const shownApart = (p: number, location: string): boolean => {
          const index = unitAt(p);
          const unit = units[index]!;
          if ((unit.carrier !== "visible" && unit.carrier !== "text") || unit.reported === true || unit.location !== location) return false;
          const from = bounds(index)[0];
          // The comment (`<!--` to its `-->`, or the text's end) that starts last at or before p.
          comments ??= commentSpans(text);
          const c = comments[partitionPoint(comments.length, (k) => comments![k]![0] <= p) - 1];
          if (c !== undefined && c[0] >= from && p < c[1]) return false;
          const line = Math.max(lineAt(p)[0], from);
          return !REFERENCE_COMMENT.test(text.slice(line, line + 16));
        };
        // Where the text's HTML comments are, found when first needed.
        let comments: [number, number][] | null = null;
        /** Whether the block quote starting at `a` does so right after a relay cue ("tell the user:" then a `>` quote): the message to give. */
        const relayedBlock = (a: number): boolean => {
          const e = relayBefore(a);
          return a - e <= RELAY_REACH && /^[\s:：>]*$/.test(text.slice(e, a));
        };
        return { discussed: (start: number, end: number) => discussedWithin(0, text.length, start, end, units[unitAt(start)]!.location), quotedSentences, relayedBlock };
      };
      // What a person sees (a page's text, JSON values, stream events) is read as one text, the
      // pieces apart by SEGMENT_SEPARATOR: one pass of each reading rather than one per value.
      // A NUL of their own becomes a space, so no text can fake the separator. Each hidden
      // carrier is read on its own, so a finding keeps its carrier and its range.
      const clean = (t: string) => (t.includes("\u0000") ? t.replaceAll("\u0000", " ") : t);
      // Markdown's own hiding places in shown text (reference-link comments, image alt text,
      // link titles) are read apart as well, as hidden carriers.
      let extra: SegmentIn[] | null = null;
      for (const s of segments) {
        if (!SHOWN.has(s.carrier) || s.carrier === "code") continue;
        const hidden = markdownCarriers(s);
        if (hidden.length > 0) (extra ??= []).push(...hidden);
      }
      if (extra !== null) segments = [...segments, ...extra];
      const shown = segments.filter((s) => SHOWN.has(s.carrier) && s.text.trim().length > 0);
      // What is shown, read as one text, and the segment an offset of it lies in.
      let shownText: string | null = null;
      // Where the code of shownText is, and whether it was blanked there as discussed (WORD_RULE.code reads each).
      let shownCode: [start: number, end: number, blanked: boolean][] = [];
      let joinedText: string | null = null;
      let shownAt: (offset: number) => number = () => 0;
      if (shown.length > 0) {
        const starts: number[] = [];
        let joined = "";
        for (const s of shown) {
          if (joined.length > 0) joined += SEGMENT_SEPARATOR;
          starts.push(joined.length);
          joined += clean(s.text);
        }
        const at = (offset: number): number => {
          let lo = 0;
          let hi = starts.length - 1;
          while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if (starts[mid]! <= offset) lo = mid;
            else hi = mid - 1;
          }
          return lo;
        };
        const bounds = (i: number) => [starts[i]!, starts[i]! + shown[i]!.text.length] as const;
        const { discussed: discussedAt, quotedSentences, relayedBlock } = scanUnit(joined, shown, at, bounds, true);
        // The model reads it whole with what is shown as data blanked out: text a classifier
        // reports on, and code, block quotes and quoted sentences in writing about attacks (the
        // rules count those half, as quoted rather than said). Code and quotes elsewhere are
        // read: an order in a code block is read by the model the page is for, and fencing one
        // must not hide it (blankData).
        const quotations = quotedSentences();
        if (quotations.length > 0 || shown.some((s) => s.carrier === "code" || s.reported === true || s.code !== undefined || s.quotes !== undefined)) {
          const blanked = blankData(joined, shown, starts, quotations, discussedAt, relayedBlock);
          joinedText = joined;
          shownText = blanked.text;
          shownCode = blanked.code;
        } else shownText = joined;
        shownAt = at;
      }
      for (const segment of segments) {
        if (SHOWN.has(segment.carrier) || segment.text.trim().length === 0) continue;
        const text = clean(segment.text);
        scanUnit(text, [segment], () => 0, () => [0, text.length], false);
      }
      // The word model reads whole texts too (WORD_RULE.shown, .hidden): what a person sees, for
      // an order in words no lexicon has, each hidden carrier, and each obfuscated paragraph of
      // what is shown. Not needed once over the line.
      if (words && tally.score < threshold && (counted.get(WORD_RULE.id) ?? 0) < WORD_RULE.shown.weight) {
        const { shown: whole, hidden } = WORD_RULE;
        // What is shown with words of mixed scripts (look-alikes) in one script, as a person reads
        // them (one code unit for one: offsets into shownText hold).
        const shownRead = shownText === null ? null : (mixedWordsFolded(shownText) ?? shownText);
        let best = shownRead === null ? null : strongestIn(words, shownRead, whole.prose, whole.probability);
        // Each code block is read on its own as well (WORD_RULE.code): the rules count what is
        // in one half, and an order fenced between sentences is read apart from them. One blanked
        // as discussed only surer: a sentence of discussion before a fenced block must not be
        // all it takes to hide an order in it.
        for (let k = 0; best === null && k < shownCode.length; k++) {
          const [a, b, blanked] = shownCode[k]!;
          const code = joinedText!.slice(a, b);
          const found = strongestIn(words, mixedWordsFolded(code) ?? code, WORD_RULE.code.prose, blanked ? WORD_RULE.code.discussed : WORD_RULE.code.probability);
          if (found !== null) best = { ...found, unit: found.unit === null ? a : a + found.unit };
        }
        if (best !== null) {
          count(WORD_RULE.id, whole.weight);
          if (findings.length < MAX_FINDINGS) findings.push(findingOf(WORD_RULE.id, whole.weight, shown[best.unit === null ? 0 : shownAt(best.unit)]!, WORDS_READING, best.preview, null));
        } else {
          /** A window of the hidden reading's probability in `segment`: the carrier's weight (once a response) and the reading's. */
          const countHidden = (carrier: { readonly id: string; readonly weight: number }, segment: SegmentIn, preview: string) => {
            if (!counted.has(carrier.id) && !options.disabled?.has(carrier.id)) {
              count(carrier.id, carrier.weight);
              if (findings.length < MAX_FINDINGS) findings.push(findingOf(carrier.id, carrier.weight, segment, WORDS_READING, preview, null));
            }
            // An obfuscated paragraph's reading weighs more (WORD_RULE.obfuscated): its carrier weighs less.
            const weight = carrier.id === CARRIER_RULES.obfuscated.id ? WORD_RULE.obfuscated.weight : hidden.weight;
            count(WORD_RULE.id, weight);
            if (findings.length < MAX_FINDINGS) findings.push(findingOf(WORD_RULE.id, weight, segment, WORDS_READING, preview, null));
          };
          /** Reads `text` (of `segment`) as `carrier` hides it: when it is sentences with a window of the reading's probability, counted (countHidden). Whether it was. */
          const readHidden = (carrier: { readonly id: string; readonly weight: number }, segment: SegmentIn, text: string): boolean => {
            if (!isProse(text, [0, text.length])) return false;
            const probability = carrier.id === CARRIER_RULES.obfuscated.id ? WORD_RULE.obfuscated.probability : hidden.probability;
            const window = strongestWindow(words, text, 0, probability);
            if (window === null) return false;
            countHidden(carrier, segment, window.normal.slice(window.start, window.end));
            return true;
          };
          // Hidden carriers that are sentences (escaped strings among them), at most HIDDEN_READ
          // of them in all.
          let budget = HIDDEN_READ;
          for (const segment of segments) {
            if ((SHOWN.has(segment.carrier) && segment.escaped !== true) || budget <= 0) continue;
            // Only sentences spend the budget: kilobytes of junk in one carrier must not switch
            // the reading off for the next.
            const text = segment.text.length > budget ? segment.text.slice(0, budget) : segment.text;
            if (!isProse(text, [0, text.length])) continue;
            budget -= text.length;
            const window = strongestWindow(words, mixedWordsFolded(text) ?? text, 0, hidden.probability);
            if (window === null) continue;
            countHidden(CARRIER_RULES.hidden, segment, window.normal.slice(window.start, window.end));
            break;
          }
          // Text smuggled in Unicode tag characters, which show as nothing (readings.ts
          // unicodeTags): read like a hidden carrier, with the tags' weight for the carrier's. A
          // flag's tag sequence (🏴 and `gbeng`) is no sentence.
          if (!counted.has(WORD_RULE.id)) {
            const texts = [...(shownText !== null ? [{ text: shownText, segment: (at: number) => shown[shownAt(at)]! }] : []), ...segments.filter((s) => !SHOWN.has(s.carrier)).map((s) => ({ text: s.text, segment: () => s }))];
            for (const { text, segment } of texts) {
              const tags = unicodeTags(text);
              if (tags !== null && readHidden(CARRIER_RULES.tags, segment(tags.start), tags.text)) break;
            }
          }
          // Paragraphs of shown text written with characters that change how they are stored, not
          // how they read (zero-width spaces inside words, bidi isolates around the spaces between
          // them, override runs; readings.ts obfuscatedStretches): read as the model receives them
          // and as a person reads them, like a hidden carrier, with the obfuscation's weight for
          // the carrier's. No budget: each is read once, within the shown text's length.
          if (shownText !== null && !counted.has(WORD_RULE.id)) {
            reading: for (const [a, b] of obfuscatedStretches(shownText)) {
              for (const text of deobfuscated(shownText.slice(a, b))) if (readHidden(CARRIER_RULES.obfuscated, shown[shownAt(a)]!, text)) break reading;
            }
          }
          // Stretches written in look-alike letters (three words or more close together that mix
          // Latin with Cyrillic or Greek: readings.ts mixedStretches), read in one script, as a
          // person reads them.
          if (shownText !== null && shownRead !== null && shownRead !== shownText && !counted.has(WORD_RULE.id)) {
            for (const [a, b] of mixedStretches(shownText, shownRead)) if (readHidden(CARRIER_RULES.obfuscated, shown[shownAt(a)]!, shownRead.slice(a, b))) break;
          }
          // Paragraphs written in leetspeak, read with their letters back (`r3c0rd3d`), look-alike
          // letters among them too (`r3с0rd3d`, a Cyrillic с).
          if (shownLeet && shownRead !== null && !counted.has(WORD_RULE.id) && options.rules.vocabulary !== undefined) {
            for (const [a, b] of leetStretches(shownRead, options.rules.vocabulary)) {
              if (readHidden(CARRIER_RULES.obfuscated, shown[shownAt(a)]!, leetReadable(shownRead.slice(a, b), options.rules.vocabulary))) break;
            }
          }
        }
      }
      // The learned word model's tiers (words.ts), only around what the rules found as orders
      // (read anywhere, a long text's thousands of windows would hold one that reaches them by
      // chance); its strongest window there so far (a stream's earlier pieces included). It
      // only ever tips: a tier's weight is counted when the window reaches the tier's
      // probability and the weight the threshold (a tier that would not is not counted). A
      // response judged whole that the top tier could not take there is not read (a stream is:
      // its later pieces may score more, and the strongest window is kept for them).
      // (What a hidden carrier's reading counted already is not counted twice.)
      const already = counted.get(WORD_RULE.id) ?? 0;
      const reachable = given !== undefined || tally.score + WORD_RULE.tiers[0].weight - already >= threshold;
      if (words && reachable && tally.score < threshold && already < WORD_RULE.tiers[0].weight) {
        if (anchors.length > 0) readAround(words, anchors, tally);
        const best = tally.words;
        const tier = best === undefined ? undefined : WORD_RULE.tiers.find((t) => best.probability >= t.probability);
        if (best !== undefined && tier !== undefined && tier.weight > already && tally.score + tier.weight - already >= threshold) {
          count(WORD_RULE.id, tier.weight);
          if (findings.length < MAX_FINDINGS) findings.push(findingOf(WORD_RULE.id, tier.weight, best.segment, WORDS_READING, best.preview, null));
        }
      }
      // Taken over the threshold by cue intents (what the rest scores is under it), nothing
      // beside them but what is CONFIRMABLE, none of CONFIRM_EXEMPT (CONFIRM_HIDDEN_EXEMPT beside a
      // hidden carrier or the installer): the model must confirm.
      const cues = counted.get(CUE_GROUP) ?? 0;
      const inHidden = counted.has(CARRIER_RULES.hidden.id);
      const exempt = inHidden || counted.has(TOOL_COERCION) ? CONFIRM_HIDDEN_EXEMPT : CONFIRM_EXEMPT;
      const probability = inHidden ? CONFIRM_HIDDEN_PROBABILITY : counted.has(DISCUSSED_PATTERN) ? CONFIRM_DISCUSSED_PROBABILITY : CONFIRM_PROBABILITY;
      // An installer one-liner and a hidden carrier found only in alt or title text (DESCRIBING).
      const described = inHidden && !counted.has(UNDESCRIBED) ? (counted.get(TOOL_COERCION) ?? 0) : 0;
      const confirmable = () => (cues > 0 || described > 0) && tally.score - cues - described < threshold && [...counted.keys()].every((k) => CONFIRMABLE.has(k));
      if (words && !options.disabled?.has(UNCONFIRMED_RULE) && tally.score >= threshold && cues < exempt && confirmable()) {
        // Around what the strongest findings and completions are, close (CONFIRM_ANCHOR_SHARE,
        // CONFIRM_ANCHOR_FLOOR, CONFIRM_REACH), and all of a hidden carrier's: this scan's, the
        // piece of a stream that took it over the threshold.
        const top = anchors.reduce((m, a) => Math.max(m, a.weight), 0);
        const strong = anchors.filter((a) => a.weight >= Math.min(CONFIRM_ANCHOR_SHARE * top, CONFIRM_ANCHOR_FLOOR) || (inHidden && !SHOWN.has(a.segment.carrier)));
        const best = strong.length > 0 ? strongestAround(words, strong, tally, CONFIRM_REACH) : undefined;
        if (best === undefined || best.probability < probability) {
          const cut = tally.score - (threshold - 1);
          counted.set(UNCONFIRMED_RULE, -cut);
          tally.score -= cut;
          const segment = best?.segment ?? segments[0]!;
          if (findings.length < MAX_FINDINGS) findings.push(findingOf(UNCONFIRMED_RULE, -cut, segment, WORDS_READING, best?.preview ?? "", null));
        }
      }
      return { score: tally.score, findings };
    },
  };
}

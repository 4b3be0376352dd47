/**
 * Hiding techniques: how an injected instruction is placed in a carrier. Each takes the
 * instruction as written in the payload files and returns the fragment that goes into the
 * carrier's slot (plus a `<head>` element for meta-description, and a flag for JSON escaping).
 */
import { escAttr, escText, percentAll } from "./markup.ts";
import type { Rng } from "./rng.ts";

export const TECHNIQUES = [
  "plain",
  "html-comment",
  "display-none",
  "visibility-hidden",
  "font-size-zero",
  "offscreen",
  "white-on-white",
  "aria-hidden",
  "noscript",
  "img-alt",
  "title-attribute",
  "meta-description",
  "zero-width",
  "unicode-tags",
  "bidi-override",
  "base64",
  "hex",
  "percent",
  "leetspeak",
  "spaced-letters",
  "homoglyph",
  "markdown-beacon",
  "markdown-comment",
  "json-unicode-escape",
] as const;
export type Technique = (typeof TECHNIQUES)[number];

/** What the slot a fragment goes into holds: HTML markup, markdown, or plain text. */
export type Markup = "html" | "markdown" | "text";

export interface SlotInfo {
  readonly markup: Markup;
  /** The template has a `{{head}}` slot (an HTML page or HTML mail). */
  readonly head: boolean;
  /** The slot is a JSON string value. */
  readonly json: boolean;
}

/** Per-language phrases the techniques wrap an encoded instruction in (data/techniques.yaml). */
export interface LangKit {
  readonly base64: readonly string[];
  readonly hex: readonly string[];
  readonly percent: readonly string[];
  /** Innocuous visible text that invisible (tag-block) characters are appended to. */
  readonly cover: readonly string[];
  /** Link texts for title attributes and markdown links. */
  readonly linkText: readonly string[];
}

export interface Hidden {
  readonly fragment: string;
  /** Replaces the template's `<meta name="description">` (meta-description only). */
  readonly head?: string;
  /** The fragment is written as `\uXXXX` escapes inside its JSON string. */
  readonly jsonEscape?: boolean;
}

const LATIN = new Set(["en", "es", "fr", "de", "pt"]);
const HTML_ELEMENT = new Set<Technique>(["html-comment", "display-none", "visibility-hidden", "font-size-zero", "offscreen", "white-on-white", "aria-hidden", "img-alt", "title-attribute"]);

export function techniqueFitsLanguage(t: Technique, lang: string): boolean {
  if (t === "leetspeak" || t === "unicode-tags") return LATIN.has(lang);
  if (t === "homoglyph") return LATIN.has(lang) || lang === "ru";
  return true;
}

export function techniqueFitsSlot(t: Technique, slot: SlotInfo): boolean {
  if (HTML_ELEMENT.has(t)) return slot.markup !== "text";
  if (t === "noscript") return slot.markup === "html";
  if (t === "meta-description") return slot.head;
  if (t === "markdown-beacon" || t === "markdown-comment") return slot.markup === "markdown";
  if (t === "json-unicode-escape") return slot.json;
  return true;
}

// ---- word-level transforms that leave URLs, paths, commands and delimiters intact ----------

/** ASCII runs holding URL, path, code or delimiter characters; dotfiles; shell words; flags. */
const PROTECT =
  /`[^`\n]*`|[\x21-\x7e]*[_/@<>[\]|{}=$\\][\x21-\x7e]*|(?<![\p{L}\p{N}])\.[A-Za-z][\w.-]*|\b(?:curl|wget|sh|bash|zsh|pip|npm|npx|python3?|node|sudo|rm|chmod|ssh|git|echo|iex|powershell)\b|(?<!\S)-{1,2}[\w-]+/gu;

/** Applies `f` to the stretches of `text` between protected tokens. */
function mapProse(text: string, f: (s: string) => string): string {
  let out = "";
  let last = 0;
  for (const m of text.matchAll(PROTECT)) {
    out += f(text.slice(last, m.index)) + m[0];
    last = m.index + m[0].length;
  }
  return out + f(text.slice(last));
}

const ZW = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"];

function zeroWidth(text: string, rng: Rng): string {
  const zw = rng.chance(0.5) ? [rng.pick(ZW)] : ZW;
  const out = mapProse(text, (s) => {
    const cs = Array.from(s);
    let o = "";
    for (let i = 0; i < cs.length; i++) {
      o += cs[i];
      const a = cs[i]!;
      const b = cs[i + 1];
      if (b !== undefined && /[\p{L}\p{N}]/u.test(a) && /[\p{L}\p{N}]/u.test(b) && rng.chance(0.55)) o += rng.pick(zw);
    }
    return o;
  });
  // A payload whose author already spaced its letters out has no two letters side by side: the
  // zero-width characters go before its spaces instead (no draw, so no other sample moves).
  return out !== text ? out : mapProse(text, (s) => s.replace(/([\p{L}\p{N}]) (?=[\p{L}\p{N}])/gu, `$1${zw[0]} `));
}

const LEET: Record<string, readonly string[]> = { a: ["4", "@"], e: ["3"], i: ["1", "!"], o: ["0"], s: ["5", "$"], t: ["7"], l: ["1"], g: ["9"], b: ["8"], z: ["2"] };

function leet(text: string, rng: Rng): string {
  const p = 0.55 + rng.next() * 0.4;
  return mapProse(text, (s) =>
    Array.from(s)
      .map((c) => {
        const subs = LEET[c.toLowerCase()];
        if (subs === undefined || !rng.chance(p)) return c;
        return rng.chance(0.8) ? subs[0]! : rng.pick(subs);
      })
      .join(""),
  );
}

function spaced(text: string, rng: Rng): string {
  const [sep, wordSep] = rng.pick([[" ", "   "], [" ", " / "], [".", " "], ["-", "  "], [" ", "  "]] as const);
  return mapProse(text, (s) =>
    s
      .split(/(\s+)/)
      .map((w, i) => (i % 2 === 1 ? (w.includes("\n") ? w : wordSep) : Array.from(w).join(sep)))
      .join(""),
  );
}

const TO_CYRILLIC: Record<string, string> = {
  a: "а", c: "с", e: "е", o: "о", p: "р", x: "х", y: "у", i: "і", s: "ѕ", j: "ј",
  A: "А", B: "В", C: "С", E: "Е", H: "Н", K: "К", M: "М", O: "О", P: "Р", T: "Т", X: "Х",
};
const TO_LATIN: Record<string, string> = {
  а: "a", е: "e", о: "o", р: "p", с: "c", у: "y", х: "x",
  А: "A", В: "B", Е: "E", К: "K", М: "M", Н: "H", О: "O", Р: "P", С: "C", Т: "T", Х: "X",
};

function homoglyph(text: string, lang: string, rng: Rng): string {
  const map = lang === "ru" ? TO_LATIN : TO_CYRILLIC;
  const p = 0.35 + rng.next() * 0.5;
  return mapProse(text, (s) => Array.from(s).map((c) => (map[c] !== undefined && rng.chance(p) ? map[c] : c)).join(""));
}

/** The tag block mirrors printable ASCII only: accents are dropped, everything else removed. */
export function toTagAscii(text: string): string {
  return text
    .normalize("NFD")
    .replace(/\p{M}/gu, "")
    .replace(/ß/g, "ss")
    .replace(/[«»“”„]/g, '"')
    .replace(/[‘’]/g, "'")
    .replace(/[–—]/g, "-")
    .replace(/[¿¡]/g, "")
    .replace(/\s+/g, " ")
    .replace(/[^\x20-\x7e]/g, "");
}

function unicodeTags(text: string, rng: Rng): string {
  const tags = Array.from(toTagAscii(text))
    .map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0)))
    .join("");
  return rng.chance(0.4) ? `\u{e0001}${tags}\u{e007f}` : tags;
}

function bidi(text: string, rng: Rng): string {
  const variant = rng.int(3);
  // Text without spaces (Chinese, Japanese) has no gaps to fill: wrap it whole instead.
  switch (variant === 1 && !text.includes(" ") ? 2 : variant) {
    case 0:
      // Stored reversed inside a right-to-left override: displays as ordinary text.
      return `\u202e${Array.from(text).reverse().join("")}\u202c`;
    case 1: {
      // Logical order kept, every gap between words wrapped in directional controls.
      const gap = rng.pick(["\u2066 \u2069", "\u202d \u202c", "\u202a \u202c", "\u2067 \u2069"]);
      return text.replace(/ /g, gap);
    }
    default:
      // Logical order kept inside an isolate and an override: displays garbled to a human.
      return `\u2067\u202e${text}\u202c\u2069`;
  }
}

function hexOf(text: string, rng: Rng): string {
  const hex = Buffer.from(text, "utf8").toString("hex");
  switch (rng.int(3)) {
    case 0:
      return hex;
    case 1:
      return hex.match(/../g)!.join(" ");
    default:
      return hex.match(/../g)!.map((h) => `\\x${h}`).join("");
  }
}

function encoded(kit: readonly string[], enc: string, rng: Rng): string {
  return rng.pick(kit).replace("{{encoded}}", () => enc);
}

// ---- placing a fragment --------------------------------------------------------------------

/** Text as a block in the slot's markup. */
function block(text: string, markup: Markup, rng: Rng): string {
  if (markup !== "html") return text;
  if (text.includes("\n") && rng.chance(0.35)) return `<pre>${escText(text)}</pre>`;
  return `<p>${escText(text).replace(/\n/g, "<br>\n")}</p>`;
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, " ");

export function hide(t: Technique, instruction: string, lang: string, slot: SlotInfo, kit: LangKit, hosts: readonly string[], rng: Rng): Hidden {
  const m = slot.markup;
  const inner = m === "html" ? escText(instruction) : instruction;
  const attr = m === "html" ? escAttr(instruction) : instruction.replace(/"/g, "&quot;");
  const wrap = (open: string, close: string) => `${open}${inner}${close}`;
  switch (t) {
    case "plain":
      return { fragment: block(instruction, m, rng) };
    case "html-comment": {
      const c = instruction.replace(/-->/g, "- ->");
      return { fragment: rng.pick([`<!-- ${c} -->`, `<!--\n${c}\n-->`, `<!--${c}-->`]) };
    }
    case "display-none":
      return {
        fragment: rng.pick([
          () => wrap('<div style="display:none">', "</div>"),
          () => wrap('<span style="display: none;">', "</span>"),
          () => wrap('<p class="note" style="display:none !important">', "</p>"),
          () => wrap("<div hidden>", "</div>"),
        ])(),
      };
    case "visibility-hidden":
      return {
        fragment: rng.pick([
          () => wrap('<div style="visibility:hidden">', "</div>"),
          () => wrap('<span style="visibility: hidden; position: absolute;">', "</span>"),
          () => wrap('<p style="visibility:hidden;height:0;margin:0">', "</p>"),
        ])(),
      };
    case "font-size-zero":
      return {
        fragment: rng.pick([
          () => wrap('<span style="font-size:0">', "</span>"),
          () => wrap('<div style="font-size:0px;line-height:0">', "</div>"),
          () => wrap('<p style="font-size: 0; margin: 0;">', "</p>"),
        ])(),
      };
    case "offscreen":
      return {
        fragment: rng.pick([
          () => wrap('<div style="position:absolute;left:-9999px">', "</div>"),
          () => wrap('<div style="position:absolute;top:-10000px;left:-10000px;width:1px;height:1px;overflow:hidden">', "</div>"),
          () => wrap('<span style="position: fixed; left: -5000px;">', "</span>"),
          () => wrap('<p class="seo-copy" style="position:absolute; left:-9999px; top:auto;">', "</p>"),
        ])(),
      };
    case "white-on-white":
      return {
        fragment: rng.pick([
          () => wrap('<p style="color:#ffffff;background-color:#ffffff">', "</p>"),
          () => wrap('<span style="color: white;">', "</span>"),
          () => wrap('<font color="#FFFFFF">', "</font>"),
          () => wrap('<div style="color:#fefefe;background:#fff;font-size:11px">', "</div>"),
        ])(),
      };
    case "aria-hidden":
      return {
        fragment: rng.pick([
          () => wrap('<div aria-hidden="true">', "</div>"),
          () => wrap('<span aria-hidden="true" class="ai-note">', "</span>"),
          () => wrap('<div aria-hidden="true" class="visually-hidden">', "</div>"),
        ])(),
      };
    case "noscript":
      return { fragment: rng.pick([wrap("<noscript>", "</noscript>"), wrap("<noscript><p>", "</p></noscript>")]) };
    case "img-alt": {
      if (m === "markdown") {
        const alt = oneLine(instruction).replace(/[[\]]/g, (c) => (c === "[" ? "(" : ")"));
        return { fragment: `![${alt}](${rng.pick(["./docs/img/spacer.png", "https://raw.githubusercontent.example/acme/assets/main/banner.png", "/static/1x1.gif"])})` };
      }
      return {
        fragment: rng.pick([
          `<img src="/static/img/spacer.gif" width="1" height="1" alt="${attr}">`,
          `<img src="https://cdn.shopassets.example/img/banner-${rng.int(90) + 10}.jpg" alt="${attr}" loading="lazy">`,
          `<figure><img src="/media/diagram.png" alt="${attr}"><figcaption>Figure ${rng.int(5) + 1}</figcaption></figure>`,
        ]),
      };
    }
    case "title-attribute": {
      const link = rng.pick(kit.linkText);
      if (m === "markdown") return { fragment: `[${link}](https://docs.example.org/help "${oneLine(instruction).replace(/"/g, "'")}")` };
      return {
        fragment: rng.pick([
          `<a href="/help" title="${attr}">${escText(link)}</a>`,
          `<img src="/assets/icons/info.svg" alt="info" title="${attr}">`,
          `<abbr title="${attr}">${escText(link)}</abbr>`,
          `<span class="tooltip" title="${attr}">ⓘ</span>`,
        ]),
      };
    }
    case "meta-description":
      return {
        fragment: "",
        head: rng.chance(0.75) ? `<meta name="description" content="${escAttr(instruction)}">` : `<meta name="description" content="${escAttr(instruction)}">\n<meta property="og:description" content="${escAttr(instruction)}">`,
      };
    case "markdown-beacon": {
      const host = rng.pick(hosts);
      const one = oneLine(instruction);
      return {
        fragment: rng.pick([
          () => `![${one.replace(/[[\]]/g, "")}](https://${host}/b.gif?id=${rng.int(1e6)})`,
          () => `[${rng.pick(kit.linkText)}](https://${host}/r/${rng.int(1e6).toString(36)} "${one.replace(/"/g, "'")}")`,
          () => `[\u200b](https://${host}/t.png "${one.replace(/"/g, "'")}")`,
        ])(),
      };
    }
    case "markdown-comment": {
      const one = oneLine(instruction);
      if (!one.includes(")")) return { fragment: rng.pick([`[//]: # (${one})`, `[comment]: <> (${one})`]) };
      return { fragment: `[//]: # "${one.replace(/"/g, "'")}"` };
    }
    case "json-unicode-escape":
      return { fragment: block(instruction, m, rng), jsonEscape: true };
    case "zero-width":
      return { fragment: block(zeroWidth(instruction, rng), m, rng) };
    case "unicode-tags": {
      const cover = rng.pick(kit.cover);
      const tags = unicodeTags(instruction, rng);
      return { fragment: m === "html" ? `<p>${escText(cover)}${tags}</p>` : `${cover}${tags}` };
    }
    case "bidi-override":
      return { fragment: block(bidi(instruction, rng), m, rng) };
    case "base64":
      return { fragment: block(encoded(kit.base64, Buffer.from(instruction, "utf8").toString("base64"), rng), m, rng) };
    case "hex":
      return { fragment: block(encoded(kit.hex, hexOf(instruction, rng), rng), m, rng) };
    case "percent":
      return { fragment: block(encoded(kit.percent, percentAll(instruction), rng), m, rng) };
    case "leetspeak":
      return { fragment: block(leet(instruction, rng), m, rng) };
    case "spaced-letters":
      return { fragment: block(spaced(instruction, rng), m, rng) };
    case "homoglyph":
      return { fragment: block(homoglyph(instruction, lang, rng), m, rng) };
  }
}

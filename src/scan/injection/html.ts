/**
 * HTML reduced to what a model may read, with the text a person would not see kept apart and
 * labelled (issue 5, "hidden-content carriers"): comments, elements hidden by CSS (display:none,
 * visibility:hidden, zero font size, opacity 0, pushed off-screen, text in the background's
 * colour), the `hidden` and `aria-hidden="true"` attributes, <noscript> and <template>, and the
 * alt, title, aria-label and <meta> content attributes. An agent that reads raw HTML, or converts
 * it to text with an ordinary tool, still gets all of it: hidden text is where injected
 * instructions are put, so it is scanned as well and weighs more.
 *
 * A tokenizer, not a browser: it needs to find every piece of text and know roughly whether it is
 * shown. Scripts and styles are skipped (code, not prose). Each segment keeps the raw range it
 * came from, so a hidden carrier can be cut out of the page whole (injection.action: strip).
 */
import { htmlEntityDecode } from "../decode/index.ts";

export type Carrier =
  | "visible"
  /** Shown, but as a block of code (<pre>, markdown fenced blocks): documentation quotes attacks there. */
  | "code"
  /** The content of <script> and <style>: not shown, but read by a model given raw HTML (scanned at full weight, no hidden-carrier bonus). */
  | "script"
  | "comment"
  | "display-none"
  | "visibility-hidden"
  | "zero-font"
  | "transparent"
  | "off-screen"
  | "same-colour"
  | "hidden-attribute"
  | "aria-hidden"
  | "noscript"
  | "template"
  | "alt"
  | "title"
  | "aria-label"
  | "meta";

export interface Segment {
  readonly carrier: Carrier;
  readonly text: string;
  /** The raw range the segment came from (for `visible`, the whole document). */
  readonly start: number;
  readonly end: number;
  /** In the visible segment: where the text of each shown `<blockquote>` lies (outermost ones, in order). */
  readonly quotes?: readonly (readonly [start: number, end: number])[];
}

/** The ranges of `text` between quote marks ([start, end] pairs, moved back by `trimmed`), white space at their ends left out: those that hold text. */
function quotesOf(marks: readonly number[], trimmed: number, text: string): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < marks.length; i += 2) {
    let a = Math.max(0, marks[i]! - trimmed);
    let b = Math.min(text.length, marks[i + 1]! - trimmed);
    while (a < b && text.charCodeAt(a) <= 32) a++;
    while (b > a && text.charCodeAt(b - 1) <= 32) b--;
    if (b > a) out.push([a, b]);
  }
  return out;
}

/** Elements that have no end tag (WHATWG HTML §13.1.2, "void elements"). */
const VOID = new Set(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"]);
/** Elements whose content is raw text, read apart (as `script`). */
const RAW_TEXT = new Set(["script", "style"]);
/** Elements whose content is text as written, tags included, shown (WHATWG HTML §13.1.2.5, "escapable raw text"). */
const RCDATA = new Set(["textarea", "title"]);
/** Elements that start a new line of text when read (so words on both sides do not run together). */
const BLOCK = new Set("p div br li ul ol tr td th h1 h2 h3 h4 h5 h6 section article header footer nav aside main blockquote pre table hr dd dt figcaption option title".split(" "));
/**
 * Blocks that end a paragraph: shown text gets a blank line where one of them that was open,
 * shown and held shown text closes (PARAGRAPH_MARK until collapseBreaks), as a markdown or
 * plain-text page has one between its paragraphs, so words of two paragraphs are as far apart
 * for the cue intents as they are in those. Nothing a reader does not see makes one: an end tag
 * that closes nothing, an empty or hidden element. Line breaks, list items, table cells and
 * divisions are no paragraph's end.
 */
const PARAGRAPH_END = new Set("p h1 h2 h3 h4 h5 h6 section article header footer nav aside main blockquote table ul ol figcaption".split(" "));
/** Where a paragraph ends in the visible text, before collapseBreaks; in the page's own text it is a line break. */
const PARAGRAPH_MARK = "\u2029";

// A tag's unquoted attribute text stops at the next `<`; a quoted value may hold `<` and `>` as
// browsers allow (`<div title="<script>">` is a div), up to QUOTED_MAX characters: a quote that
// never closes is then given up, and the search stays linear however many tags there are.
const TOKEN = /<!--([\s\S]*?)(?:-->|$)|<(\/?)([a-zA-Z][a-zA-Z0-9:-]*)((?:[^<>"']|"[^"]{0,4096}"|'[^']{0,4096}')*)>/g;
const ATTRIBUTE = /([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
/** The background of a page that sets none (CSS 2 §14.2: the canvas; browsers paint it white). */
const PAGE_BACKGROUND = 0xffffff;
/** Deeper than this, elements are not tracked (their hiddenness is their parent's). */
const MAX_DEPTH = 256;
/** How deep `srcdoc` documents are read inside each other (each level is escaped once more). */
const SRCDOC_DEPTH = 2;

const STYLE_RULES: readonly (readonly [RegExp, Carrier])[] = [
  [/(?:^|;)\s*display\s*:\s*none/i, "display-none"],
  [/(?:^|;)\s*visibility\s*:\s*(?:hidden|collapse)/i, "visibility-hidden"],
  [/(?:^|;)\s*font-size\s*:\s*0*(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:;|$|!)/i, "zero-font"],
  [/(?:^|;)\s*opacity\s*:\s*0*(?:\.0+)?\s*(?:;|$|!)/i, "transparent"],
  [/(?:^|;)\s*(?:left|top|right|text-indent|margin-left)\s*:\s*-\d{3,}/i, "off-screen"],
  [/(?:^|;)\s*(?:clip-path\s*:\s*inset\(\s*50%|clip\s*:\s*rect\(\s*0)/i, "off-screen"],
];
const COLOUR = /(?:^|;)\s*color\s*:\s*([^;!]+)/i;
const BACKGROUND = /(?:^|;)\s*background(?:-color)?\s*:\s*([^;!]+)/i;

/** What a tag without attributes has (never written to). */
const NO_ATTRIBUTES: ReadonlyMap<string, string> = new Map();

function attributes(source: string): ReadonlyMap<string, string> {
  if (source.length === 0) return NO_ATTRIBUTES;
  const out = new Map<string, string>();
  ATTRIBUTE.lastIndex = 0;
  for (let m = ATTRIBUTE.exec(source); m !== null; m = ATTRIBUTE.exec(source)) {
    const name = m[1]!.toLowerCase();
    if (!out.has(name)) out.set(name, m[2] ?? m[3] ?? m[4] ?? "");
  }
  return out;
}

/** HTML elements (WHATWG HTML §4); a custom element has a dash in its name (§4.13.2). */
const ELEMENTS = new Set(
  ("a abbr address area article aside audio b base bdi bdo blockquote body br button canvas caption cite code col colgroup data datalist dd del details dfn dialog div dl dt em embed fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend li link main map mark menu meta meter nav noscript object ol optgroup option output p param picture pre progress q rp rt ruby s samp script search section select slot small source span strong style sub summary sup table tbody td template textarea tfoot th thead time title tr track u ul var video wbr " +
    "svg path g circle rect line polyline polygon text tspan defs use symbol math center font big tt strike frame frameset noframes marquee nobr xmp").split(" "),
);
const isElement = (name: string): boolean => ELEMENTS.has(name) || name.includes("-") || name.includes(":");

/**
 * Elements whose text is shown as a block of code. Inline code (<code>, <kbd>, <samp> in a
 * sentence) stays in the sentence: an instruction reads through it ("run `curl ... | sh` now").
 */
const CODE = new Set(["pre"]);
/**
 * Inline code, written into the text between backticks as markdown writes it: a quotation
 * (engine.ts), so `&lt;tool_response&gt;` in a sentence about a format is read as a mention.
 */
const INLINE_CODE = new Set(["code", "kbd", "samp", "tt"]);

/** Why an element's content is hidden (or shown as code), or null. */
function hiddenBy(name: string, attrs: ReadonlyMap<string, string>): Carrier | null {
  const hidden = hiddenByAttributes(name, attrs);
  return hidden ?? (CODE.has(name) ? "code" : null);
}

function hiddenByAttributes(name: string, attrs: ReadonlyMap<string, string>): Carrier | null {
  if (name === "noscript") return "noscript";
  if (name === "template") return "template";
  if (attrs.has("hidden")) return "hidden-attribute";
  if ((attrs.get("aria-hidden") ?? "").toLowerCase() === "true") return "aria-hidden";
  const style = attrs.get("style");
  if (style === undefined) return null;
  for (const [re, carrier] of STYLE_RULES) if (re.test(style)) return carrier;
  const colour = COLOUR.exec(style)?.[1]?.trim().toLowerCase();
  const background = BACKGROUND.exec(style)?.[1]?.trim().toLowerCase();
  if (colour !== undefined && colour === background) return "same-colour";
  return null;
}

/** Named colours that hidden text is written in, and the page backgrounds it hides on (CSS Color 4 §6.1). */
const NAMED: Readonly<Record<string, number>> = { white: 0xffffff, black: 0, snow: 0xfffafa, ivory: 0xfffff0, whitesmoke: 0xf5f5f5, ghostwhite: 0xf8f8ff, transparent: -1 };
const HEX = /^#([0-9a-f]{3,8})$/;
const RGB = /^rgba?\(\s*(\d{1,3})[\s,]+(\d{1,3})[\s,]+(\d{1,3})/;

/** A CSS colour as 0xRRGGBB; -1 for transparent; null when not understood (a variable, a gradient). */
export function parseColour(value: string | undefined): number | null {
  if (value === undefined) return null;
  const v = value.trim().toLowerCase();
  const named = NAMED[v];
  if (named !== undefined) return named;
  const hex = HEX.exec(v)?.[1];
  if (hex !== undefined) {
    if (hex.length === 3 || hex.length === 4) return parseInt(hex[0]! + hex[0] + hex[1] + hex[1] + hex[2] + hex[2], 16);
    if (hex.length === 6 || hex.length === 8) return parseInt(hex.slice(0, 6), 16);
    return null;
  }
  const rgb = RGB.exec(v);
  if (rgb !== null) return (Math.min(255, +rgb[1]!) << 16) | (Math.min(255, +rgb[2]!) << 8) | Math.min(255, +rgb[3]!);
  return null;
}

/**
 * Two colours a reader cannot tell apart: every channel within CLOSE_COLOUR (`#fefefe` on
 * `#fff` is as hidden as white on white).
 */
const CLOSE_COLOUR = 12;
const closeColours = (a: number, b: number): boolean =>
  Math.abs((a >> 16) - (b >> 16)) <= CLOSE_COLOUR && Math.abs(((a >> 8) & 255) - ((b >> 8) & 255)) <= CLOSE_COLOUR && Math.abs((a & 255) - (b & 255)) <= CLOSE_COLOUR;

/** An element's own text colour (style `color`, `<font color>`), or null. */
const colourOf = (attrs: ReadonlyMap<string, string>): number | null => parseColour(COLOUR.exec(attrs.get("style") ?? "")?.[1] ?? attrs.get("color"));
/**
 * An element's own background (style `background`/`background-color`, `bgcolor`); undefined
 * when it sets none (it shows its parent's), null when it sets one this cannot read (an image, a
 * variable): then nothing inside is judged by colour.
 */
function backgroundOf(attrs: ReadonlyMap<string, string>): number | null | undefined {
  const style = BACKGROUND.exec(attrs.get("style") ?? "")?.[1];
  if (style !== undefined) {
    const c = parseColour(style.split(/\s+(?![^(]*\))/)[0]);
    return c === -1 ? undefined : c;
  }
  const bg = attrs.get("bgcolor");
  return bg === undefined ? undefined : parseColour(bg);
}

const decode = (text: string): string => htmlEntityDecode(text) ?? text;

/** Attributes read as hidden carriers of their own, each under its name. */
const LABELS = ["alt", "title", "aria-label"] as const;
/**
 * The other accessible text of an element (WAI-ARIA 1.3), read as `aria-label` is: a screen
 * reader says it, and an agent that reads a page's accessibility tree gets it with the labels.
 */
const ACCESSIBLE_TEXT = ["aria-description", "aria-roledescription", "aria-placeholder", "aria-valuetext", "aria-braillelabel", "aria-brailleroledescription"] as const;
/** Attributes of form fields that are shown as text. */
const FIELD_TEXT = ["value", "placeholder"] as const;
/** Attributes read on any element by a rule of their own (as labels, accessible text, shown field text). */
const READ_ATTRIBUTES: ReadonlySet<string> = new Set([...LABELS, ...ACCESSIBLE_TEXT, ...FIELD_TEXT]);
/** Attributes whose value is a URL (read only when it is a `javascript:` one, JAVASCRIPT_URL). */
const URL_ATTRIBUTES: ReadonlySet<string> = new Set(["href", "src", "srcset", "action", "formaction", "poster", "cite", "background", "ping", "manifest", "codebase", "longdesc", "usemap", "xmlns", "itemtype", "itemid", "imagesrcset", "data", "profile", "archive", "classid"]);
/**
 * Whether the value of another attribute may be text: of some length, with a space or five words
 * joined by hyphens or underscores in it (readings.ts joinedWords; a name, a number or a shorter
 * identifier, `ignore_previous_in_pdf`, is not).
 */
const isOtherText = (value: string): boolean => value.length >= 16 && (/\s/.test(value) || value.split(JOINER).length >= 5);
const JOINER = /[-_]/;
const JAVASCRIPT_URL = /^\s*javascript:/i;

/** White space a line break's run takes in (collapseBreaks): spaces, tabs, carriage returns, form feeds, no-break spaces, line separators. */
const isBreakSpace = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 12 || c === 0xa0 || c === 0x2028;

/**
 * `text` with the white space around each line break and the blank lines taken out (`a \n\n
 * b` reads `a\nb`): what `/[ \t]*\n[ \t\n]*\/g` replaced by a line break does (with carriage
 * returns, form feeds, no-break spaces and line separators as spaces), without trying a match at
 * every space; a run with a PARAGRAPH_MARK in it reads as a blank line.
 */
export function collapseBreaks(text: string, marks?: number[]): string {
  let k = text.indexOf("\n");
  if (k < 0) return text;
  let out = "";
  let at = 0;
  // The marks (offsets into `text`, in order) still to move to where they are in `out`.
  let m = 0;
  const move = (before: number, shift: number) => {
    for (; marks !== undefined && m < marks.length && marks[m]! <= before; m++) marks[m] = marks[m]! - shift;
  };
  while (k >= 0) {
    let a = k;
    while (a > at && isBreakSpace(text.charCodeAt(a - 1))) a--;
    let b = k + 1;
    // A run that holds a paragraph's end (htmlSegments' PARAGRAPH_MARK) is a blank line; any
    // other (`\n\r\n`, `\n&nbsp;\n`, a line separator) is one line break, as a browser shows it.
    let paragraph = false;
    for (let c = text.charCodeAt(b); c === 10 || c === 0x2029 || isBreakSpace(c); c = text.charCodeAt(++b)) paragraph ||= c === 0x2029;
    const breaks = paragraph ? "\n\n" : "\n";
    // A mark in the text kept moves with it; one in the run taken out, to the run's end.
    move(a, at - out.length);
    for (; marks !== undefined && m < marks.length && marks[m]! < b; m++) marks[m] = out.length + (a - at) + breaks.length;
    out += text.slice(at, a) + breaks;
    at = b;
    k = text.indexOf("\n", b);
  }
  move(Infinity, at - out.length);
  return out + text.slice(at);
}

/**
 * Where the end tag of a raw-text or escapable raw-text element starts and ends, searching from
 * `from` (`</script`, then a space, `/` or `>`; WHATWG HTML §13.2.5.4); the document's end when
 * there is none.
 */
const END_TAGS = new Map([...RAW_TEXT, ...RCDATA].map((name) => [name, new RegExp(`</${name}(?=[\\s/>])[^>]*>?`, "ig")]));
function endTagOf(html: string, name: string, from: number): { start: number; end: number } {
  const re = END_TAGS.get(name)!;
  re.lastIndex = from;
  const m = re.exec(html);
  return m === null ? { start: html.length, end: html.length } : { start: m.index, end: re.lastIndex };
}

/**
 * The segments of an HTML document: `visible` first (all shown text), then each hidden carrier in
 * order. `visibleText` false: the visible segment is left empty, for a caller that reads the
 * document as written and wants only its hidden carriers.
 */
export function htmlSegments(html: string, visibleText = true, depth = 0): Segment[] {
  const visible: string[] = [];
  const hidden: Segment[] = [];
  /** Open elements: name, the carrier hiding (or marking: code) their content, null when plain; where they start; their text. */
  const stack: { name: string; hiddenBy: Carrier | null; start: number; text: string[]; background: number | null; colour: number | null; shownBefore: number }[] = [];
  // Pieces of shown text that hold more than white space, so far (whether an element held any).
  let shownPieces = 0;
  // How long `visible` is joined (pieces and the spaces between them), and where each shown
  // blockquote (the outermost) starts and ends in it: its start at [2i], its end at [2i + 1].
  let visibleLength = 0;
  const quoteMarks: number[] = [];
  let quoteOpen: (typeof stack)[number] | null = null;
  const pushVisible = (text: string) => {
    visibleLength += (visible.length > 0 ? 1 : 0) + text.length;
    visible.push(text);
  };
  const innermostHidden = () => {
    // A hidden element wins over code inside or around it: hidden is what matters.
    let code = null;
    for (let i = stack.length - 1; i >= 0; i--) {
      const el = stack[i]!;
      if (el.hiddenBy === "code") code ??= el;
      else if (el.hiddenBy !== null) return el;
    }
    return code;
  };
  const addText = (raw: string) => {
    if (raw.length > 0) addDecoded(decode(raw));
  };
  /** Adds text as read (entities decoded) where it lies: to the innermost hidden element, or to what is shown. */
  const addDecoded = (text: string) => {
    if (text.length === 0) return;
    const host = innermostHidden();
    if (host !== null) host.text.push(text);
    else if (visibleText) {
      // The page's own paragraph separators are line breaks: only an element ends a paragraph.
      pushVisible(text.includes(PARAGRAPH_MARK) ? text.replaceAll(PARAGRAPH_MARK, "\n") : text);
      if (/\S/.test(text)) shownPieces++;
    }
  };
  const close = (index: number, end: number) => {
    // Closes stack[index] and everything opened inside it.
    while (stack.length > index) {
      const el = stack.pop()!;
      if (el.hiddenBy === null) continue;
      const text = el.text.join(" ").trim();
      if (text.length > 0) hidden.push({ carrier: el.hiddenBy, text, start: el.start, end });
      // Text of a hidden element inside another stays with the inner one; the outer one is still open.
    }
  };

  // The other attributes' values (read as script content), and the range of the tags they are in.
  const others: string[] = [];
  let othersStart = html.length;
  let othersEnd = 0;
  let last = 0;
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(html); m !== null; m = TOKEN.exec(html)) {
    addText(html.slice(last, m.index));
    last = TOKEN.lastIndex;
    if (m[1] !== undefined) {
      const text = m[1].trim();
      if (text.length > 0) hidden.push({ carrier: "comment", text: decode(text), start: m.index, end: last });
      continue;
    }
    const closing = m[2] === "/";
    const name = m[3]!.toLowerCase();
    if (closing) {
      let paragraph = false;
      for (let i = stack.length - 1; i >= 0; i--) {
        if (stack[i]!.name === name) {
          if (INLINE_CODE.has(name)) addText("`");
          // Asked while it is still open: it, or one around it, may be hidden.
          paragraph = PARAGRAPH_END.has(name) && visibleText && innermostHidden() === null && shownPieces > stack[i]!.shownBefore;
          if (quoteOpen !== null && stack.indexOf(quoteOpen) >= i) {
            quoteMarks.push(visibleLength);
            quoteOpen = null;
          }
          close(i, last);
          break;
        }
      }
      if (paragraph) pushVisible(`\n${PARAGRAPH_MARK}\n`);
      else if (BLOCK.has(name)) addText("\n");
      continue;
    }
    const attrs = attributes(m[4]!);
    if (attrs.size > 0)
      for (const carrier of LABELS) {
        const value = attrs.get(carrier)?.trim();
        if (value) hidden.push({ carrier, text: decode(value), start: m.index, end: last });
      }
    // Data attributes are data for the page's scripts, read as script content is (at full
    // weight, without a hidden carrier's): a model given raw HTML reads them. So is every other
    // attribute of some length that no rule above reads (event handlers, `style`, `class`, a
    // `javascript:` URL), all of a page's together, as one text. (A text that is not an HTML page
    // is read as written, its attributes with it.)
    if (attrs.size > 0 && visibleText)
      for (const [attr, value] of attrs) {
        const data = attr.startsWith("data-");
        // (A meta's content and an iframe's srcdoc are read by rules of their own.)
        const readElsewhere = READ_ATTRIBUTES.has(attr) || (attr === "content" && name === "meta") || (attr === "srcdoc" && name === "iframe");
        if (!data && (!isOtherText(value) || readElsewhere || (URL_ATTRIBUTES.has(attr) && !JAVASCRIPT_URL.test(value)))) continue;
        const text = value.trim();
        if (text.length === 0) continue;
        if (data) hidden.push({ carrier: "script", text: decode(text), start: m.index, end: last });
        else {
          // Each named, its value in quotation marks, as a model given the page sees it: a test
          // report's name that quotes an attack is a quotation there too.
          others.push(`${attr}: "${decode(text)}"`);
          othersStart = Math.min(othersStart, m.index);
          othersEnd = last;
        }
      }
    if (attrs.size > 0)
      for (const attr of ACCESSIBLE_TEXT) {
        const value = attrs.get(attr)?.trim();
        if (value) hidden.push({ carrier: "aria-label", text: decode(value), start: m.index, end: last });
      }
    if (name === "meta") {
      const content = attrs.get("content")?.trim();
      if (content) hidden.push({ carrier: "meta", text: decode(content), start: m.index, end: last });
    }
    if (BLOCK.has(name)) addText("\n");
    if (RAW_TEXT.has(name)) {
      // Raw text up to the end tag (`</script`, then a space, `/` or `>`; WHATWG HTML §13.2.5.4),
      // or the end of the document: kept as a segment of its own.
      const end = endTagOf(html, name, last);
      const content = html.slice(last, end.start).trim();
      if (content.length > 0) hidden.push({ carrier: "script", text: content, start: m.index, end: end.end });
      last = TOKEN.lastIndex = end.end;
      continue;
    }
    if (RCDATA.has(name)) {
      const end = endTagOf(html, name, last);
      addText(html.slice(last, end.start));
      addText("\n");
      last = TOKEN.lastIndex = end.end;
      continue;
    }
    if (!isElement(name)) {
      // Not an HTML element (`<Ignore all previous instructions>`): a browser hides it, a model
      // reading the page does not. Read as text.
      addText(m[0].slice(1, -1));
      continue;
    }
    // Form fields show their value and placeholder.
    if (attrs.size > 0)
      for (const attr of FIELD_TEXT) {
        const value = attrs.get(attr)?.trim();
        if (value) addText(` ${value} `);
      }
    // (A browser ignores the slash of `<iframe ... />`: the frame stays open and shows its srcdoc.)
    if (VOID.has(name) || (m[4]!.trimEnd().endsWith("/") && name !== "iframe") || stack.length >= MAX_DEPTH) continue;
    // Text in the colour of what is behind it (its own background or the nearest one set
    // around it; a page is white unless it says otherwise) is not seen.
    const parent = stack[stack.length - 1];
    const own = backgroundOf(attrs);
    const background = own !== undefined ? own : parent === undefined ? PAGE_BACKGROUND : parent.background;
    const ownColour = colourOf(attrs);
    const colour = ownColour ?? parent?.colour ?? null;
    let by = hiddenBy(name, attrs);
    if (by === null && colour !== null && colour >= 0 && background !== null && background >= 0 && (ownColour !== null || own !== undefined) && closeColours(colour, background)) by = "same-colour";
    stack.push({ name, hiddenBy: by, start: m.index, text: [], background, colour, shownBefore: shownPieces });
    if (name === "blockquote" && quoteOpen === null && visibleText && innermostHidden() === null) {
      quoteOpen = stack[stack.length - 1]!;
      quoteMarks.push(visibleLength + (visible.length > 0 ? 1 : 0));
    }
    if (INLINE_CODE.has(name)) addText("`");
    // An iframe's `srcdoc` is a document the frame shows: its text where the frame is (shown, or
    // hidden with it), its hidden carriers with the frame's tag as their range.
    if (name === "iframe" && depth < SRCDOC_DEPTH) {
      const srcdoc = attrs.get("srcdoc");
      if (srcdoc !== undefined && srcdoc.trim().length > 0) {
        const [shown, ...inner] = htmlSegments(decode(srcdoc), true, depth + 1);
        // (The tokenizer is one regular expression for all documents: back to where this one was.)
        TOKEN.lastIndex = last;
        addDecoded(`\n${shown!.text}\n`);
        for (const h of inner) hidden.push({ carrier: h.carrier, text: h.text, start: m.index, end: last });
      }
    }
  }
  addText(html.slice(last));
  if (quoteOpen !== null) quoteMarks.push(visibleLength);
  close(0, html.length);
  // A blank line between values: each is a text of its own (a cue intent reaches less far across one).
  if (others.length > 0) hidden.push({ carrier: "script", text: others.join("\n\n"), start: othersStart, end: othersEnd });
  if (!visibleText) return [{ carrier: "visible", text: "", start: 0, end: html.length }, ...hidden];
  const joined = collapseBreaks(visible.join(" "), quoteMarks);
  const text = joined.trim();
  const quotes = quotesOf(quoteMarks, joined.length - joined.trimStart().length, text);
  return [{ carrier: "visible", text, start: 0, end: html.length, ...(quotes.length > 0 ? { quotes } : {}) }, ...hidden];
}

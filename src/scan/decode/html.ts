import { replaceRuns } from "./text.ts";

/**
 * Named entities decoded: the five XML ones, `nbsp`, and the HTML5 names for ASCII punctuation
 * that an attacker can use to spell out a URL, a key or a JSON document (WHATWG HTML §13.5,
 * "Named character references"). The full table (2,231 names) buys nothing for credentials.
 */
const NAMED: Readonly<Record<string, string>> = {
  amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0",
  excl: "!", num: "#", dollar: "$", percnt: "%", lpar: "(", rpar: ")", ast: "*", plus: "+",
  comma: ",", period: ".", sol: "/", colon: ":", semi: ";", equals: "=", quest: "?", commat: "@",
  lsqb: "[", lbrack: "[", bsol: "\\", rsqb: "]", rbrack: "]", Hat: "^", lowbar: "_", grave: "`",
  lcub: "{", lbrace: "{", verbar: "|", vert: "|", rcub: "}", rbrace: "}", tilde: "\u02dc",
  NewLine: "\n", Tab: "\t", hyphen: "\u2010", dash: "\u2010",
};

/** `&#xHH;`, `&#DD;` (semicolon optional, as browsers accept it) and `&name;` (semicolon required). */
const ENTITY = /&(?:#[xX]([0-9A-Fa-f]{1,6});?|#([0-9]{1,7});?|([A-Za-z][A-Za-z0-9]{1,15});)/g;

function fromCodePoint(cp: number): string | null {
  if (cp <= 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
  return String.fromCodePoint(cp);
}

/**
 * HTML character references: hex and decimal numeric ones, and the named subset above. Unknown
 * names, code point 0, surrogates and values past U+10FFFF are left as they are. Returns null when
 * nothing changed.
 */
export function htmlEntityDecode(text: string): string | null {
  if (text.indexOf("&") < 0) return null;
  return replaceRuns(text, ENTITY, (m) => {
    if (m[1] !== undefined) return fromCodePoint(parseInt(m[1], 16));
    if (m[2] !== undefined) return fromCodePoint(parseInt(m[2], 10));
    const name = m[3]!;
    return Object.hasOwn(NAMED, name) ? NAMED[name]! : null;
  });
}

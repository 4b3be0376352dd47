import { replaceRuns } from "./text.ts";

/**
 * Named entities decoded: the five XML ones, `nbsp`, and the HTML5 names for ASCII punctuation
 * that an attacker can use to spell out a URL, a key or a JSON document (WHATWG HTML §13.5,
 * "Named character references"); and what a page's text is written with, for the text a person
 * reads (the injection scanner): HTML 4's Latin-1 letters and signs (`d&eacute;sormais`), Greek
 * letters, typographic marks, and the spaces and invisible characters that hide a word's breaks
 * (`ig&shy;nore`, `&ZeroWidthSpace;`, `&zwj;`). The other names of the full table (2,231) are
 * mathematical symbols and such, words in none of the languages read.
 */
const NAMED: Readonly<Record<string, string>> = {
  amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0",
  excl: "!", num: "#", dollar: "$", percnt: "%", lpar: "(", rpar: ")", ast: "*", plus: "+",
  comma: ",", period: ".", sol: "/", colon: ":", semi: ";", equals: "=", quest: "?", commat: "@",
  lsqb: "[", lbrack: "[", bsol: "\\", rsqb: "]", rbrack: "]", Hat: "^", lowbar: "_", grave: "`",
  lcub: "{", lbrace: "{", verbar: "|", vert: "|", rcub: "}", rbrace: "}", tilde: "\u02dc",
  NewLine: "\n", Tab: "\t", hyphen: "\u2010", dash: "\u2010",
  ...run(0xa1, "iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest"),
  ...run(0xc0, "Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig"),
  ...run(0xe0, "agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml"),
  ...run(0x391, "Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho"),
  ...run(0x3a3, "Sigma Tau Upsilon Phi Chi Psi Omega"),
  ...run(0x3b1, "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigmaf sigma tau upsilon phi chi psi omega"),
  ...run(0x2002, "ensp emsp emsp13 emsp14"),
  ...run(0x2007, "numsp puncsp thinsp hairsp ZeroWidthSpace zwnj zwj lrm rlm"),
  ...run(0x2013, "ndash mdash"),
  ...run(0x2018, "lsquo rsquo sbquo"),
  ...run(0x201c, "ldquo rdquo bdquo"),
  ...run(0x2020, "dagger Dagger bull"),
  ...run(0x2060, "NoBreak ApplyFunction InvisibleTimes InvisibleComma"),
  OElig: "\u0152", oelig: "\u0153", Scaron: "\u0160", scaron: "\u0161", Yuml: "\u0178", fnof: "\u0192", circ: "\u02c6",
  hellip: "\u2026", permil: "\u2030", prime: "\u2032", Prime: "\u2033", lsaquo: "\u2039", rsaquo: "\u203a", oline: "\u203e",
  frasl: "\u2044", MediumSpace: "\u205f", euro: "\u20ac", trade: "\u2122", larr: "\u2190", rarr: "\u2192",
  ThinSpace: "\u2009", VeryThinSpace: "\u200a", NegativeVeryThinSpace: "\u200b", NegativeThinSpace: "\u200b",
  NegativeMediumSpace: "\u200b", NegativeThickSpace: "\u200b", af: "\u2061", it: "\u2062", ic: "\u2063",
};

/** The names `names` (space-separated) for consecutive code points from `first`. */
function run(first: number, names: string): Record<string, string> {
  return Object.fromEntries(names.split(" ").map((name, i) => [name, String.fromCodePoint(first + i)]));
}

/** `&#xHH;`, `&#DD;` (semicolon optional, as browsers accept it) and `&name;` (semicolon required). */
const ENTITY = /&(?:#[xX]([0-9A-Fa-f]{1,6});?|#([0-9]{1,7});?|([A-Za-z][A-Za-z0-9]{1,31});)/g;

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

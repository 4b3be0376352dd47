/**
 * The shape of one DNS label, measured in a single pass over its character codes with no
 * allocation: what the exfiltration detector (scan/dns-exfil) decides from. Input is expected
 * lower-cased (DNS compares names case-insensitively, RFC 4343, and 0x20 randomisation flips case
 * at will, so case carries no signal).
 */

/** Counts for one label. Reused between calls by the caller: `measureLabel` overwrites every field. */
export interface LabelShape {
  length: number;
  letters: number;
  digits: number;
  /** a e i o u y: random base32/base36 text has ~23% of its letters here, English ~40%. */
  vowels: number;
  hyphens: number;
  underscores: number;
  /** Characters outside letters, digits, `-` and `_`: never in a host name (RFC 952, RFC 2181 §11 allows them, tunnels use them). */
  other: number;
  /** Characters outside [0-9a-f]. */
  nonHex: number;
  /** Characters outside the RFC 4648 base32 alphabet [a-z2-7]. */
  nonBase32: number;
  /** Changes between a letter and a digit: `a1b2` has 3, `web01` has 1. Encoded data interleaves them. */
  switches: number;
  /** Longest run of consonant letters: English rarely exceeds 4, random letters often do. */
  consonantRun: number;
  /** Letter pairs that English and host-name vocabulary almost never use (see RARE_BIGRAMS). */
  rareBigrams: number;
  /** Letter pairs counted for `rareBigrams`. */
  bigrams: number;
}

export function createLabelShape(): LabelShape {
  return { length: 0, letters: 0, digits: 0, vowels: 0, hyphens: 0, underscores: 0, other: 0, nonHex: 0, nonBase32: 0, switches: 0, consonantRun: 0, rareBigrams: 0, bigrams: 0 };
}

const CLASS_OTHER = 0;
const CLASS_LETTER = 1;
const CLASS_DIGIT = 2;

/**
 * Letter pairs that are rare in English words and in the vocabulary of host names. Random
 * letters land on one of these about a third of the time; readable labels almost never (brand
 * names and abbreviations do, which is why this is one signal among several, never alone).
 * Built from the first letter: each string lists the second letters that are rare after it.
 * Pairs that are rare in English but common in host-name vocabulary are left out on purpose:
 * cd (cdn), db, dc, sd/dk (sdk), sv/vc (svc), vp/pc (vpn, vpc), pk/kg (pkg), pm (npm), tp (http),
 * mt (smtp), nx (nginx), gc/cp (gcp), gk (gke), km (kms), cf, cm, md, pg, js.
 */
const RARE_AFTER: Readonly<Record<string, string>> = {
  a: "q",
  b: "cdfghjkmnpqtvwxz",
  c: "bgjnqvwxz",
  d: "fgqtxz",
  e: "",
  f: "bcdhjkmnpqvwxz",
  g: "bdfjpqvxz",
  h: "bcdfghjkpqvxz",
  i: "hjqwy",
  j: "bcdfghjklmnpqrtvwxyz",
  k: "bcdfjkpqtvxz",
  l: "hjnqrxz",
  m: "cgjkqvxz",
  n: "bjqz",
  o: "q",
  p: "bdjqvxz",
  q: "bcdefghijklmnopqrstvwxyz",
  r: "jqxz",
  s: "bfgjrxz",
  t: "bdgjkqvxz",
  u: "jquwy",
  v: "bdfghjkmnqtvwxz",
  w: "bcfgjkmpqtvwxz",
  x: "bdfgjkmnqrsvwxz",
  y: "bfghjkqvxyz",
  z: "bcdfgjkmnpqrstvwx",
};

/** 26 x 26 table: RARE[(a - 97) * 26 + (b - 97)] is 1 for a rare pair. */
const RARE = new Uint8Array(26 * 26);
for (const [first, seconds] of Object.entries(RARE_AFTER)) {
  const row = (first.charCodeAt(0) - 97) * 26;
  for (let i = 0; i < seconds.length; i++) RARE[row + seconds.charCodeAt(i) - 97] = 1;
}

/** Entropy symbol buckets filled by `measureLabel`: a-z, 0-9, and one for everything else. */
export const SYMBOL_BUCKETS = 37;

/**
 * Measures `text[start, end)` into `out`. `text` must be lower-case. When `symbols` is given
 * (SYMBOL_BUCKETS long), adds each letter, digit and other character to its bucket there (hyphens
 * and underscores are separators, not content), for the entropy of several labels together.
 */
export function measureLabel(text: string, start: number, end: number, out: LabelShape, symbols?: Uint16Array): LabelShape {
  let letters = 0;
  let digits = 0;
  let vowels = 0;
  let hyphens = 0;
  let underscores = 0;
  let other = 0;
  let nonHex = 0;
  let nonBase32 = 0;
  let switches = 0;
  let run = 0;
  let consonantRun = 0;
  let rareBigrams = 0;
  let bigrams = 0;
  let previousClass = CLASS_OTHER;
  let previousLetter = -1;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    let cls = CLASS_OTHER;
    if (c >= 97 && c <= 122) {
      cls = CLASS_LETTER;
      letters++;
      if (symbols !== undefined) symbols[c - 97]!++;
      if (c > 102) nonHex++;
      // a e i o u y
      if (c === 97 || c === 101 || c === 105 || c === 111 || c === 117 || c === 121) {
        vowels++;
        run = 0;
      } else if (++run > consonantRun) consonantRun = run;
      if (previousLetter >= 0) {
        bigrams++;
        rareBigrams += RARE[(previousLetter - 97) * 26 + (c - 97)]!;
      }
      previousLetter = c;
    } else {
      previousLetter = -1;
      run = 0;
      nonBase32++;
      if (c >= 48 && c <= 57) {
        cls = CLASS_DIGIT;
        digits++;
        if (symbols !== undefined) symbols[c - 22]!++;
        // base32 digits are 2-7
        if (c >= 50 && c <= 55) nonBase32--;
      } else {
        nonHex++;
        if (c === 45) hyphens++;
        else if (c === 95) underscores++;
        else {
          other++;
          if (symbols !== undefined) symbols[36]!++;
        }
      }
    }
    if (cls !== CLASS_OTHER && previousClass !== CLASS_OTHER && cls !== previousClass) switches++;
    previousClass = cls;
  }
  out.length = end - start;
  out.letters = letters;
  out.digits = digits;
  out.vowels = vowels;
  out.hyphens = hyphens;
  out.underscores = underscores;
  out.other = other;
  out.nonHex = nonHex;
  out.nonBase32 = nonBase32;
  out.switches = switches;
  out.consonantRun = consonantRun;
  out.rareBigrams = rareBigrams;
  out.bigrams = bigrams;
  return out;
}

/**
 * How random a label looks, in points: rare letter pairs (up to 2), long consonant runs (up to 2),
 * letters and digits interleaved (up to 2), few vowels (1). Readable host names score 0 or 1
 * (`clientstream`: a run of 5; `cluster0-shard-00-01`: nothing), base32/base36/base64url data
 * and tokens 3 or more. Each signal alone misfires on some real name (`xmpp`, `k8s`, `s3`,
 * brand names), which is why they are added up and not used one by one.
 */
export function randomnessPoints(s: LabelShape): number {
  let points = 0;
  if (s.bigrams >= 6) {
    if (s.rareBigrams * 4 >= s.bigrams) points += 2;
    else if (s.rareBigrams * 20 >= s.bigrams * 3) points += 1;
  }
  if (s.consonantRun >= 6) points += 2;
  else if (s.consonantRun >= 5) points += 1;
  if (s.switches >= 3 && s.switches * 8 >= s.length) points += 2;
  else if (s.switches >= 2) points += 1;
  // Random letters are ~23% vowels (6 of 26), English ~40%.
  if (s.letters >= 8 && s.vowels * 100 < s.letters * 28) points += 1;
  // Words run together (`foldsshriveljudgmental`) collide consonants at the joins, but keep their
  // vowels and have no digits; encoded data nearly always has digits.
  if (s.digits === 0 && s.vowels * 100 >= s.letters * 35) points -= 1;
  return points;
}

/**
 * Hex digits only (hyphens allowed, as in a UUID), at least `minDigits` of them, letters and
 * digits mixed the way random hex mixes them: dnscat2 packets, hex-encoded files, hashes, UUIDs.
 * `adb-1234567890123456` (a number after a word) is not hex in this sense.
 */
export function looksHex(s: LabelShape, minDigits: number): boolean {
  return s.nonHex === s.hyphens && s.length - s.hyphens >= minDigits && s.letters >= 2 && s.digits >= 2 && s.switches >= 3;
}

/**
 * What an IDN label decodes to (RFC 5890 U-label), measured by `measureIdnLabel`. Punycode is a
 * transport encoding (RFC 3492) that turns any code points into an `xn--` label; what is judged is
 * what it decodes to. Real IDN labels are words in one script; a channel packs many code points
 * from a large repertoire (random CJK carries ~14 bits per code point), mixes scripts, or hides
 * ASCII data in the label's basic code points beside a single non-ASCII one.
 */
export interface IdnShape {
  /** Code points in the U-label. */
  codePoints: number;
  /** Code points outside ASCII. */
  nonAscii: number;
  /** Letters of scripts with thousands of characters: Han, Hangul syllables, Yi, and any script not listed in IDN_SCRIPTS. */
  wide: number;
  /** Bits the non-ASCII code points could carry if chosen at random from their scripts (see IDN_SCRIPTS); ASCII is judged by the ASCII rules instead. */
  bits: number;
  /** Code points that are neither letters, marks, digits nor the punctuation IDNA2008 allows in context: emoji, symbols, unassigned. */
  symbols: number;
  /** Scripts of the letters, ASCII letters being Latin, in order of first appearance (names only, never the letters). */
  scripts: string[];
  /** Whether `scripts` is a combination that UTS #39 §5.2 "Highly Restrictive" allows. */
  scriptsAllowed: boolean;
  /** The ASCII reading: ASCII characters as they are, Latin letters with diacritics as their base letter, other code points dropped. */
  ascii: string;
}

/**
 * Scripts an IDN label is written in, with the bits one letter of each can carry (log2 of the
 * letters an encoder could pick from): alphabets and abugidas have under 64 letters (Latin
 * outside ASCII is a choice among the diacritic forms of a letter, ~16); kana ~170; Ethiopic ~350
 * syllables; Han (~20,000 in the BMP), Hangul (11,172 syllables) and Yi (1,165) are "wide".
 * Hiragana and Katakana come before Han so that the prolonged sound mark (Script_Extensions
 * Hira Kana) counts as kana.
 */
const IDN_SCRIPTS: readonly { readonly code: string; readonly name: string; readonly bits: number }[] = [
  { code: "Latn", name: "Latin", bits: 4 },
  { code: "Grek", name: "Greek", bits: 5 },
  { code: "Cyrl", name: "Cyrillic", bits: 5 },
  { code: "Armn", name: "Armenian", bits: 5 },
  { code: "Geor", name: "Georgian", bits: 5 },
  { code: "Hebr", name: "Hebrew", bits: 5 },
  { code: "Arab", name: "Arabic", bits: 5 },
  { code: "Syrc", name: "Syriac", bits: 5 },
  { code: "Thaa", name: "Thaana", bits: 5 },
  { code: "Deva", name: "Devanagari", bits: 6 },
  { code: "Beng", name: "Bengali", bits: 6 },
  { code: "Guru", name: "Gurmukhi", bits: 6 },
  { code: "Gujr", name: "Gujarati", bits: 6 },
  { code: "Orya", name: "Oriya", bits: 6 },
  { code: "Taml", name: "Tamil", bits: 6 },
  { code: "Telu", name: "Telugu", bits: 6 },
  { code: "Knda", name: "Kannada", bits: 6 },
  { code: "Mlym", name: "Malayalam", bits: 6 },
  { code: "Sinh", name: "Sinhala", bits: 6 },
  { code: "Thai", name: "Thai", bits: 6 },
  { code: "Laoo", name: "Lao", bits: 6 },
  { code: "Tibt", name: "Tibetan", bits: 6 },
  { code: "Mymr", name: "Myanmar", bits: 6 },
  { code: "Khmr", name: "Khmer", bits: 6 },
  { code: "Mong", name: "Mongolian", bits: 6 },
  { code: "Ethi", name: "Ethiopic", bits: 9 },
  { code: "Hira", name: "Hiragana", bits: 7 },
  { code: "Kana", name: "Katakana", bits: 7 },
  { code: "Bopo", name: "Bopomofo", bits: 6 },
  { code: "Hang", name: "Hangul", bits: 14 },
  { code: "Hani", name: "Han", bits: 14 },
  { code: "Yiii", name: "Yi", bits: 14 },
];
/** A letter of a script not listed above: assume a large repertoire. */
const UNLISTED_SCRIPT_BITS = 14;
/** A combining mark (vowel signs, tone marks, diacritics left uncomposed). */
const MARK_BITS = 3;
/** A non-ASCII digit: one of ten. */
const DIGIT_BITS = 4;
/** A letter this wide or wider counts in `IdnShape.wide`. */
const WIDE_BITS = 14;

/**
 * UTS #39 §5.2 "Highly Restrictive": one script, or Latin with the scripts CJK writing mixes
 * (Japanese, Chinese with Bopomofo, Korean). Registries' IDN tables and browsers' display rules
 * hold labels to about this; random code points break it at once.
 */
const HIGHLY_RESTRICTIVE: readonly (readonly string[])[] = [
  ["Latin", "Han", "Hiragana", "Katakana"],
  ["Latin", "Han", "Bopomofo"],
  ["Latin", "Han", "Hangul"],
];

/** Latin letters that have no decomposition to an ASCII base letter, read the way they are transliterated. */
const LATIN_FOLDS: Readonly<Record<string, string>> = {
  ß: "ss", æ: "ae", œ: "oe", ø: "o", đ: "d", ð: "d", þ: "th", ł: "l", ı: "i", ħ: "h", ŋ: "n", ĸ: "k", ŀ: "l", ſ: "s",
};

const IDN_GROUP_ASCII = 1;
const IDN_GROUP_MARK = 2;
const IDN_GROUP_DIGIT = 3;
/** RFC 5892 Appendix A: MIDDLE DOT, GREEK KERAIA, HEBREW GERESH and GERSHAYIM, KATAKANA MIDDLE DOT, ZWNJ, ZWJ. */
const IDN_GROUP_CONTEXT = 4;
const IDN_GROUP_SCRIPT = 5;
const IDN_GROUP_LETTER = IDN_GROUP_SCRIPT + IDN_SCRIPTS.length;
const IDN_CLASSES = new RegExp(
  `([\\x00-\\x7f])|(\\p{M})|(\\p{N})|([\\u00b7\\u0375\\u05f3\\u05f4\\u30fb\\u200c\\u200d])|${IDN_SCRIPTS.map((s) => `(\\p{scx=${s.code}})`).join("|")}|(\\p{L})|([^])`,
  "gu",
);

/**
 * Measures a U-label (what `domainToUnicode` made of an `xn--` label). Allocates: IDN labels are
 * rare in a subdomain, and this runs only for those that decode.
 */
export function measureIdnLabel(unicode: string): IdnShape {
  let codePoints = 0;
  let nonAscii = 0;
  let wide = 0;
  let bits = 0;
  let symbols = 0;
  let ascii = "";
  const scripts: string[] = [];
  const addScript = (name: string) => {
    if (!scripts.includes(name)) scripts.push(name);
  };
  IDN_CLASSES.lastIndex = 0;
  for (let m = IDN_CLASSES.exec(unicode); m !== null; m = IDN_CLASSES.exec(unicode)) {
    codePoints++;
    const ch = m[0];
    let group = 1;
    while (m[group] === undefined) group++;
    if (group === IDN_GROUP_ASCII) {
      const c = ch.toLowerCase();
      ascii += c;
      if (c >= "a" && c <= "z") addScript("Latin");
      continue;
    }
    nonAscii++;
    if (group === IDN_GROUP_MARK) bits += MARK_BITS;
    else if (group === IDN_GROUP_DIGIT) bits += DIGIT_BITS;
    else if (group === IDN_GROUP_CONTEXT) bits += 1;
    else if (group < IDN_GROUP_LETTER) {
      const script = IDN_SCRIPTS[group - IDN_GROUP_SCRIPT]!;
      addScript(script.name);
      bits += script.bits;
      if (script.bits >= WIDE_BITS) wide++;
      if (script.name === "Latin") {
        const lower = ch.toLowerCase();
        const base = lower.normalize("NFD").charCodeAt(0);
        if (base >= 97 && base <= 122) ascii += String.fromCharCode(base);
        else ascii += LATIN_FOLDS[lower] ?? "";
      }
    } else if (group === IDN_GROUP_LETTER) {
      // Unlisted scripts are told apart by their 256-code-point block: close enough to tell mixing.
      addScript(`U+${(ch.codePointAt(0)! >> 8).toString(16).padStart(2, "0")}xx`);
      bits += UNLISTED_SCRIPT_BITS;
      wide++;
    } else {
      symbols++;
      bits += 16;
    }
  }
  const scriptsAllowed = scripts.length <= 1 || HIGHLY_RESTRICTIVE.some((set) => scripts.every((s) => set.includes(s)));
  return { codePoints, nonAscii, wide, bits, symbols, scripts, scriptsAllowed, ascii };
}

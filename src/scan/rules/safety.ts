/**
 * A static check that a built-in pattern cannot backtrack catastrophically in a backtracking
 * engine (JavaScript RegExp). It parses the pattern into atoms, groups and quantifiers, with an
 * approximate character set per atom (exact for ASCII, "anything else" as one flag), and refuses:
 *
 * 1. nested unbounded quantifiers: a group repeated more than once (`+`, `*`, `{n,}`, `{n,m}`
 *    with m > 1) that contains an unbounded quantifier: `(a+)+`, `(a*)*`, `(.*)*`, `(?:\w+\s?)*`;
 * 2. overlapping alternation under repetition: a repeated group whose alternatives can begin with
 *    the same character: `(a|ab)*`, `(\w|\d)+`;
 * 3. adjacent overlapping unbounded quantifiers: `\w+\w*`, `.*\s*`, `[a-z]+[a-f0-9]+` (polynomial,
 *    but quadratic on 100 KiB is already seconds).
 *
 * It is deliberately conservative: a safe pattern may be refused and must then be rewritten with
 * bounded counts (`{1,64}`), which is what a credential format has anyway.
 */

/** ASCII bitmap (4 x 32 bits) plus one flag for every code point above 127. */
class CharSet {
  readonly bits = new Uint32Array(4);
  other = false;

  static of(...codes: number[]): CharSet {
    const s = new CharSet();
    for (const c of codes) s.add(c);
    return s;
  }
  static range(from: number, to: number): CharSet {
    const s = new CharSet();
    s.addRange(from, to);
    return s;
  }
  static any(): CharSet {
    const s = new CharSet();
    s.bits.fill(0xffffffff);
    s.other = true;
    return s;
  }
  add(c: number): void {
    if (c < 128) this.bits[c >> 5]! |= 1 << (c & 31);
    else this.other = true;
  }
  addRange(from: number, to: number): void {
    for (let c = from; c <= Math.min(to, 127); c++) this.add(c);
    if (to > 127) this.other = true;
  }
  union(o: CharSet): void {
    for (let i = 0; i < 4; i++) this.bits[i]! |= o.bits[i]!;
    this.other ||= o.other;
  }
  negate(): CharSet {
    const s = new CharSet();
    for (let i = 0; i < 4; i++) s.bits[i] = ~this.bits[i]! >>> 0;
    s.other = true;
    return s;
  }
  intersects(o: CharSet): boolean {
    for (let i = 0; i < 4; i++) if ((this.bits[i]! & o.bits[i]!) !== 0) return true;
    return this.other && o.other;
  }
  caseFold(): void {
    for (let c = 65; c <= 90; c++) {
      const upper = (this.bits[c >> 5]! >>> (c & 31)) & 1;
      const lower = (this.bits[(c + 32) >> 5]! >>> ((c + 32) & 31)) & 1;
      if (upper || lower) {
        this.add(c);
        this.add(c + 32);
      }
    }
  }
}

type Node =
  | { kind: "set"; set: CharSet }
  | { kind: "group"; alts: Node[][] }
  /** `required`: a positive lookaround (max 0), whose content the text must hold beside the match. */
  | { kind: "quant"; node: Node; min: number; max: number; required?: boolean }
  | { kind: "empty" };

const DIGIT = CharSet.range(48, 57);
const WORD = (() => {
  const s = CharSet.range(48, 57);
  s.addRange(65, 90);
  s.addRange(97, 122);
  s.add(95);
  return s;
})();
const SPACE = (() => {
  const s = CharSet.of(9, 10, 11, 12, 13, 32);
  s.other = true;
  return s;
})();

class Parser {
  pos = 0;
  constructor(
    readonly src: string,
    readonly ignoreCase: boolean,
  ) {}

  parse(): Node[][] {
    const alts = this.alternation();
    if (this.pos < this.src.length) throw new Error(`unbalanced ")" at ${this.pos}`);
    return alts;
  }

  alternation(): Node[][] {
    const alts: Node[][] = [this.sequence()];
    while (this.src[this.pos] === "|") {
      this.pos++;
      alts.push(this.sequence());
    }
    return alts;
  }

  sequence(): Node[] {
    const seq: Node[] = [];
    while (this.pos < this.src.length && this.src[this.pos] !== "|" && this.src[this.pos] !== ")") {
      const atom = this.atom();
      seq.push(this.quantifier(atom));
    }
    return seq;
  }

  quantifier(atom: Node): Node {
    const c = this.src[this.pos];
    let min: number;
    let max: number;
    if (c === "*") [min, max] = [0, Infinity];
    else if (c === "+") [min, max] = [1, Infinity];
    else if (c === "?") [min, max] = [0, 1];
    else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
      if (m === null) return atom;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
      this.pos += m[0].length - 1;
    } else return atom;
    this.pos++;
    if (this.src[this.pos] === "?") this.pos++; // lazy: same backtracking space
    return { kind: "quant", node: atom, min, max };
  }

  atom(): Node {
    const c = this.src[this.pos++]!;
    switch (c) {
      case "(": {
        let lookaround = false;
        let positive = false;
        if (this.src[this.pos] === "?") {
          const m = /^\?(?::|=|!|<=|<!|<[A-Za-z_][A-Za-z0-9_]*>)/.exec(this.src.slice(this.pos));
          if (m === null) throw new Error(`unsupported group at ${this.pos}`);
          lookaround = m[0] === "?=" || m[0] === "?!" || m[0] === "?<=" || m[0] === "?<!";
          positive = m[0] === "?=" || m[0] === "?<=";
          this.pos += m[0].length;
        }
        const alts = this.alternation();
        if (this.src[this.pos] !== ")") throw new Error("unterminated group");
        this.pos++;
        // A lookaround consumes nothing; its content is still checked for nesting below.
        return lookaround ? { kind: "quant", node: { kind: "group", alts }, min: 0, max: 0, required: positive } : { kind: "group", alts };
      }
      case "[":
        return { kind: "set", set: this.charClass() };
      case ".":
        return { kind: "set", set: CharSet.any() };
      case "^":
      case "$":
        return { kind: "empty" };
      case "\\":
        return this.escape(false) ?? { kind: "empty" };
      default:
        return { kind: "set", set: this.literal(c.codePointAt(0)!) };
    }
  }

  literal(code: number): CharSet {
    const s = CharSet.of(code);
    if (this.ignoreCase) s.caseFold();
    return s;
  }

  /** Parses after a backslash; null for zero-width escapes (\b, \B). */
  escape(inClass: boolean): { kind: "set"; set: CharSet } | null {
    const c = this.src[this.pos++]!;
    const set = (s: CharSet) => ({ kind: "set" as const, set: s });
    switch (c) {
      case "d": return set(DIGIT);
      case "D": return set(DIGIT.negate());
      case "w": return set(WORD);
      case "W": return set(WORD.negate());
      case "s": return set(SPACE);
      case "S": return set(SPACE.negate());
      case "b": return inClass ? set(CharSet.of(8)) : null;
      case "B": return null;
      case "n": return set(CharSet.of(10));
      case "r": return set(CharSet.of(13));
      case "t": return set(CharSet.of(9));
      case "x":
      case "u": {
        // `\xHH`, `\uHHHH`; anything else (`\u{41}`, `\xZZ`, read otherwise by RegExp) as any character.
        const digits = c === "x" ? 2 : 4;
        const hex = this.src.slice(this.pos, this.pos + digits);
        if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(hex)) return set(CharSet.any());
        this.pos += digits;
        return set(this.literal(parseInt(hex, 16)));
      }
      case "k": {
        const end = this.src.indexOf(">", this.pos);
        if (end < 0) throw new Error("\\k without a group name");
        this.pos = end + 1;
        return set(CharSet.any());
      }
      default:
        if (c >= "1" && c <= "9") return set(CharSet.any()); // back-reference: anything
        return set(this.literal(c.codePointAt(0)!));
    }
  }

  charClass(): CharSet {
    let negated = false;
    if (this.src[this.pos] === "^") {
      negated = true;
      this.pos++;
    }
    const out = new CharSet();
    let first = true;
    while (this.pos < this.src.length && (this.src[this.pos] !== "]" || first)) {
      first = false;
      const lo = this.classAtom();
      if (this.src[this.pos] === "-" && this.src[this.pos + 1] !== "]" && lo.code !== null) {
        this.pos++;
        const hi = this.classAtom();
        if (hi.code === null) throw new Error("bad range in character class");
        const r = CharSet.range(lo.code, hi.code);
        if (this.ignoreCase) r.caseFold();
        out.union(r);
      } else out.union(lo.set);
    }
    if (this.src[this.pos] !== "]") throw new Error("unterminated character class");
    this.pos++;
    return negated ? out.negate() : out;
  }

  classAtom(): { code: number | null; set: CharSet } {
    const c = this.src[this.pos++]!;
    if (c === "\\") {
      const next = this.src[this.pos]!;
      const node = this.escape(true)!;
      const simple = !"dDwWsS".includes(next);
      let code: number | null = null;
      if (simple) for (let i = 0; i < 128; i++) if (node.set.bits[i >> 5]! & (1 << (i & 31))) code ??= i;
      return { code: simple ? code : null, set: node.set };
    }
    const code = c.codePointAt(0)!;
    return { code, set: this.literal(code) };
  }
}

function nullable(node: Node): boolean {
  switch (node.kind) {
    case "empty": return true;
    case "set": return false;
    case "quant": return node.min === 0 || nullable(node.node);
    case "group": return node.alts.some((seq) => seq.every(nullable));
  }
}

/** Characters a match of `node` can start with. */
function firstSet(node: Node): CharSet {
  switch (node.kind) {
    case "empty": return new CharSet();
    case "set": return node.set;
    case "quant": return node.max === 0 ? new CharSet() : firstSet(node.node);
    case "group": {
      const out = new CharSet();
      for (const seq of node.alts) out.union(seqFirst(seq));
      return out;
    }
  }
}

function seqFirst(seq: readonly Node[]): CharSet {
  const out = new CharSet();
  for (const n of seq) {
    out.union(firstSet(n));
    if (!nullable(n)) break;
  }
  return out;
}

function containsUnbounded(node: Node): boolean {
  switch (node.kind) {
    case "empty":
    case "set": return false;
    case "quant": return node.max === Infinity || containsUnbounded(node.node);
    case "group": return node.alts.some((seq) => seq.some(containsUnbounded));
  }
}

/** Characters a single-set unbounded quantifier repeats, or null when its body is not a set. */
function repeatedSet(node: Node): CharSet | null {
  if (node.kind !== "quant" || node.max !== Infinity) return null;
  return node.node.kind === "set" ? node.node.set : null;
}

function check(seq: readonly Node[], problems: string[]): void {
  for (let i = 0; i < seq.length; i++) {
    const n = seq[i]!;
    if (n.kind === "quant") {
      if (n.max > 1 && containsUnbounded(n.node)) problems.push("nested quantifier: a repeated group contains an unbounded quantifier");
      if (n.max > 1 && n.node.kind === "group" && n.node.alts.length > 1) {
        const firsts = n.node.alts.map(seqFirst);
        for (let a = 0; a < firsts.length; a++)
          for (let b = a + 1; b < firsts.length; b++)
            if (firsts[a]!.intersects(firsts[b]!)) problems.push("repeated alternation whose alternatives overlap");
      }
      const here = repeatedSet(n);
      const next = seq[i + 1];
      const following = next === undefined ? null : repeatedSet(next);
      if (here !== null && following !== null && here.intersects(following)) problems.push("adjacent unbounded quantifiers over overlapping characters");
      check([n.node], problems);
    } else if (n.kind === "group") {
      for (const alt of n.alts) check(alt, problems);
    }
  }
}

/** The reasons `source` is unsafe to run on untrusted input, empty when it passes. */
export function unsafePatternReasons(source: string, flags = ""): string[] {
  return analysePattern(source, flags).unsafe;
}

/**
 * What every match of a pattern is made of: each character it consumes (lookarounds excluded)
 * is an ASCII character whose code is set in `members`, and it consumes at least `minLength`.
 * So a match lies inside a run of at least `minLength` member characters, and text without
 * such a run holds none (the engine's run prefilter, compile.ts).
 */
export interface RunClass {
  /** 1 at the codes (0-127) a match can consume. */
  readonly members: Uint8Array;
  readonly minLength: number;
  /** 1 at the codes a match can start with (a subset of members). */
  readonly first: Uint8Array;
}


/** unsafePatternReasons, patternReach and runClass from one parse (the compiler needs them per rule). */
export function analysePattern(source: string, flags = ""): { unsafe: string[]; reach: number; runClass: RunClass | null; wide: boolean } {
  let alts: Node[][];
  try {
    alts = new Parser(source, flags.includes("i")).parse();
  } catch (e) {
    return { unsafe: [`cannot analyse pattern: ${(e as Error).message}`], reach: Infinity, runClass: null, wide: false };
  }
  const problems: string[] = [];
  for (const seq of alts) check(seq, problems);
  const backReference = /\\[1-9]|\\k</.test(source);
  const reach = backReference ? Infinity : maxLength({ kind: "group", alts });
  // The character sets above are approximate where they only feed the checks (escapes such as
  // \f, \v, \0, \cX and octal ones, case folding of ranges with escaped ends); a run class
  // decides where a rule runs at all, so it is given only where the parse is exact.
  const exact = !flags.includes("i") && !backReference && !/\\(?:[fv0-9]|c[A-Za-z])/.test(source);
  // Case folding with `u` or `v` maps a few letters beyond ASCII onto ASCII ones (the Kelvin sign
  // onto k): such a pattern is not judged.
  const folds = flags.includes("i") && /[uv]/.test(flags);
  return { unsafe: [...new Set(problems)], reach, runClass: exact ? runClassOf({ kind: "group", alts }) : null, wide: !folds && !backReference && needsWide({ kind: "group", alts }) };
}

/**
 * Whether every match of `node` reads a character beyond ASCII (consumed, or required by a
 * positive lookaround): such a pattern cannot match in ASCII text, which the scan then skips for
 * it (a Japanese rule whose only ASCII keyword, `post`, is in every JSON API's text). Sets are
 * exact in what they hold of ASCII, so "no ASCII member" is exact; escapes read approximately
 * (`\p{L}` as the letter p) only ever add ASCII members, which keeps the answer on the safe side.
 */
function needsWide(node: Node): boolean {
  switch (node.kind) {
    case "empty": return false;
    case "set": return node.set.other && node.set.bits.every((b) => b === 0);
    case "quant": return (node.max === 0 ? node.required === true : node.min >= 1) && needsWide(node.node);
    case "group": return node.alts.every((seq) => seq.some(needsWide));
  }
}

/** The RunClass of a parsed pattern, or null when a match can consume a non-ASCII character. */
function runClassOf(root: Node): RunClass | null {
  const consumed = new CharSet();
  const collect = (node: Node): void => {
    if (node.kind === "set") consumed.union(node.set);
    else if (node.kind === "quant" && node.max > 0) collect(node.node);
    else if (node.kind === "group") for (const seq of node.alts) seq.forEach(collect);
  };
  collect(root);
  if (consumed.other) return null;
  const table = (set: CharSet) => {
    const t = new Uint8Array(128);
    for (let c = 0; c < 128; c++) if (set.bits[c >> 5]! & (1 << (c & 31))) t[c] = 1;
    return t;
  };
  return { members: table(consumed), minLength: minLength(root), first: table(firstSet(root)) };
}

function minLength(node: Node): number {
  switch (node.kind) {
    case "empty": return 0;
    case "set": return 1;
    case "quant": return node.max === 0 ? 0 : node.min * minLength(node.node);
    case "group": return Math.min(...node.alts.map((seq) => seq.reduce((sum, n) => sum + minLength(n), 0)));
  }
}

function maxLength(node: Node): number {
  switch (node.kind) {
    case "empty": return 0;
    case "set": return 1;
    // A lookaround (max 0) consumes nothing but reads its content: count it, to stay an upper bound on what is read.
    case "quant": return node.max === 0 ? maxLength(node.node) : node.max === Infinity ? (maxLength(node.node) === 0 ? 0 : Infinity) : node.max * maxLength(node.node);
    case "group": return Math.max(0, ...node.alts.map((seq) => seq.reduce((sum, n) => sum + maxLength(n), 0)));
  }
}

/**
 * An upper bound on how many characters a match of `source` reads, the match and its
 * lookarounds together; Infinity when unbounded (`+`, `*`, `{n,}`, back-references). The engine
 * uses it to run a rule only in a window around its keywords instead of over the whole text.
 */
export function patternReach(source: string, flags = ""): number {
  if (/\\[1-9]|\\k</.test(source)) return Infinity;
  try {
    const alts = new Parser(source, flags.includes("i")).parse();
    return maxLength({ kind: "group", alts });
  } catch {
    return Infinity;
  }
}

/** Largest set read as one choice per letter (`[pe]`, `[us]`, `[_-]`): a keyword has one of them. */
const MAX_SPLIT = 4;

/**
 * The lower-case letters (or other characters) a set can be, when it is small: `[pe]` is `p` or
 * `e` in either case. Null when it is larger, or holds a character beyond ASCII.
 */
function choicesOf(set: CharSet): number[] | null {
  if (set.other) return null;
  const keys: number[] = [];
  for (let c = 0; c < 128; c++) {
    if ((set.bits[c >> 5]! & (1 << (c & 31))) === 0) continue;
    const key = c >= 65 && c <= 90 ? c + 32 : c;
    if (!keys.includes(key)) {
      if (keys.length === MAX_SPLIT) return null;
      keys.push(key);
    }
  }
  return keys;
}

class NotAnchored extends Error {}

/**
 * True when every match of `source` begins with one of `keywords` (lower-case ASCII), compared
 * as the keyword automaton compares (ASCII letters in either case): then the engine needs to try
 * the pattern only where a keyword starts, anchored there, instead of at every position of the
 * text or of a window. Proved from the parse, never from examples; false when unsure.
 *
 * The pattern is walked with the set of places in the keywords' trie its matches so far can be
 * at (DONE once one has read a whole keyword): a character the trie has no edge for, from a
 * place that is not DONE, or a match that can end before DONE, refutes it. There are as many
 * places as trie nodes, so alternations and repetitions cost their size, not their number of ways.
 */
export function keywordAnchored(source: string, flags: string, keywords: readonly string[]): boolean {
  if (keywords.length === 0 || keywords.some((k) => /[^\x20-\x7e]/.test(k)) || /[uv]/.test(flags) || /\\[1-9]|\\k</.test(source)) return false;
  let alts: Node[][];
  try {
    alts = new Parser(source, flags.includes("i")).parse();
  } catch {
    return false;
  }
  // The trie: edges keyed node * 128 + character; a node that ends a keyword is DONE at once.
  const DONE = -1;
  const edges = new Map<number, number>();
  let nodes = 1;
  const ends = new Set<number>();
  for (const k of keywords) {
    let node = 0;
    for (let i = 0; i < k.length; i++) {
      const key = node * 128 + k.charCodeAt(i);
      let child = edges.get(key);
      if (child === undefined) edges.set(key, (child = nodes++));
      node = child;
    }
    ends.add(node);
  }
  const read = (places: ReadonlySet<number>, set: CharSet): Set<number> => {
    const out = new Set<number>();
    let choices: number[] | null | undefined;
    for (const at of places) {
      if (at === DONE) {
        out.add(DONE);
        continue;
      }
      choices ??= choicesOf(set);
      if (choices === null) throw new NotAnchored();
      for (const c of choices) {
        const child = edges.get(at * 128 + c);
        if (child === undefined) throw new NotAnchored();
        out.add(ends.has(child) ? DONE : child);
      }
    }
    return out;
  };
  const same = (a: ReadonlySet<number>, b: ReadonlySet<number>) => a.size === b.size && [...a].every((x) => b.has(x));
  const onlyDone = (places: ReadonlySet<number>) => places.size === 1 && places.has(DONE);
  const walk = (node: Node, places: Set<number>): Set<number> => {
    if (onlyDone(places)) return places;
    switch (node.kind) {
      case "empty":
        return places;
      case "set":
        return read(places, node.set);
      case "group": {
        const out = new Set<number>();
        for (const alt of node.alts) {
          let cur = places;
          for (const n of alt) cur = walk(n, cur);
          for (const x of cur) out.add(x);
        }
        return out;
      }
      case "quant": {
        // A lookaround reads nothing. A repetition: the places after each count from min to max,
        // until a count brings nothing new (places are finite, so that comes).
        if (node.max === 0) return places;
        const out = new Set<number>();
        let cur = places;
        for (let r = 0; ; r++) {
          if (r >= node.min) {
            const before = out.size;
            for (const x of cur) out.add(x);
            if (out.size === before && r > node.min) break;
          }
          if (r === node.max) break;
          const next = walk(node.node, cur);
          if (r >= node.min && same(next, cur)) break;
          cur = next;
        }
        return out;
      }
    }
  };
  try {
    return onlyDone(walk({ kind: "group", alts }, new Set([0])));
  } catch (e) {
    if (e instanceof NotAnchored) return false;
    throw e;
  }
}

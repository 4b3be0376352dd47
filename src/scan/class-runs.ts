/**
 * Maximal runs of characters from one ASCII class, at least `minLength` long, found by skipping:
 * when the character `minLength - 1` ahead of a candidate start is not in the class, no run long
 * enough can start anywhere before it, so most of ordinary text is never read. (A regex such as
 * `[A-Za-z0-9+/_-]{16,}` is tried at every position; this reads about one character in
 * `minLength` where runs are short, and each character at most twice where they are long.)
 * ClassRunFinder finds the same runs with WebAssembly SIMD, for the hot paths.
 */
import wasmBytes from "./class-runs.wat";
import { isAscii, wideRuns } from "./ascii.ts";

/** A class as a 128-entry table: 1 for the ASCII codes in it. Non-ASCII characters are never in a class. */
export type ClassTable = Uint8Array;

/** The table of the characters in `chars` (ranges written out: the caller lists them). */
export function classTable(chars: string): ClassTable {
  const t = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) {
    const c = chars.charCodeAt(i);
    if (c >= 128) throw new Error("class tables hold ASCII only");
    t[c] = 1;
  }
  return t;
}

/**
 * Calls `visit(start, end)` for every maximal run of class characters in `text` of at least
 * `minLength` (>= 1), left to right; `end` is exclusive.
 */
export function forEachClassRun(text: string, members: ClassTable, minLength: number, visit: (start: number, end: number) => void): void {
  const n = text.length;
  const last = minLength - 1;
  // Invariant: `start` is 0 or follows a character outside the class, so a run found from it is maximal.
  let start = 0;
  while (start + minLength <= n) {
    const probe = start + last;
    const c = text.charCodeAt(probe);
    if (c >= 128 || members[c] === 0) {
      start = probe + 1;
      continue;
    }
    let k = probe - 1;
    while (k >= start) {
      const b = text.charCodeAt(k);
      if (b >= 128 || members[b] === 0) break;
      k--;
    }
    if (k >= start) {
      // Too short: the run from k + 1 reaches `probe` only; a long one must reach k + minLength.
      start = k + 1;
      continue;
    }
    let end = probe + 1;
    while (end < n) {
      const b = text.charCodeAt(end);
      if (b >= 128 || members[b] === 0) break;
      end++;
    }
    visit(start, end);
    start = end + 1;
  }
}


/** A class and the shortest run of it wanted. */
export interface RunSpec {
  readonly members: ClassTable;
  readonly minLength: number;
}

interface RunsModule {
  readonly memory: WebAssembly.Memory;
  classify(input: number, length: number, tables: number, classes: number, masks: number, stride: number): void;
  runs(masks: number, words: number, min: number, out: number): number;
}

const wasmModule = new WebAssembly.Module(wasmBytes);

/** Texts longer than this are searched in JavaScript: the module's memory never shrinks. */
export const MAX_SIMD_TEXT = 4 * 1024 * 1024;
/**
 * Texts shorter than this are searched in JavaScript too: copying one into the module and
 * classifying every registered class costs more than skipping through a few hundred characters
 * (a tool description, a header value).
 */
export const MIN_SIMD_TEXT = 1024;
const TABLE_BYTES = 32;

/**
 * The runs of classes in a text, found with WebAssembly SIMD (class-runs.wat): the text is copied
 * into the module's memory once, every registered class classified sixteen characters at a time
 * from one load, and each class's runs read from its bit masks when first asked for; about three
 * times the speed of forEachClassRun's skipping, whose probes in ordinary text are a coin toss
 * each. The last text's work is kept, so the passes of one scan that ask about the same text (the
 * decoders, then the rules) share it. A text with a character beyond ASCII (one byte per
 * character no longer holds), shorter than MIN_SIMD_TEXT or longer than MAX_SIMD_TEXT is searched
 * with forEachClassRun; the runs are the same either way.
 */
export class ClassRunIndex {
  readonly #specs: RunSpec[] = [];
  /** Whether a class was registered since the tables were last written to memory. */
  #newTables = true;
  readonly #module: RunsModule;
  #bytes: Buffer;
  /** The text indexed, and for it: whether its masks are in memory, and each class's runs once asked for. */
  #text: string | null = null;
  #simd = false;
  #runs: (Int32Array | null)[] = [];
  #words = 0;
  #masksAt = 0;
  #maskBytes = 0;
  #outAt: number[] = [];

  /** `minSimdText`: MIN_SIMD_TEXT but for tests, which hold the module to the search at every length. */
  constructor(readonly minSimdText = MIN_SIMD_TEXT) {
    this.#module = new WebAssembly.Instance(wasmModule, {}).exports as unknown as RunsModule;
    this.#bytes = Buffer.from(this.#module.memory.buffer);
  }

  /** Adds a class (an identical one is shared); returns its id for runs(). */
  register(spec: RunSpec): number {
    if (!Number.isInteger(spec.minLength) || spec.minLength < 1 || spec.minLength > 64) throw new Error("a run's minimum length is 1 to 64");
    const known = this.#specs.findIndex((s) => s.minLength === spec.minLength && s.members.every((v, c) => v === spec.members[c]));
    if (known >= 0) return known;
    this.#specs.push(spec);
    this.#newTables = true;
    this.#text = null;
    return this.#specs.length - 1;
  }

  /**
   * The maximal runs of class `id` in `text` of at least its minLength, as (start, end) pairs,
   * left to right. Valid until another text is indexed or a class registered.
   */
  runs(text: string, id: number): Int32Array {
    if (text !== this.#text) this.#index(text);
    const known = this.#runs[id];
    if (known !== undefined && known !== null) return known;
    const spec = this.#specs[id]!;
    let runs: Int32Array;
    if (this.#simd) {
      const masks = this.#masksAt + id * this.#maskBytes;
      const count = this.#module.runs(masks, this.#words, spec.minLength, this.#outAt[id]!);
      runs = new Int32Array(this.#module.memory.buffer, this.#outAt[id]!, 2 * count);
    } else {
      const found: number[] = [];
      forEachClassRun(text, spec.members, spec.minLength, (start, end) => found.push(start, end));
      runs = Int32Array.from(found);
    }
    this.#runs[id] = runs;
    return runs;
  }

  #index(text: string): void {
    this.#text = text;
    this.#runs = this.#specs.map(() => null);
    const n = text.length;
    // A text beyond ASCII in a few runs (a page with a © in it) is searched here too, those runs
    // written as a byte no class holds; one with many, in JavaScript.
    const sized = n >= this.minSimdText && n <= MAX_SIMD_TEXT;
    const ascii = sized && isAscii(text);
    const wide = sized && !ascii ? wideRuns(text) : null;
    this.#simd = ascii || wide !== null;
    if (!this.#simd) return;
    const classes = this.#specs.length;
    const padded = (n + 63) & ~63;
    const words = padded / 64;
    // Layout: class tables, the text (zeroes to a multiple of 64), then per class its masks
    // (plus a zero word), then per class room for its runs (at most one per minLength + 1
    // characters, plus one).
    const input = align(classes * TABLE_BYTES);
    const masksAt = align(input + padded);
    const maskBytes = (words + 1) * 8;
    let need = masksAt + classes * maskBytes;
    this.#outAt = this.#specs.map((s) => {
      const at = need;
      need += 8 * (Math.floor(n / (s.minLength + 1)) + 1);
      return at;
    });
    const memory = this.#module.memory;
    if (need > memory.buffer.byteLength) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
    if (this.#bytes.buffer !== memory.buffer) this.#bytes = Buffer.from(memory.buffer);
    const bytes = this.#bytes;
    if (this.#newTables) {
      this.#specs.forEach((s, k) => bytes.set(nibbleTable(s.members), k * TABLE_BYTES));
      this.#newTables = false;
    }
    // One byte a code unit: its low byte, so what is beyond ASCII becomes NOT_A_MEMBER.
    bytes.write(text, input, "latin1");
    if (wide !== null) for (let k = 0; k < wide.length; k += 2) bytes.fill(NOT_A_MEMBER, input + wide[k]!, input + wide[k + 1]!);
    bytes.fill(0, input + n, input + padded);
    this.#module.classify(input, padded, 0, classes, masksAt, maskBytes);
    for (let k = 0; k < classes; k++) bytes.fill(0, masksAt + k * maskBytes + words * 8, masksAt + (k + 1) * maskBytes);
    this.#words = words;
    this.#masksAt = masksAt;
    this.#maskBytes = maskBytes;
  }
}

/** The index every scanner of the process registers its classes with. */
export const classRuns = new ClassRunIndex();

const align = (n: number): number => (n + 63) & ~63;
/** A byte beyond ASCII: in no class (classTable holds ASCII only). */
const NOT_A_MEMBER = 0x80;

/** class-runs.wat's table of a class: lo[l] has bit h when 16h + l is a member; hi[h] = 1 << h. */
function nibbleTable(members: ClassTable): Uint8Array {
  const t = new Uint8Array(TABLE_BYTES);
  for (let c = 0; c < 128; c++) if (members[c] === 1) t[c & 15]! |= 1 << (c >> 4);
  for (let h = 0; h < 8; h++) t[16 + h] = 1 << h;
  return t;
}

/**
 * Maximal runs of characters from one ASCII class, at least `minLength` long, found by skipping:
 * when the character `minLength - 1` ahead of a candidate start is not in the class, no run long
 * enough can start anywhere before it, so most of ordinary text is never read. (A regex such as
 * `[A-Za-z0-9+/_-]{16,}` is tried at every position; this reads about one character in
 * `minLength` where runs are short, and each character at most twice where they are long.)
 * ClassRunFinder finds the same runs with WebAssembly SIMD, for the hot paths.
 */
import wasmBytes from "./class-runs.wat";
import { isAscii } from "./ascii.ts";

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
const TABLE_BYTES = 32;

/**
 * The runs of several classes in one text, found with WebAssembly SIMD (class-runs.wat): the text
 * is copied into the module's memory once, each class classified sixteen characters at a time,
 * and the runs read from bit masks, about three times the speed of forEachClassRun's skipping
 * (bench:scan), whose probes in ordinary text are a coin toss each. A text with a character
 * beyond ASCII (one byte per character no longer holds) or longer than MAX_SIMD_TEXT is searched
 * with forEachClassRun instead; the runs are the same either way.
 */
export class ClassRunFinder {
  readonly #specs: readonly RunSpec[];
  readonly #module: RunsModule;
  #bytes: Buffer;

  constructor(specs: readonly RunSpec[]) {
    for (const s of specs) {
      if (!Number.isInteger(s.minLength) || s.minLength < 1 || s.minLength > 64) throw new Error("a run's minimum length is 1 to 64");
    }
    this.#specs = specs;
    this.#module = new WebAssembly.Instance(wasmModule, {}).exports as unknown as RunsModule;
    this.#bytes = Buffer.from(this.#module.memory.buffer);
    specs.forEach((s, k) => this.#bytes.set(nibbleTable(s.members), k * TABLE_BYTES));
  }

  /**
   * For each class (in the order given), its maximal runs of at least its minLength as
   * (start, end) pairs, left to right; with `wanted`, only for the classes k where wanted[k] is 1
   * (the others get none). Valid until the next call.
   */
  find(text: string, wanted?: Uint8Array): readonly Int32Array[] {
    const n = text.length;
    if (wanted !== undefined && wanted.every((w) => w === 0)) return this.#specs.map(() => NONE);
    if (n > MAX_SIMD_TEXT || !isAscii(text)) return this.#inJavaScript(text, wanted);
    const classes = this.#specs.length;
    const padded = (n + 63) & ~63;
    const words = padded / 64;
    // Layout: class tables, the text (zeroes to a multiple of 64), then per class its masks
    // (plus a zero word) and its runs (at most one per minLength + 1 characters, plus one).
    const input = align(classes * TABLE_BYTES);
    const masksAt = align(input + padded);
    const maskBytes = (words + 1) * 8;
    const outAt = masksAt + classes * maskBytes;
    let need = outAt;
    for (const s of this.#specs) need += 8 * (Math.floor(n / (s.minLength + 1)) + 1);
    const memory = this.#module.memory;
    if (need > memory.buffer.byteLength) {
      memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
      this.#bytes = Buffer.from(memory.buffer);
    }
    const bytes = this.#bytes;
    bytes.write(text, input, "latin1");
    bytes.fill(0, input + n, input + padded);
    this.#module.classify(input, padded, 0, classes, masksAt, maskBytes);
    const out: Int32Array[] = [];
    let at = outAt;
    this.#specs.forEach((s, k) => {
      if (wanted !== undefined && wanted[k] === 0) {
        out.push(NONE);
        return;
      }
      const masks = masksAt + k * maskBytes;
      bytes.fill(0, masks + words * 8, masks + maskBytes);
      const count = this.#module.runs(masks, words, s.minLength, at);
      out.push(new Int32Array(memory.buffer, at, 2 * count));
      at += 8 * (Math.floor(n / (s.minLength + 1)) + 1);
    });
    return out;
  }

  #inJavaScript(text: string, wanted: Uint8Array | undefined): Int32Array[] {
    return this.#specs.map((s, k) => {
      if (wanted !== undefined && wanted[k] === 0) return NONE;
      const runs: number[] = [];
      forEachClassRun(text, s.members, s.minLength, (start, end) => runs.push(start, end));
      return Int32Array.from(runs);
    });
  }
}

const align = (n: number): number => (n + 63) & ~63;
const NONE = new Int32Array(0);

/** class-runs.wat's table of a class: lo[l] has bit h when 16h + l is a member; hi[h] = 1 << h. */
function nibbleTable(members: ClassTable): Uint8Array {
  const t = new Uint8Array(TABLE_BYTES);
  for (let c = 0; c < 128; c++) if (members[c] === 1) t[c & 15]! |= 1 << (c >> 4);
  for (let h = 0; h < 8; h++) t[16 + h] = 1 << h;
  return t;
}

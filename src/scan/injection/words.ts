/**
 * A learned word model: logistic regression over the words and word pairs of a short window of
 * text (WINDOW words, every STRIDE), hashed into 2^BITS weights. It is trained on the tuning sets
 * of the injection corpus (scripts/words-model.ts: the attack instructions as written and the
 * texts the engine reads around findings in attacks, against the benign texts, carrier pages and
 * the texts read around findings in them), so it knows the vocabulary of attacks that no phrase
 * of the lexicons names, in every language the corpus has, and of the documents that quote them.
 *
 * The engine uses it as one more piece of evidence, never alone, only around the rules' findings:
 * when they scored something short of the threshold, the window there the model finds most like
 * an attack adds the weight of the first of WORD_RULE's tiers its probability reaches; and a
 * response that cue intents alone took over the threshold is blocked only when a window there
 * reaches CONFIRM_PROBABILITY (engine.ts). Text with no other finding is never read by it (and
 * costs nothing).
 *
 * Tokens: NFKC, lower case; runs of letters, marks, digits and apostrophes are words (cut at
 * MAX_WORD), runs of path and template punctuation (`~/.`, `<|`, `{{`) are words of their own,
 * and scripts written without spaces (Han, kana, Hangul) give a word per pair of characters.
 * Pure: no files, no clock.
 */

const BITS = 20;
const SIZE = 1 << BITS;
const MASK = SIZE - 1;
export const WINDOW = 24;
const STRIDE = 12;
/** Reading, windows start more often than in training: an attack is seen whole wherever the text around it puts it. */
const READ_STRIDE = 4;
const MAX_WORD = 24;
/** The longest text read (characters from its start): a window's words are local, a megabyte of them no more telling. */
const MAX_TEXT = 256 * 1024;

/**
 * The engine's rule for the model: what it adds when a window reaches a probability, the surest
 * tier (and the most it adds) first: a window the model is all but certain of beside one weak
 * finding blocks; a likely one needs the rules to have found more.
 */
export const WORD_RULE = {
  id: "inj.learned-words",
  tiers: [
    { probability: 0.999, weight: 40 },
    { probability: 0.998, weight: 20 },
  ],
} as const;

export interface WordModel {
  readonly weights: Float32Array;
  readonly bias: number;
}

/** The window of `text` most like an attack: its probability and where it lies (in the normalised text `normal`). */
export interface WordWindow {
  readonly probability: number;
  readonly normal: string;
  readonly start: number;
  readonly end: number;
}

const WORD = /[\p{L}\p{M}\p{N}_'’]+|[~/.$<>|[\]#{}]+/gu;
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const UNSPACED_RUN = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]+/gu;

/** The words of `normal` (already normalised) with where each starts and ends. */
function wordsOf(normal: string): { words: string[]; at: number[] } {
  const words: string[] = [];
  const at: number[] = [];
  const push = (w: string, s: number, e: number) => {
    words.push(w.length > MAX_WORD ? w.slice(0, MAX_WORD) : w);
    at.push(s, e);
  };
  WORD.lastIndex = 0;
  for (let m = WORD.exec(normal); m !== null; m = WORD.exec(normal)) {
    const w = m[0];
    if (!UNSPACED.test(w)) {
      push(w, m.index, m.index + w.length);
      continue;
    }
    // Runs of an unspaced script as pairs of characters (a lone one as itself), the rest as words.
    let from = 0;
    UNSPACED_RUN.lastIndex = 0;
    for (let r = UNSPACED_RUN.exec(w); r !== null; r = UNSPACED_RUN.exec(w)) {
      if (r.index > from) push(w.slice(from, r.index), m.index + from, m.index + r.index);
      const chars = [...r[0]];
      let off = m.index + r.index;
      for (let i = 0; i < chars.length; i++) {
        const c = chars[i]!;
        const n = chars[i + 1];
        push(n !== undefined ? c + n : c, off, off + c.length + (n?.length ?? 0));
        off += c.length;
      }
      from = r.index + r[0].length;
    }
    if (from < w.length) push(w.slice(from), m.index + from, m.index + w.length);
  }
  return { words, at };
}

export const normalise = (text: string): string => (text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) : text).normalize("NFKC").toLowerCase();

/** FNV-1a over `s`, on from state `h` (32 bits, unmasked). */
function fnv(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/**
 * The feature of each word (`word[i]`) and of each word with the next (`pair[i]`, the hash of
 * "a b", computed on from the first word's hash without building the string).
 */
function hashesOf(words: readonly string[]): { word: Uint32Array; pair: Uint32Array } {
  const word = new Uint32Array(words.length);
  const pair = new Uint32Array(words.length);
  for (let i = 0; i < words.length; i++) {
    const h = fnv(words[i]!);
    word[i] = h & MASK;
    if (i + 1 < words.length) pair[i] = fnv(words[i + 1]!, fnv(" ", h)) & MASK;
  }
  return { word, pair };
}

/**
 * The features of words [from, to) into `out`, each once, in order of first occurrence (each
 * word, then its pair with the next inside the window); returns how many.
 */
function windowFeatures(h: { word: Uint32Array; pair: Uint32Array }, from: number, to: number, out: Uint32Array): number {
  // A feature is in the window already when its stamp is this window's.
  if (++generation === 0x7fffffff) {
    stamps.fill(0);
    generation = 1;
  }
  let n = 0;
  for (let i = from; i < to; i++) {
    const w = h.word[i]!;
    if (stamps[w] !== generation) {
      stamps[w] = generation;
      out[n++] = w;
    }
    if (i + 1 < to) {
      const p = h.pair[i]!;
      if (stamps[p] !== generation) {
        stamps[p] = generation;
        out[n++] = p;
      }
    }
  }
  return n;
}
const stamps = new Int32Array(SIZE);
let generation = 0;

/** The hashed features of words [from, to): each word and each pair of neighbours, once. */
function features(words: readonly string[], from: number, to: number): Uint32Array {
  const out = new Uint32Array(2 * (to - from));
  return out.slice(0, windowFeatures(hashesOf(words.slice(from, to)), 0, to - from, out));
}

/** The hashed features of all of `text` read as one window (tests build models from them). */
export function textFeatures(text: string): Uint32Array {
  const { words } = wordsOf(normalise(text));
  return features(words, 0, words.length);
}

/** The windows [from, to) of word indices over n words, every `stride` words. */
function windows(n: number, stride = STRIDE): [number, number][] {
  if (n <= WINDOW) return n > 0 ? [[0, n]] : [];
  const out: [number, number][] = [];
  for (let i = 0; ; i += stride) {
    out.push([i, Math.min(n, i + WINDOW)]);
    if (i + WINDOW >= n) break;
  }
  return out;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** The window of `text` the model finds most like an attack, or null for a text without words. */
export function strongestWindow(model: WordModel, text: string): WordWindow | null {
  const normal = normalise(text);
  const { words, at } = wordsOf(normal);
  const hashes = hashesOf(words);
  const scratch = new Uint32Array(2 * WINDOW);
  let best: WordWindow | null = null;
  for (const [from, to] of windows(words.length, READ_STRIDE)) {
    const n = windowFeatures(hashes, from, to, scratch);
    let z = model.bias;
    for (let k = 0; k < n; k++) z += model.weights[scratch[k]!]!;
    const p = sigmoid(z);
    if (best === null || p > best.probability) best = { probability: p, normal, start: at[2 * from]!, end: at[2 * to - 1]! };
  }
  return best;
}

/** A training example: a text, and whether it is an attack. */
export interface WordExample {
  readonly text: string;
  readonly attack: boolean;
}

/**
 * Trains a model on `examples` (deterministic: the same examples in the same order give the same
 * weights). Every window of an attack is a positive, every distinct window of a benign text a
 * negative; the two classes weigh the same in total. Stochastic gradient descent on the log loss,
 * EPOCHS passes in a fixed shuffled order, the step shrinking each pass and scaled by the
 * window's feature count.
 */
export function trainWordModel(examples: readonly WordExample[]): WordModel {
  const X: Uint32Array[] = [];
  const y: number[] = [];
  for (const e of examples) {
    const { words } = wordsOf(normalise(e.text));
    const seen = new Set<string>();
    for (const [from, to] of windows(words.length)) {
      const key = words.slice(from, to).join(" ");
      if (seen.has(key)) continue;
      seen.add(key);
      X.push(features(words, from, to));
      y.push(e.attack ? 1 : 0);
    }
  }
  const n = X.length;
  const positives = y.reduce((a, b) => a + b, 0);
  if (positives === 0 || positives === n) throw new Error("training a word model needs attacks and benign texts");
  const weightOf = [n / (2 * (n - positives)), n / (2 * positives)];
  const weights = new Float32Array(SIZE);
  let bias = 0;
  const order = Array.from({ length: n }, (_, i) => i);
  let seed = 1;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const rate = RATE / (1 + epoch);
    for (const k of order) {
      const f = X[k]!;
      let z = bias;
      for (const i of f) z += weights[i]!;
      const g = ((sigmoid(z) - y[k]!) * weightOf[y[k]!]! * rate) / Math.sqrt(f.length + 1);
      for (const i of f) weights[i] = weights[i]! * (1 - L2) - g;
      bias -= g * 0.1;
    }
  }
  return { weights, bias };
}
const EPOCHS = 6;
const RATE = 0.2;
const L2 = 1e-6;

const MAGIC = "sluice-words-1";

/** The model as bytes: the magic, BITS, the bias and the weights (little-endian float32). */
export function wordModelBytes(model: WordModel): Uint8Array {
  const head = new TextEncoder().encode(MAGIC);
  const out = new Uint8Array(head.length + 8 + model.weights.byteLength);
  out.set(head, 0);
  const view = new DataView(out.buffer);
  view.setUint32(head.length, BITS, true);
  view.setFloat32(head.length + 4, model.bias, true);
  out.set(new Uint8Array(model.weights.buffer, model.weights.byteOffset, model.weights.byteLength), head.length + 8);
  return out;
}

/** A model from wordModelBytes' output; throws on anything else. */
export function wordModelFromBytes(bytes: Uint8Array): WordModel {
  const head = new TextEncoder().encode(MAGIC);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length !== head.length + 8 + SIZE * 4 || new TextDecoder().decode(bytes.subarray(0, head.length)) !== MAGIC || view.getUint32(head.length, true) !== BITS) {
    throw new Error(`not a word model of ${BITS} bits (${MAGIC})`);
  }
  const weights = new Float32Array(SIZE);
  new Uint8Array(weights.buffer).set(bytes.subarray(head.length + 8));
  const bias = view.getFloat32(head.length + 4, true);
  // A weight that is not a finite number could make every probability NaN, which reaches no tier:
  // the model would be off without a word. Refused.
  if (!Number.isFinite(bias) || !weights.every(Number.isFinite)) throw new Error("not a word model: a weight is not a finite number");
  return { weights, bias };
}

let registered: WordModel | null = null;

/** Makes `model` the built-in one (dist/sluice: the embedded model; from source: scripts/preload.ts). */
export function registerWordModel(model: WordModel | null): void {
  registered = model;
}

/** The built-in model, when one was registered. */
export function builtinWordModel(): WordModel | null {
  return registered;
}

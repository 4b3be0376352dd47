/**
 * Prebuilt automata. Building the cue phrases' automata (a 12 MB DFA over ~7,400 ASCII phrases
 * and a sparse one over ~7,600 others, injection/cues.ts) is most of what compiling the built-in
 * injection pack costs at start: the code runs once, cold. build.ts compiles the built-in pack
 * once with collectAutomata() on and embeds what was built in dist/sluice; at start
 * registerAutomata() makes it known here, and cachedAutomaton() finds each automaton by a SHA-256
 * digest of everything it is built from (its kind and its phrases, in order), so what it finds is
 * exactly what building would give. Anything not found (a source checkout, a config's own
 * lexicons) is built as before. The same store keeps what the safety analysis found in each
 * built-in rule's pattern (rules/compile.ts), which is otherwise worked out again at every start.
 * Pure: no files, no clock.
 */
import { createHash } from "node:crypto";

/** An automaton as plain data: typed arrays, numbers, and maps of numbers (as key, value pairs). */
export type AutomatonData = Record<string, Int32Array | Uint16Array | Map<number, number> | number>;

const MAGIC = "sluice-automata-1";
const registered = new Map<string, AutomatonData>();
let collecting: Map<string, AutomatonData> | null = null;

export function automatonKey(kind: string, phrases: readonly string[]): string {
  // JSON: every phrase quoted and escaped, so no two lists (["a\u0000b"], ["a", "b"]) read alike.
  return createHash("sha256").update(JSON.stringify([kind, phrases])).digest("hex");
}

/** The automaton for `phrases`: registered (prebuilt), or built now. */
export function cachedAutomaton<T>(kind: string, phrases: readonly string[], build: () => T, codec: { toData(t: T): AutomatonData; fromData(d: AutomatonData): T }): T {
  if (registered.size === 0 && collecting === null) return build();
  const key = automatonKey(kind, phrases);
  const found = registered.get(key);
  if (found !== undefined) return codec.fromData(found);
  const built = build();
  collecting?.set(key, codec.toData(built));
  return built;
}

/** Records every automaton built from now on; the returned function stops and encodes them. */
export function collectAutomata(): () => Uint8Array {
  collecting = new Map();
  return () => {
    const out = encode(collecting!);
    collecting = null;
    return out;
  };
}

/** Makes the automata in `blob` (collectAutomata's output) known; returns how many. Throws on a blob that is not one. */
export function registerAutomata(blob: Uint8Array): number {
  const decoded = decode(blob);
  for (const [k, v] of decoded) registered.set(k, v);
  return decoded.size;
}

/** Forgets every registered automaton (tests). */
export function clearAutomata(): void {
  registered.clear();
}

type FieldIndex = { readonly name: string; readonly type: "i32" | "u16" | "map" | "num"; readonly offset?: number; readonly length?: number; readonly value?: number };

/** MAGIC, a u32 index length, the JSON index, then the arrays, each at a multiple of 8 bytes. */
function encode(entries: Map<string, AutomatonData>): Uint8Array {
  const index: { key: string; fields: FieldIndex[] }[] = [];
  const chunks: Uint8Array[] = [];
  let at = 0;
  const put = (bytes: Uint8Array): number => {
    const offset = at;
    chunks.push(bytes);
    at += bytes.length;
    const pad = (8 - (at % 8)) % 8;
    if (pad > 0) {
      chunks.push(new Uint8Array(pad));
      at += pad;
    }
    return offset;
  };
  for (const [key, data] of entries) {
    const fields: FieldIndex[] = [];
    for (const [name, v] of Object.entries(data)) {
      if (typeof v === "number") fields.push({ name, type: "num", value: v });
      else if (v instanceof Map) {
        const pairs = Int32Array.from([...v].flat());
        fields.push({ name, type: "map", offset: put(new Uint8Array(pairs.buffer)), length: pairs.length });
      } else fields.push({ name, type: v instanceof Int32Array ? "i32" : "u16", offset: put(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)), length: v.length });
    }
    index.push({ key, fields });
  }
  const head = new TextEncoder().encode(`${MAGIC}\n${JSON.stringify(index)}`);
  const headLength = head.length + ((8 - ((head.length + 4) % 8)) % 8);
  const out = new Uint8Array(4 + headLength + at);
  new DataView(out.buffer).setUint32(0, headLength, true);
  out.set(head, 4);
  out.fill(0x20, 4 + head.length, 4 + headLength);
  let pos = 4 + headLength;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

function decode(blob: Uint8Array): Map<string, AutomatonData> {
  // Arrays are aligned within the blob, so the blob must start its ArrayBuffer (else: a copy that does).
  const bytes = blob.byteOffset === 0 ? blob : new Uint8Array(blob);
  if (bytes.length < 4) throw new Error("automata: too short");
  const headLength = new DataView(bytes.buffer).getUint32(0, true);
  const head = new TextDecoder().decode(bytes.subarray(4, 4 + headLength));
  if (!head.startsWith(`${MAGIC}\n`)) throw new Error("automata: not a sluice automata file");
  const index = JSON.parse(head.slice(MAGIC.length + 1)) as { key: string; fields: FieldIndex[] }[];
  const base = 4 + headLength;
  if (!Array.isArray(index)) throw new Error("automata: no index");
  const out = new Map<string, AutomatonData>();
  for (const { key, fields } of index) {
    if (typeof key !== "string" || !Array.isArray(fields)) throw new Error("automata: a bad index entry");
    const data: AutomatonData = {};
    for (const f of fields) {
      if (f.type === "num" ? typeof f.value !== "number" : !(f.type === "i32" || f.type === "u16" || f.type === "map") || !Number.isInteger(f.offset) || !Number.isInteger(f.length) || f.offset! < 0 || f.length! < 0 || base + f.offset! + f.length! * (f.type === "u16" ? 2 : 4) > bytes.length) {
        throw new Error(`automata: field ${String(f.name)} of ${key.slice(0, 12)} is out of shape or out of bounds`);
      }
      if (f.type === "num") data[f.name] = f.value!;
      else if (f.type === "u16") data[f.name] = new Uint16Array(bytes.buffer, base + f.offset!, f.length!);
      else {
        const a = new Int32Array(bytes.buffer, base + f.offset!, f.length!);
        if (f.type === "i32") data[f.name] = a;
        else {
          const m = new Map<number, number>();
          for (let i = 0; i + 1 < a.length; i += 2) m.set(a[i]!, a[i + 1]!);
          data[f.name] = m;
        }
      }
    }
    out.set(key, data);
  }
  return out;
}

/**
 * RFC 8785 JSON Canonicalization Scheme: object members sorted by their names' UTF-16 code
 * units (§3.2.3), no white space, strings and numbers as ECMAScript's JSON.stringify writes them
 * (§3.2.2: the scheme is defined by that serialisation). Two documents that differ only in key
 * order or spacing have the same canonical form, so their digests are equal. Pure.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return slowCanonical(value);
  // The native serialiser writes members in the order an object lists them: given copies whose
  // members were added in sorted order, it writes the canonical form, about five times as fast
  // as assembling it here (every decision record goes through this).
  let sorted: unknown;
  try {
    sorted = sortedCopy(value);
  } catch (e) {
    if (e !== NOT_PLAIN) throw e;
    return slowCanonical(value);
  }
  return JSON.stringify(sorted) ?? "null";
}

/** Thrown by sortedCopy for an object the native order cannot give: the whole value is then assembled here. */
const NOT_PLAIN = new Error("not a plain object with plain names");

/**
 * An object or array with every plain object in it in canonical order for JSON.stringify (see
 * sortedCopy), or null when some object in it is not plain (then only canonicalJson is exact).
 */
export function canonicalCopy(value: object): unknown {
  try {
    return sortedCopy(value);
  } catch (e) {
    if (e !== NOT_PLAIN) throw e;
    return null;
  }
}

/**
 * `value` with every plain object's members in canonical order (undefined ones left out, as
 * JSON.stringify would). An object whose names may be array indices ("0", "12") lists those
 * first whatever the order they were added in, and one with a prototype of its own (a Date) has
 * a toJSON of its own: for those NOT_PLAIN is thrown.
 */
function sortedCopy(value: unknown): unknown {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError("canonical JSON has no Infinity or NaN");
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : sortedCopy(v)));
  const proto = Object.getPrototypeOf(value);
  const keys = Object.keys(value);
  if ((proto !== Object.prototype && proto !== null) || keys.some(mayBeIndex)) throw NOT_PLAIN;
  // Array.prototype.sort compares UTF-16 code units, as §3.2.3 asks.
  keys.sort();
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = sortedCopy(v);
  }
  return out;
}

/** A name that may be an array index, which objects list before their other names. */
const mayBeIndex = (k: string): boolean => k.length > 0 && k.charCodeAt(0) >= 48 && k.charCodeAt(0) <= 57;

/** The canonical form assembled member by member (objects the native order cannot give). */
function slowCanonical(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError("canonical JSON has no Infinity or NaN");
    // undefined (an absent member) is left out by the caller; at the top it is null.
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : slowCanonical(v))).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${slowCanonical(v)}`).join(",")}}`;
}

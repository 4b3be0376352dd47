/**
 * RFC 8785 JSON Canonicalization Scheme: object members sorted by their names' UTF-16 code
 * units (§3.2.3), no white space, strings and numbers as ECMAScript's JSON.stringify writes them
 * (§3.2.2: the scheme is defined by that serialisation). Two documents that differ only in key
 * order or spacing have the same canonical form, so their digests are equal. Pure.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError("canonical JSON has no Infinity or NaN");
    // undefined (an absent member) is left out by the caller; at the top it is null.
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  // Array.prototype.sort compares UTF-16 code units, as §3.2.3 asks.
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** The encoded forms a planted secret travels in. Each takes the snippet that carries it. */
export const ENCODINGS = ["plain", "base64", "base64url", "percent", "percent-twice", "hex", "json-unicode", "zero-width"] as const;
export type Encoding = (typeof ENCODINGS)[number];

const utf8 = (s: string) => Buffer.from(s, "utf8");

/** Every byte as %XX: an encoded alphanumeric token is otherwise left as written. */
export function percentAll(s: string): string {
  return [...utf8(s)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");
}

export function jsonUnicode(s: string): string {
  return s.split("").map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
}

/** Encodes `snippet`; `secret` is the planted value inside it (for the zero-width insertion). */
export function encode(encoding: Encoding, snippet: string, secret: string): string {
  switch (encoding) {
    case "plain":
      return snippet;
    case "base64":
      return utf8(snippet).toString("base64");
    case "base64url":
      return utf8(snippet).toString("base64url");
    case "percent":
      return percentAll(snippet);
    case "percent-twice":
      return encodeURIComponent(percentAll(snippet));
    case "hex":
      return utf8(snippet).toString("hex");
    case "json-unicode":
      return jsonUnicode(snippet);
    case "zero-width": {
      const at = Math.max(1, Math.floor(secret.length / 2));
      return snippet.replace(secret, `${secret.slice(0, at)}\u200b${secret.slice(at)}`);
    }
  }
}

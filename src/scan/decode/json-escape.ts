import { replaceRuns } from "./text.ts";

/** A surrogate pair `\uD8xx\uDCxx` (high then low half), or any single `\uXXXX` escape. */
const JSON_ESCAPE = /\\u([dD][89aAbB][0-9A-Fa-f]{2})\\u([dD][c-fC-F][0-9A-Fa-f]{2})|\\u([0-9A-Fa-f]{4})/g;

/**
 * JSON / JavaScript `\uXXXX` escapes (RFC 8259 §7), surrogate pairs (`\ud83d\ude00`) joined into
 * one character. Lone surrogates are left escaped, so a view never holds broken UTF-16. Other
 * escapes (`\n`, `\"`) are left alone: they never hide a credential's characters. Returns null when
 * nothing changed.
 */
export function jsonUnescape(text: string): string | null {
  if (text.indexOf("\\u") < 0) return null;
  return replaceRuns(text, JSON_ESCAPE, (m) => {
    if (m[1] !== undefined && m[2] !== undefined) return String.fromCharCode(parseInt(m[1], 16), parseInt(m[2], 16));
    const u = parseInt(m[3]!, 16);
    return u >= 0xd800 && u <= 0xdfff ? null : String.fromCharCode(u);
  });
}

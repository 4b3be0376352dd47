import { bytesToText, hexDigit, replaceRuns } from "./text.ts";

/** One or more consecutive `%XX` escapes; a `%` not followed by two hex digits never matches. */
const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;

/**
 * One pass of percent-decoding (RFC 3986 §2.1). Each run of `%XX` escapes becomes its bytes, read
 * as UTF-8 when valid, else byte by byte (printable ASCII kept, other bytes U+FFFD). Malformed
 * escapes (`%`, `%4`, `%zz`) are left as they are. `+` is not turned into a space: it is also a
 * base64 character, and a form body's `+` is decoded by the fragment extractor, not here.
 * Repeated encoding (`%252541`) is undone one layer per pass; decodeViews counts each pass
 * against its depth limit. Returns null when the text has no escape.
 */
export function percentDecode(text: string): string | null {
  if (text.indexOf("%") < 0) return null;
  return replaceRuns(text, PERCENT_RUN, (m) => {
    const run = m[0];
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0, j = 0; i < run.length; i += 3, j++) bytes[j] = (hexDigit(run.charCodeAt(i + 1)) << 4) | hexDigit(run.charCodeAt(i + 2));
    return bytesToText(bytes);
  });
}

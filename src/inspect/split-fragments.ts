/**
 * Split secrets (issue 4, item 4): an agent can send `ghp_abc` and `def...` as two JSON fields,
 * two query parameters or two values of one header, so that no single fragment holds the whole
 * token. joinedFragments rebuilds the bounded concatenations of consecutive sibling values so the
 * same scanner sees the token whole. Pure and linear: every value starts at most three windows.
 */
import type { Fragment } from "../core/types.ts";
import type { FragmentLimits } from "./body-fragments.ts";

const DEFAULT_MAX_JOINED = 256;
const DEFAULT_MAX_JOINED_LENGTH = 512;
/** Pieces of a split token are short; a long value is scanned on its own and ends no window. */
const MAX_PIECE_LENGTH = 128;
/** 2..4 pieces: enough for a token cut into a few fields, small enough to stay linear. */
const MIN_WINDOW = 2;
const MAX_WINDOW = 4;

/** Roots whose locations continue with a JSON-style path (`.key`, `[0]`, `["we.ird"]`). */
const PATH_ROOTS = ["body.json", "body.ndjson", "body.multipart"] as const;

/**
 * Concatenations of 2..4 consecutive short sibling values, location `joined(<first>..<last>)`.
 * Siblings share a parent: JSON values of one object or array, query parameters, form fields,
 * cookies, and the values of one header name. Capped at `maxJoined` results; a concatenation
 * equal to a fragment that is already scanned on its own is left out.
 */
export function joinedFragments(fragments: readonly Fragment[], limits?: FragmentLimits): Fragment[] {
  const maxJoined = limits?.maxJoined ?? DEFAULT_MAX_JOINED;
  const maxLength = limits?.maxJoinedLength ?? DEFAULT_MAX_JOINED_LENGTH;
  const groups = siblingGroups(fragments);
  if (groups.length === 0) return [];
  // A join is not scanned twice, nor when it equals one of the pieces it could be mistaken for
  // (short sibling values); long texts are not hashed for that.
  const seen = new Set<string>();
  for (const group of groups) for (const f of group) seen.add(f.text);
  const out: Fragment[] = [];
  for (const group of groups) {
    for (let i = 0; i < group.length; i++) {
      let text = "";
      for (let n = 0; n < MAX_WINDOW && i + n < group.length; n++) {
        const piece = group[i + n] as Fragment;
        text += piece.text;
        if (text.length > maxLength) break;
        if (n + 1 < MIN_WINDOW || seen.has(text)) continue;
        seen.add(text);
        out.push({ location: `joined(${(group[i] as Fragment).location}..${piece.location})`, text });
        if (out.length >= maxJoined) return out;
      }
    }
  }
  return out;
}

/** Joinable fragments grouped by parent, in order of appearance; groups with one member are dropped. */
function siblingGroups(fragments: readonly Fragment[]): Fragment[][] {
  const groups = new Map<string, Fragment[]>();
  const all: Fragment[][] = [];
  let joinable = 0;
  for (const f of fragments) {
    // Empty pieces add nothing; long ones are not pieces of a token (see MAX_PIECE_LENGTH).
    if (f.text.length === 0 || f.text.length > MAX_PIECE_LENGTH) continue;
    const key = f.parent !== undefined ? f.parent : siblingKey(f.location);
    if (key === null) continue;
    const group = groups.get(key);
    if (group === undefined) {
      const created = [f];
      groups.set(key, created);
      all.push(created);
    } else {
      if (group.length === 1) joinable++;
      group.push(f);
    }
  }
  return joinable === 0 ? [] : all.filter((g) => g.length > 1);
}

/**
 * The parent a location shares with its siblings, or null when it has none worth joining (keys,
 * whole-URL or whole-body fragments, joins). Keys are tagged so that, e.g., the whole Cookie
 * header (`header.cookie`) is not a sibling of the cookies split out of it (`header.cookie.<name>`);
 * a body path's parent is its own key (it starts with `body.`, like no tag).
 */
export function siblingKey(location: string): string | null {
  // Dispatched on the first letter: this runs for every fragment of every request.
  switch (location.charCodeAt(0)) {
    case 0x68: // h
      if (location.startsWith("header.cookie.")) return "cookie:";
      // Every value of one header name is a sibling of the others, wherever they sit in the head.
      return location.startsWith("header.") ? location : null;
    case 0x75: // u
      if (location.startsWith("url.query.")) return "query:";
      return location.startsWith("url.path[") ? "url-path:" : null;
    case 0x62: // b
      break;
    default: // joins (`joined(`) and anything else
      return null;
  }
  if (location.startsWith("body.form.")) return "form:";
  if (!location.startsWith("body.")) return null;
  for (const root of PATH_ROOTS) {
    const next = location.charAt(root.length);
    if (location.startsWith(root) && (next === "." || next === "[")) {
      // Without quoted keys the parent is everything before the last `.` or `[`.
      if (!location.includes('"', root.length)) {
        const cut = Math.max(location.lastIndexOf("."), location.lastIndexOf("["));
        return cut >= root.length ? location.slice(0, cut) : null;
      }
      return parentPath(location, root.length);
    }
  }
  return null;
}

/**
 * `location` minus its last path segment, reading segments from `from`: `.ident`, `[12]` or
 * `["json string"]` (as body-fragments writes them). Read forwards because a quoted key may itself
 * contain `.`, `[` or `]`. Null when the path does not parse.
 */
function parentPath(location: string, from: number): string | null {
  let i = from;
  let last = -1;
  while (i < location.length) {
    last = i;
    const c = location.charAt(i);
    if (c === ".") {
      i++;
      while (i < location.length && location.charAt(i) !== "." && location.charAt(i) !== "[") i++;
    } else if (c === "[" && location.charAt(i + 1) === '"') {
      i += 2;
      while (i < location.length && location.charAt(i) !== '"') i += location.charAt(i) === "\\" ? 2 : 1;
      if (location.charAt(i + 1) !== "]") return null;
      i += 2;
    } else if (c === "[") {
      const close = location.indexOf("]", i);
      if (close < 0) return null;
      i = close + 1;
    } else {
      return null;
    }
  }
  return last < 0 ? null : location.slice(0, last);
}

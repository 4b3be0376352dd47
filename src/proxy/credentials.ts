/**
 * Credential injection (issue 6), the request side: which entry's placeholders a request
 * carries in its target or headers, and what follows. A placeholder sent to a host that is not
 * one of its entry's is refused (`cred.wrong-host`: an attempt to launder the credential
 * through another host); one sent in plain HTTP to its own host is refused unless the entry
 * allows plaintext (`cred.plaintext`); otherwise a request to an entry's host gets the entry's
 * header, with the real value, in place of whatever the client sent under that name.
 */
import { getDomain } from "tldts";
import type { HttpRequestAction, Reason } from "../core/types.ts";
import type { Credential } from "../policy/policy.ts";

/** Every placeholder starts so: one cheap test before looking for any entry's. */
const MARK = "sluice-cred-";

export type CredentialOutcome = { readonly refuse: Reason } | { readonly inject: readonly Credential[] } | null;

/**
 * Whether `e` may go to host:port. A wildcard covers only names under one owner: a host whose
 * registrable domain (private suffixes included, such as execute-api.<region>.amazonaws.com,
 * where anyone can have a name) lies below the wildcard's base is not covered, so
 * `*.amazonaws.com` never sends a key to a stranger's endpoint.
 */
export function covers(e: Credential, host: string, port: number): boolean {
  const hit = e.hosts.match(host, port);
  if (hit === null) return false;
  if (!hit.startsWith("*.")) return true;
  const colon = hit.lastIndexOf(":");
  const base = (colon > 1 ? hit.slice(2, colon) : hit.slice(2)).toLowerCase().replace(/\.$/, "");
  const owner = getDomain(host, { allowPrivateDomains: true, extractHostname: false, validateHostname: false, detectIp: false });
  return owner !== null && (base === owner || base.endsWith(`.${owner}`));
}

const wrongHost = (e: Credential, host: string): Reason => ({ rule: "cred.wrong-host", code: "credential_misuse", detail: `the placeholder of credential ${e.name} was sent to ${host}, which is not one of its hosts` });
const plaintext = (e: Credential): Reason => ({ rule: "cred.plaintext", code: "credential_misuse", detail: `credential ${e.name} is injected only inside intercepted TLS, and this request is plain HTTP` });

/**
 * What the request carries and what follows. The placeholder search is case-insensitive, on the
 * percent-decoded target and on header names and values (bodies: judgeBodyPlaceholders): a best
 * effort (a placeholder split over two headers is not found), because a placeholder alone is
 * worth nothing; what it guards is the operator's view of an agent trying.
 *
 * The entries to inject: the first header entry covering the host, and every replace entry
 * covering it (each applies where its placeholder is, if anywhere); over plain HTTP only those
 * that allow plaintext.
 */
export function judgeCredentials(a: HttpRequestAction, target: string, headers: readonly (readonly [string, string])[], entries: readonly Credential[]): CredentialOutcome {
  let hay = decoded(target);
  for (const [n, v] of headers) hay += `\n${n}:${v}`;
  hay = hay.toLowerCase();
  let carried: Credential[] | null = null;
  if (hay.includes(MARK)) {
    for (const e of entries) {
      if (!hay.includes(e.placeholder.toLowerCase())) continue;
      if (!covers(e, a.host, a.port)) return { refuse: wrongHost(e, a.host) };
      (carried ??= []).push(e);
    }
  }
  const inject: Credential[] = [];
  let header = false;
  for (const e of entries) {
    if (!covers(e, a.host, a.port)) continue;
    if (e.mode === "header") {
      // The first header entry for the host wins (config refuses an exact host taken twice).
      if (header) continue;
      header = true;
      // client_header: reject — the agent's own credential for the host is refused, not replaced.
      if (e.clientHeader === "reject" && headers.some(([n, v]) => sameHeader(e, n) && !v.toLowerCase().includes(e.placeholder.toLowerCase()))) {
        return { refuse: { rule: "cred.client-header", code: "credential_misuse", detail: `the request carries its own ${e.headerName} header for ${a.host}, where credential ${e.name} sets it (client_header: reject)` } };
      }
    }
    if (a.scheme === "http" && !e.allowPlaintext) {
      if (carried?.includes(e)) return { refuse: plaintext(e) };
      continue;
    }
    inject.push(e);
  }
  return inject.length === 0 ? null : { inject };
}

/**
 * The same judgement on a held request body: a placeholder in it (any case) bound for a host
 * that is not its entry's, or in plain HTTP to one that does not allow it, is refused. A best
 * effort like the rest: a compressed body is read as sent.
 */
export function judgeBodyPlaceholders(a: HttpRequestAction, body: Uint8Array, entries: readonly Credential[]): Reason | null {
  if (entries.length === 0) return null;
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1").toLowerCase();
  if (!text.includes(MARK)) return null;
  for (const e of entries) {
    if (!text.includes(e.placeholder.toLowerCase())) continue;
    if (!covers(e, a.host, a.port)) return wrongHost(e, a.host);
    if (a.scheme === "http" && !e.allowPlaintext) return plaintext(e);
  }
  return null;
}

/**
 * Replace mode: the placeholders of `entries` in `text` replaced by their values, written with
 * `escape` (percent-encoding in a URL, JSON escaping in a JSON body, ...). Returns the text and
 * the entries that were applied.
 */
export function replacePlaceholders(text: string, entries: readonly Credential[], escape: (value: string) => string = (v) => v): { text: string; applied: Credential[] } {
  let out = text;
  const applied: Credential[] = [];
  for (const e of entries) {
    if (e.mode !== "replace" || !out.includes(e.placeholder)) continue;
    out = out.split(e.placeholder).join(escape(e.secret));
    applied.push(e);
  }
  return { text: out, applied };
}

function decoded(target: string): string {
  if (!target.includes("%")) return target;
  try {
    return decodeURIComponent(target);
  } catch {
    return target;
  }
}

/** Whether a client header is the credential's under another spelling (`X_Api_Key` for X-Api-Key, as CGI-style servers read it). */
export function sameHeader(e: Credential, name: string): boolean {
  return e.mode === "header" && name.length === e.headerLower.length && name.toLowerCase().replaceAll("_", "-") === e.headerLower.replaceAll("_", "-");
}

/**
 * The response side: the real values of injected credentials must not reach the agent, even if
 * the origin echoes them (an echo endpoint, an error that quotes the request). Body bytes pass
 * through `push` with each occurrence of a value replaced by its placeholder; the last
 * `longest value - 1` bytes are held back until the next push (or `end`), so a value cut by a
 * read boundary is replaced whole. Memory: one read plus that tail.
 */
type Pair = readonly [value: Buffer, placeholder: Buffer];

export class EchoGuard {
  readonly #pairs: Pair[];
  readonly #hold: number;
  #tail: Buffer = Buffer.alloc(0);
  /** How many occurrences were replaced, for the record. */
  replaced = 0;

  constructor(pairs: readonly (readonly [value: string, placeholder: string])[]) {
    this.#pairs = pairs.map(([v, p]) => [Buffer.from(v, "utf8"), Buffer.from(p, "utf8")] as const);
    this.#hold = Math.max(0, ...this.#pairs.map(([v]) => v.length - 1));
  }

  /** `text` with every occurrence replaced (a header value, a whole event). */
  text(text: string): string {
    let out = text;
    for (const [v, p] of this.#pairs) {
      const value = v.toString("utf8");
      if (!out.includes(value)) continue;
      const parts = out.split(value);
      this.replaced += parts.length - 1;
      out = parts.join(p.toString("utf8"));
    }
    return out;
  }

  /** The bytes that may go to the agent now (`end`: the body is over, nothing is held back). */
  push(bytes: Uint8Array, end = false): Buffer {
    const buf = this.#tail.length === 0 ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.concat([this.#tail, bytes]);
    // Past `keep`, a value could still be completed by the next read: held back.
    const keep = end ? buf.length : Math.max(0, buf.length - this.#hold);
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      // The earliest occurrence of any value that starts before `keep`.
      let best = -1;
      let pair: Pair | null = null;
      for (const pv of this.#pairs) {
        const i = buf.indexOf(pv[0], at);
        if (i >= 0 && i < keep && (best < 0 || i < best)) {
          best = i;
          pair = pv;
        }
      }
      if (pair === null) break;
      parts.push(buf.subarray(at, best), pair[1]);
      at = best + pair[0].length;
      this.replaced++;
    }
    const cut = Math.max(at, keep);
    parts.push(buf.subarray(at, cut));
    // A copy: the tail must not pin the read buffer it came from.
    this.#tail = Buffer.from(buf.subarray(cut));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

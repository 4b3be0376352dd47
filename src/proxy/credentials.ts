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

export type CredentialOutcome = { readonly refuse: Reason } | { readonly inject: Credential } | null;

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

/**
 * What the request carries and what follows. The placeholder search is case-insensitive, on the
 * percent-decoded target and on header names and values: a best effort (bodies are not read,
 * and a placeholder split over two headers is not found), because a placeholder alone is worth
 * nothing; what it guards is the operator's view of an agent trying.
 */
export function judgeCredentials(a: HttpRequestAction, target: string, headers: readonly (readonly [string, string])[], entries: readonly Credential[]): CredentialOutcome {
  let hay = decoded(target);
  for (const [n, v] of headers) hay += `\n${n}:${v}`;
  hay = hay.toLowerCase();
  let carried: Credential[] | null = null;
  if (hay.includes(MARK)) {
    for (const e of entries) {
      if (!hay.includes(e.placeholder.toLowerCase())) continue;
      if (!covers(e, a.host, a.port)) {
        return { refuse: { rule: "cred.wrong-host", code: "credential_misuse", detail: `the placeholder of credential ${e.name} was sent to ${a.host}, which is not one of its hosts` } };
      }
      (carried ??= []).push(e);
    }
  }
  const entry = entries.find((e) => covers(e, a.host, a.port));
  if (!entry) return null;
  if (a.scheme === "http" && !entry.allowPlaintext) {
    if (carried?.includes(entry)) {
      return { refuse: { rule: "cred.plaintext", code: "credential_misuse", detail: `credential ${entry.name} is injected only inside intercepted TLS, and this request is plain HTTP` } };
    }
    return null;
  }
  return { inject: entry };
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
  return name.length === e.headerLower.length && name.toLowerCase().replaceAll("_", "-") === e.headerLower.replaceAll("_", "-");
}

/**
 * The response side: the real value of an injected credential must not reach the agent, even if
 * the origin echoes it (an echo endpoint, an error that quotes the request). Body bytes pass
 * through `push` with each occurrence of the value replaced by the placeholder; the last
 * `value.length - 1` bytes are held back until the next push (or `end`), so a value cut by a read
 * boundary is replaced whole. Memory: one read plus that tail.
 */
export class EchoGuard {
  readonly #value: Buffer;
  readonly #placeholder: Buffer;
  #tail: Buffer = Buffer.alloc(0);
  /** How many occurrences were replaced, for the record. */
  replaced = 0;

  constructor(value: string, placeholder: string) {
    this.#value = Buffer.from(value, "utf8");
    this.#placeholder = Buffer.from(placeholder, "utf8");
  }

  /** `text` with every occurrence replaced (a header value). */
  text(text: string): string {
    const value = this.#value.toString("utf8");
    if (!text.includes(value)) return text;
    this.replaced += text.split(value).length - 1;
    return text.split(value).join(this.#placeholder.toString("utf8"));
  }

  /** The bytes that may go to the agent now (`end`: the body is over, nothing is held back). */
  push(bytes: Uint8Array, end = false): Buffer {
    const buf = this.#tail.length === 0 ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.concat([this.#tail, bytes]);
    // Past `keep`, a value could still be completed by the next read: held back.
    const keep = end ? buf.length : Math.max(0, buf.length - (this.#value.length - 1));
    const parts: Buffer[] = [];
    let at = 0;
    for (let i = buf.indexOf(this.#value); i >= 0 && i < keep; i = buf.indexOf(this.#value, at)) {
      parts.push(buf.subarray(at, i), this.#placeholder);
      at = i + this.#value.length;
      this.replaced++;
    }
    const cut = Math.max(at, keep);
    parts.push(buf.subarray(at, cut));
    // A copy: the tail must not pin the read buffer it came from.
    this.#tail = Buffer.from(buf.subarray(cut));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

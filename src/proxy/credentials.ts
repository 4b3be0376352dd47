/**
 * Credential injection (issue 6), the request side: which entry's placeholders a request
 * carries in its target or headers, and what follows. A placeholder sent to a host that is not
 * one of its entry's is refused (`cred.wrong-host`: an attempt to launder the credential
 * through another host); one sent in plain HTTP to its own host is refused unless the entry
 * allows plaintext (`cred.plaintext`); otherwise a request to an entry's host gets the entry's
 * header, with the real value, in place of whatever the client sent under that name.
 */
import type { HttpRequestAction, Reason } from "../core/types.ts";
import type { Credential } from "../policy/policy.ts";

/** Every placeholder starts so: one cheap test before looking for any entry's. */
const MARK = "sluice-cred-";

export type CredentialOutcome = { readonly refuse: Reason } | { readonly inject: Credential } | null;

export function judgeCredentials(a: HttpRequestAction, target: string, headers: readonly (readonly [string, string])[], entries: readonly Credential[]): CredentialOutcome {
  let marked = target.includes(MARK);
  if (!marked) for (const [, v] of headers) if (v.includes(MARK)) (marked = true);
  let carried: Credential[] | null = null;
  if (marked) {
    for (const e of entries) {
      if (!target.includes(e.placeholder) && !headers.some(([, v]) => v.includes(e.placeholder))) continue;
      if (e.hosts.match(a.host, a.port) === null) {
        return { refuse: { rule: "cred.wrong-host", code: "credential_misuse", detail: `the placeholder of credential ${e.name} was sent to ${a.host}, which is not one of its hosts` } };
      }
      (carried ??= []).push(e);
    }
  }
  const entry = entries.find((e) => e.hosts.match(a.host, a.port) !== null);
  if (!entry) return null;
  if (a.scheme === "http" && !entry.allowPlaintext) {
    if (carried?.includes(entry)) {
      return { refuse: { rule: "cred.plaintext", code: "credential_misuse", detail: `credential ${entry.name} is injected only inside intercepted TLS, and this request is plain HTTP` } };
    }
    return null;
  }
  return { inject: entry };
}

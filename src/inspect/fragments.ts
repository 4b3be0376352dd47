/**
 * An HTTP request as Fragments (ARCHITECTURE.md: inspect turns an Action into Fragments; issue 4,
 * item 5): the URL, every header, the body by type, and the joins that catch split secrets. Text
 * is kept raw; the scanning engine owns decoding. Pure: no I/O, no clock.
 *
 * URL and headers take no fragment bound: the HTTP/1 parser has already bounded the request
 * head (431 past its size limit), and so the number of query parameters and headers.
 */
import type { Fragment, HeaderList, HttpRequestAction } from "../core/types.ts";
import { bodyFragments, formPairs, type BodyKind, type FragmentLimits } from "./body-fragments.ts";
import { joinedFragments } from "./split-fragments.ts";

export type { BodyKind, FragmentLimits } from "./body-fragments.ts";
export { bodyFragments, bodyKind } from "./body-fragments.ts";
export { joinedFragments } from "./split-fragments.ts";

/**
 * `url.host`, `url.path` and each non-empty segment as `url.path[<i>]` (i counts non-empty
 * segments), each query value as `url.query.<key>` and each key as `url.query-key`: a secret can
 * be sent as a key (`?ghp_...`) as well as a value.
 */
export function urlFragments(host: string, path: string, query: string): Fragment[] {
  const out: Fragment[] = [];
  const push = (location: string, text: string) => {
    if (text.length > 0) out.push({ location, text });
  };
  push("url.host", host);
  push("url.path", path);
  let i = 0;
  for (const segment of path.split("/")) {
    if (segment.length > 0) push(`url.path[${i++}]`, segment);
  }
  for (const [key, value] of formPairs(query)) {
    push("url.query-key", key);
    push(`url.query.${key}`, value);
  }
  return out;
}

/**
 * Headers that carry credentials by convention. A finding in one of them is expected traffic for
 * an allowed destination only if the value is the agent's own credential; the caller uses this
 * set to say so in a finding, never to skip a header (every header is scanned).
 * - authorization, proxy-authorization: RFC 9110 section 11.6.2 and 11.7.2 (Basic, Bearer, ...).
 * - cookie: session cookies (RFC 6265).
 * - x-api-key: Anthropic, AWS API Gateway and many others; api-key: Azure OpenAI;
 *   x-goog-api-key: Google AI / Gemini.
 * - x-auth-token, x-access-token: generic token headers (OpenStack Keystone, many in-house APIs).
 * - x-amz-security-token: AWS STS session tokens; x-vault-token: HashiCorp Vault;
 *   private-token: GitLab; dd-api-key, dd-application-key: Datadog; x-shopify-access-token:
 *   Shopify; x-sentry-auth: Sentry.
 * - x-csrf-token, x-xsrf-token: tied to a session, as good as the cookie for the same origin.
 */
export const SENSITIVE_HEADERS: ReadonlySet<string> = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "x-api-key",
  "api-key",
  "x-goog-api-key",
  "x-auth-token",
  "x-access-token",
  "x-amz-security-token",
  "x-vault-token",
  "private-token",
  "dd-api-key",
  "dd-application-key",
  "x-shopify-access-token",
  "x-sentry-auth",
  "x-csrf-token",
  "x-xsrf-token",
]);

/**
 * Headers that produce no fragment. proxy-authorization is sluice's own agent credential and is
 * stripped before forwarding, so it never leaves. content-length and transfer-encoding are framing
 * that the HTTP/1 parser validates (a number, a coding list), and connection only names
 * hop-by-hop fields, which are stripped (RFC 9110 section 7.6.1); none carries free text upstream.
 */
const SKIPPED_HEADERS = new Set(["proxy-authorization", "content-length", "transfer-encoding", "connection"]);

/** One `header.<lower-name>` fragment per header line, raw; each cookie also as `header.cookie.<name>`. */
export function headerFragments(headers: HeaderList): Fragment[] {
  const out: Fragment[] = [];
  for (const [rawName, value] of headers) {
    const name = rawName.toLowerCase();
    if (SKIPPED_HEADERS.has(name) || value.length === 0) continue;
    out.push({ location: `header.${name}`, text: value });
    if (name === "cookie") out.push(...cookieFragments(value));
  }
  return out;
}

/** `name=value` pairs separated by `;` (RFC 6265 section 4.2.1), values raw. */
function cookieFragments(value: string): Fragment[] {
  const out: Fragment[] = [];
  for (const pair of value.split(";")) {
    const eq = pair.indexOf("=");
    const name = (eq < 0 ? "" : pair.slice(0, eq)).trim();
    const text = (eq < 0 ? pair : pair.slice(eq + 1)).trim();
    if (text.length > 0) out.push({ location: `header.cookie.${name}`, text });
  }
  return out;
}

export interface RequestFragments {
  readonly fragments: Fragment[];
  /** Kind of the body, when there was one. */
  readonly kind?: BodyKind;
  /** From bodyFragments: the body is also present whole as `body.text`; the caller decides. */
  readonly error?: string;
}

/**
 * The dispatcher: every fragment of a request, then the joins over all of them. `body` is the
 * body after its Content-Encoding was undone (the caller owns decompression and its limits).
 */
export function requestFragments(action: HttpRequestAction, body?: Uint8Array, limits?: FragmentLimits): RequestFragments {
  const fragments = [...urlFragments(action.hostAsWritten ?? action.host, action.path, action.query), ...headerFragments(action.headers)];
  if (body === undefined || body.length === 0) return { fragments: [...fragments, ...joinedFragments(fragments, limits)] };
  const parsed = bodyFragments(contentTypeOf(action.headers), body, limits);
  fragments.push(...parsed.fragments);
  const all = [...fragments, ...joinedFragments(fragments, limits)];
  return parsed.error === undefined ? { fragments: all, kind: parsed.kind } : { fragments: all, kind: parsed.kind, error: parsed.error };
}

/**
 * The Content-Type, or undefined when absent or ambiguous: two different values are a parser
 * differential (which one does the origin use?), so the body is sniffed instead of trusted.
 */
export function contentTypeOf(headers: HeaderList): string | undefined {
  let found: string | undefined;
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== "content-type") continue;
    if (found !== undefined && found !== value) return undefined;
    found = value;
  }
  return found;
}

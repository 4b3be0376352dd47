/**
 * Shared types: the plain data that flows from listeners through inspect to the audit log.
 * Nothing here does I/O; see ARCHITECTURE.md "The one flow".
 */
import type { ReasonCode } from "./reasons.ts";

export type Verdict = "allow" | "block" | "redact" | "warn";

/** Why a stage decided what it did. `rule` is a stable kebab-case id such as `egress.deny-host`. */
export interface Reason {
  readonly rule: string;
  readonly code: ReasonCode;
  readonly detail: string;
}

export interface Decision {
  readonly verdict: Verdict;
  readonly reasons: readonly Reason[];
  /** True when `mode: audit` turned a block into a warn: the record says what would have happened. */
  readonly wouldBlock?: boolean;
  /** Content findings (DLP), each with its location and a redacted preview; never values. */
  readonly findings?: readonly Finding[];
}

/** Who is acting. `anonymous` when no agent entry matched; `invalid` when a presented proxy credential matched none. */
export interface AgentIdentity {
  readonly name: string;
  readonly via: "token" | "source" | "anonymous" | "invalid";
  /** What the agent is (config agents[].label, secrets cut out): in each of its records as `agent_label`. */
  readonly label?: string;
}

export interface Peer {
  readonly address: string;
  readonly port: number;
}

/** Header list in wire order; names are kept as received, compare lower-cased. */
export type HeaderList = readonly (readonly [name: string, value: string])[];

export interface HttpRequestAction {
  readonly kind: "http.request";
  readonly agent: AgentIdentity;
  readonly client: Peer;
  readonly method: string;
  readonly scheme: "http" | "https";
  /** Normalised host: lower case, no trailing dot, punycode, IPv6 without brackets. */
  readonly host: string;
  /** The host as the client spelled it, when it differs from `host` only in case (DLP reads it). */
  readonly hostAsWritten?: string;
  readonly port: number;
  /** Path without the query string. */
  readonly path: string;
  readonly query: string;
  readonly headers: HeaderList;
}

export interface ConnectAction {
  readonly kind: "connect";
  readonly agent: AgentIdentity;
  readonly client: Peer;
  readonly host: string;
  readonly port: number;
}

export type Action = HttpRequestAction | ConnectAction;

/**
 * A piece of an action's content and where it came from (ARCHITECTURE.md: inspect turns an
 * Action into Fragments). Locations are dotted paths: `url.host`, `url.path`, `url.query.<key>`,
 * `header.<name>` (lower-cased), `body.json.<path>`, `body.form.<field>`,
 * `body.multipart.<part>`, `body.ndjson[<line>].<path>`, `body.xml`, `body.text`, `dns.qname`;
 * a concatenation built to catch split secrets is `joined(<first location>..<last location>)`.
 */
export interface Fragment {
  readonly location: string;
  readonly text: string;
  /**
   * The sibling group, for split-secret joins (inspect/split-fragments.ts), when the extractor
   * knows it without parsing the location; null: joined with nothing. When absent, it is read
   * from the location.
   */
  readonly parent?: string | null;
}

/** One content finding: what matched and where, never the value. */
export interface Finding {
  /** Rule id, e.g. `dlp.github-token`. */
  readonly rule: string;
  /** The fragment location it was found in (see Fragment). */
  readonly location: string;
  /** First and last characters of the secret only (e.g. `ghp_…4f`). */
  readonly preview: string;
  /** Decoders that revealed it, outermost first; empty when it was there as written. */
  readonly via: readonly string[];
}

/** Classification of one IP address (see net/classify). */
export interface AddressClass {
  /** e.g. "public", "loopback", "private", "link-local", "metadata", "cgnat", ... */
  readonly kind: string;
  /** True when the default policy refuses to dial it. */
  readonly blocked: boolean;
  /** Human-readable: which range matched, and through which embedding (mapped, NAT64, 6to4, Teredo). */
  readonly detail: string;
}

/** Name resolution as the proxy sees it. The DNS issue replaces the system implementation. */
export interface Resolver {
  /** Resolves a host name to IP literals (v4 and v6). Throws `OperationalError("dns_failure")`. */
  resolve(host: string): Promise<string[]>;
}

/** One canonical record per request, tunnel or message (ARCHITECTURE.md, "Decisions out"). */
export interface AuditRecord {
  readonly time: string;
  readonly kind: "http" | "connect" | "dns" | "config" | "lifecycle" | "mcp";
  readonly agent: string;
  readonly agent_label?: string;
  readonly client?: string;
  /** HTTP method, or the query type for DNS records (A, AAAA, TXT, ...). */
  readonly method?: string;
  readonly host?: string;
  readonly port?: number;
  /** Path without query: queries carry secrets too often to log. */
  readonly path?: string;
  readonly verdict: Verdict;
  readonly rule: string;
  readonly reason: ReasonCode;
  readonly detail?: string;
  readonly would_block?: boolean;
  readonly status?: number;
  readonly upstream?: string;
  readonly bytes_in?: number;
  readonly bytes_out?: number;
  readonly duration_ms?: number;
  /** A tunnel's content: false when spliced unread (tls.intercept off, or a tls.passthrough host), true when intercepted. */
  readonly inspected?: boolean;
  /** Content findings: rule, location, redacted preview, decoders. Never the value. */
  readonly findings?: readonly Finding[];
  /** MCP: the server (its command, or --name), who sent the message, and the tool it concerns. */
  readonly server?: string;
  readonly direction?: "client" | "server";
  readonly tool?: string;
  /** The decision's receipt id (audit/receipt-id.ts): what the agent was told, and what it can ask a receipt for. */
  readonly receipt?: string;
}

export interface AuditSink {
  record(record: AuditRecord): void;
  close?(): Promise<void> | void;
}

/** A monotonic and a wall clock, passed in so pure modules never read time themselves. */
export interface Clock {
  /** Monotonic milliseconds, for durations. */
  now(): number;
  wall(): Date;
  /** Wall-clock milliseconds since the epoch (Date.now()), without allocating a Date. */
  epochMs(): number;
}

/**
 * The config file's shape (YAML, `version: 1`). Every object is strict: an unknown key is an
 * error with its path. A section a later version adds is rejected by name until it exists
 * (RESERVED_SECTIONS; none now), so a policy never silently does less
 * than its author wrote.
 */
import { z } from "zod";
import { parseIpLiteral } from "../net/ip.ts";
import { parseDuration, parseListen, parsePortRange, parseSize } from "./units.ts";

const duration = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === null) {
      ctx.addIssue({ code: "custom", message: `not a duration: ${JSON.stringify(v)} (use e.g. 500ms, 10s, 5m, 1h; at most 24 days)` });
      return z.NEVER;
    }
    return ms;
  });

const size = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === null) {
      ctx.addIssue({ code: "custom", message: `not a size: ${JSON.stringify(v)} (use e.g. 65536, 64KiB, 1MiB)` });
      return z.NEVER;
    }
    return bytes;
  });

/** The longest agents[].label accepted (sluice jail's command line included). */
export const LABEL_INPUT_MAX = 64 * 1024;
/** Characters of an agent's label (or of sluice run --label) kept in records, after redaction. */
export const LABEL_MAX = 500;

const listen = z.string().transform((v, ctx) => {
  const l = parseListen(v);
  if (!l) {
    ctx.addIssue({ code: "custom", message: `not a listen address: ${JSON.stringify(v)} (use ip:port, [v6]:port)` });
    return z.NEVER;
  }
  // An IP, not a name: what we bind is what the self-address guard compares against.
  if (!parseIpLiteral(l.hostname)) {
    ctx.addIssue({ code: "custom", message: `listen host must be an IP address, not ${JSON.stringify(l.hostname)} (e.g. 127.0.0.1:8888)` });
    return z.NEVER;
  }
  return { hostname: parseIpLiteral(l.hostname)!.text, port: l.port };
});

const portRange = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const r = parsePortRange(v);
  if (!r) {
    ctx.addIssue({ code: "custom", message: `not a port or range: ${JSON.stringify(v)} (use 443 or "8000-8999")` });
    return z.NEVER;
  }
  return r;
});

const dlpAction = z.enum(["block", "redact", "warn"]);

const hostList = z.array(z.string().min(1)).default([]);

/** RFC 5424 facilities by their syslog.conf names (audit/export.ts maps them to codes). */
export const SYSLOG_FACILITIES = ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"] as const;

/** A syslog collector: `127.0.0.1:514`, `[::1]:514`. An IP: sluice resolves no name outside its own policy. */
const collector = z.string().transform((v, ctx) => {
  const l = parseListen(v);
  const ip = l ? parseIpLiteral(l.hostname) : null;
  if (!l || !ip || l.port === 0) {
    ctx.addIssue({ code: "custom", message: `not a collector address: ${JSON.stringify(v)} (use ip:port or [v6]:port, e.g. 127.0.0.1:514)` });
    return z.NEVER;
  }
  return { hostname: ip.text, port: l.port };
});

/** An upstream DNS server: `1.1.1.1`, `1.1.1.1:53`, `[2606:4700::1111]:53`. */
const dnsUpstream = z.string().transform((v, ctx) => {
  const withPort = parseListen(v);
  const hostname = withPort ? withPort.hostname : v.trim();
  const ip = parseIpLiteral(hostname);
  if (!ip || (withPort && withPort.port === 0)) {
    ctx.addIssue({ code: "custom", message: `not a DNS server address: ${JSON.stringify(v)} (use an IP, ip:port or [v6]:port)` });
    return z.NEVER;
  }
  return { hostname: ip.text, port: withPort ? withPort.port : 53 };
});

const egressLists = z.strictObject({
  // An empty agent allow list is ambiguous (nothing? everything?): omit the key instead.
  allow: z.array(z.string().min(1)).min(1, "must not be empty: omit it to use the global allow list").optional(),
  deny: z.array(z.string().min(1)).optional(),
});

export const configSchema = z.strictObject({
  version: z.literal(1, { error: "must be 1 (the only config version)" }),
  mode: z.enum(["enforce", "audit"]).default("enforce"),
  proxy: z
    .strictObject({
      listen: listen.default({ hostname: "127.0.0.1", port: 8888 }),
      /**
       * Where nftables-redirected connections arrive (sluice jail, host mode): each is read for its
       * TLS server name or HTTP Host, bound to sluice's DNS, and handled like a CONNECT. Unset: none.
       */
      transparent_listen: listen.optional(),
      max_header_bytes: size.default(64 * 1024),
      header_timeout: duration.default(10_000),
      idle_timeout: duration.default(60_000),
      connect_timeout: duration.default(10_000),
      upstream_timeout: duration.default(60_000),
      tunnel_max_duration: duration.default(3_600_000),
      upstream_idle_timeout: duration.default(30_000),
      max_idle_upstream_per_host: z.number().int().min(0).max(1024).default(32),
      max_connections: z.number().int().min(1).max(1_000_000).default(4096),
      // Unset: required as soon as any agent has a token, so a token-limited agent cannot
      // shed its own allow list by dropping the credential.
      require_agent: z.boolean().optional(),
      websocket: z
        .strictObject({
          // false: an upgrade to WebSocket is refused (403), not passed on unread.
          enabled: z.boolean().default(true),
          // A message is read whole before it is judged: one larger is refused (close 1009).
          max_message: size.default(1024 * 1024).refine((n) => n >= 1024 && n <= 64 * 1024 * 1024, "must be between 1KiB and 64MiB"),
          // All connections' incomplete messages together; the one that would pass it is closed (1009).
          max_held_total: size.default(64 * 1024 * 1024),
        })
        .prefault({}),
    })
    .prefault({}),
  admin: z
    .strictObject({
      listen: listen.default({ hostname: "127.0.0.1", port: 8889 }),
      token_file: z.string().min(1).optional(),
    })
    .prefault({}),
  dns: z
    .strictObject({
      /** Where sluice answers DNS (UDP and TCP); "off" runs no server (the proxy still resolves). */
      listen: z.union([z.literal("off"), listen]).default({ hostname: "127.0.0.1", port: 5353 }),
      /** Default: the nameservers of /etc/resolv.conf (read at load). */
      upstreams: z.array(dnsUpstream).min(1).optional(),
      timeout: duration.default(2000),
      attempts: z.number().int().min(1).max(5).default(2),
      min_ttl: duration.default(0),
      max_ttl: duration.default(3_600_000),
      /** Cap on how long NXDOMAIN / NODATA answers are cached (RFC 2308 section 5). */
      negative_ttl: duration.default(300_000),
      cache_size: z.number().int().min(0).max(1_000_000).default(10_000),
      /** false: AAAA, SVCB and HTTPS questions get NODATA, so clients fall back to IPv4 cleanly. */
      ipv6: z.boolean().default(true),
      /** Names allowed to resolve to private addresses (host patterns), e.g. `*.corp.internal`. */
      internal_domains: hostList,
      exfil: z
        .strictObject({
          enabled: z.boolean().default(true),
          max_name_length: z.number().int().min(16).max(253).optional(),
          subdomains_per_minute: z.number().int().min(1).max(100_000).optional(),
          /** Names (and their subdomains) never judged as exfiltration, e.g. a trusted CDN. */
          allow_domains: z.array(z.string().min(1)).default([]),
        })
        .prefault({}),
    })
    .prefault({}),
  egress: z
    .strictObject({
      allow: hostList,
      deny: hostList,
      ports: z
        .strictObject({
          http: z.array(portRange).default([[80, 80]]),
          connect: z.array(portRange).default([[443, 443]]),
        })
        .prefault({}),
      trusted_cidrs: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  agents: z
    .array(
      z
        .strictObject({
          name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "1-64 characters: letters, digits, . _ -"),
          /** What the agent is, in each of its records (`agent_label`): secrets cut out, then cut to LABEL_MAX characters. */
          label: z
            .string()
            .min(1)
            .max(LABEL_INPUT_MAX)
            .regex(/^[^\x00-\x1f\x7f]*$/, "no control characters")
            .optional(),
          token_sha256: z
            .string()
            .regex(/^[0-9a-f]{64}$/, "64 lower-case hex digits (sha256 of the token)")
            .optional(),
          token_file: z.string().min(1).optional(),
          source_cidrs: z.array(z.string().min(1)).default([]),
          egress: egressLists.optional(),
        })
        .refine((a) => !(a.token_sha256 && a.token_file), { message: "give token_sha256 or token_file, not both" })
        .refine((a) => a.token_sha256 || a.token_file || a.source_cidrs.length > 0, {
          message: "an agent needs token_sha256, token_file or source_cidrs to be identified",
        }),
    )
    .default([]),
  dlp: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** What a finding does unless `actions` says otherwise. */
      action: dlpAction.default("block"),
      /** Per rule id (`dlp.card-number`) or family (`dlp.github-*`); the longest key wins. */
      actions: z.record(z.string().regex(/^dlp\.[a-z0-9.-]*\*?$/, "a rule id (dlp.card-number) or a family ending in * (dlp.github-*)"), dlpAction).default({}),
      /** Rule ids not run at all. */
      disable: z.array(z.string().regex(/^dlp\.[a-z0-9.-]+$/, "a rule id such as dlp.us-ssn")).default([]),
      known_secrets: z
        .strictObject({
          /** Names of environment variables whose values are secrets, e.g. OPENAI_API_KEY. */
          env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name")).default([]),
          /** Files whose content (trailing newline removed) is a secret. */
          files: z.array(z.string().min(1)).default([]),
          min_length: z.number().int().min(4).max(4096).default(8),
        })
        .prefault({}),
      custom_rules: z
        .array(
          z.strictObject({
            id: z.string().min(1),
            description: z.string().min(1).optional(),
            severity: z.enum(["low", "medium", "high", "critical"]).optional(),
            pattern: z.string().min(1),
            keywords: z.array(z.string().min(1)).optional(),
            entropy: z.number().positive().max(8).optional(),
            allow: z.array(z.string().min(1)).optional(),
            case_insensitive: z.boolean().optional(),
          }),
        )
        .default([]),
      body: z
        .strictObject({
          /** Bodies up to this size are held, parsed by type and scanned before anything is sent (and can be redacted). */
          max_buffer: size.default(1024 * 1024),
          /** Larger bodies stream through, scanned chunk by chunk; this much is held back so a secret across chunks is seen whole. */
          overlap: size.default(4096),
          /** All bodies held at once, over every connection; past it, bodies stream instead of waiting in memory. */
          max_held_total: size.default(64 * 1024 * 1024),
          /** Compressed bodies (Content-Encoding gzip, deflate, br) decompress to at most this much... */
          max_decompressed: size.default(16 * 1024 * 1024),
          /** ...and at most this many times their compressed size: past either, the request is refused. */
          max_ratio: z.number().int().min(2).max(10_000).default(100),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Prompt injection in responses (issue 5). */
  injection: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** What a response whose score reaches `threshold` gets: blocked (403), stripped of the offending text, or recorded only. */
      action: z.enum(["block", "strip", "warn"]).default("block"),
      /** Sum of the weights of the rules a response matches (each once) at which `action` applies. */
      threshold: z.number().int().min(1).max(1000).default(50),
      /** Rule ids not run at all. */
      disable: z.array(z.string().regex(/^inj\.[a-z0-9.-]+$/, "a rule id such as inj.urgency")).default([]),
      /** Hosts whose responses are not scanned (sites that discuss prompt injection); each use is recorded. */
      exempt_hosts: z.array(z.string().min(1)).default([]),
      /** Responses up to this size are held and scanned before the agent gets any of them. */
      max_buffer: size.default(4 * 1024 * 1024),
      /** A scannable response larger than max_buffer: refused (block, the default), scanned window by window as it streams (stream), or passed on unscanned and recorded (pass). */
      oversize: z.enum(["block", "stream", "pass"]).default("block"),
    })
    .prefault({}),
  /** TLS interception (issue 6): the certificate authority so far. */
  tls: z
    .strictObject({
      /**
       * A persistent CA (PEM certificate, PKCS#8 EC P-256 key readable by its owner only) instead
       * of the one sluice generates on every start; paths relative to the config file.
       */
      ca: z.strictObject({ cert_file: z.string().min(1), key_file: z.string().min(1) }).optional(),
      /**
       * Terminate TLS in CONNECT tunnels to allowed hosts with a leaf from the CA, so that the
       * requests and responses inside go through the same inspection as plain HTTP. Off until
       * the agents trust the CA (sluice ca export).
       */
      intercept: z.boolean().default(false),
      /** PEM files of CAs trusted for upstream TLS besides the system roots (a private origin's); relative to the config file. */
      extra_ca_files: z.array(z.string().min(1)).default([]),
      /**
       * Host patterns (as in egress.allow) whose tunnels are not decrypted: clients that pin
       * certificates, mutual TLS. The ClientHello's server name is still checked; the records
       * say inspected: false.
       */
      passthrough: z.array(z.string().min(1)).default([]),
      /**
       * Plain HTTP sent into an intercepted CONNECT tunnel (ws:// and http:// clients that always
       * tunnel): `block` refuses it as not TLS; `inspect` reads it as plain requests to the
       * CONNECT host, inspected like any other (credentials follow the plaintext rules).
       */
      plaintext_tunnels: z.enum(["block", "inspect"]).default("block"),
    })
    .prefault({}),
  /**
   * Credential injection (issue 6): the agent holds a placeholder; sluice sets the header with
   * the real value on intercepted requests to the entry's hosts. Values come from the
   * environment or a file, never from the config text.
   */
  credentials: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, "lowercase letters, digits, - and _ (at most 40)"),
        /** Host patterns, as in egress.allow. */
        hosts: z.array(z.string().min(1)).min(1),
        source: z.union([z.strictObject({ env: z.string().min(1) }), z.strictObject({ file: z.string().min(1) })]),
        /** The header sluice sets; `{secret}` in the value is replaced by the real value. */
        header: z
          .strictObject({
            name: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "an HTTP header name"),
            value: z.string().refine((v) => v.includes("{secret}"), "must contain {secret}").refine((v) => !/[\r\n]/.test(v), "must be one line"),
          })
          .optional(),
        /** Instead of a header: the placeholder is replaced by the value wherever the request carries it (URL, header values, held body). */
        replace: z.literal(true).optional(),
        /** What the agent is given instead of the value; by default sluice-cred-<name>-<random>, new each start. */
        placeholder: z.string().regex(/^sluice-cred-[A-Za-z0-9_-]{8,100}$/, "sluice-cred- and 8 to 100 letters, digits, - or _").optional(),
        /** Inject over plain HTTP too (off: only inside intercepted TLS). */
        allow_plaintext: z.boolean().default(false),
        /** The agent's own header of that name: dropped and replaced (drop), or the request refused (reject) unless it holds the placeholder. */
        client_header: z.enum(["drop", "reject"]).default("drop"),
      })
      .refine((e) => (e.header === undefined) !== (e.replace === undefined), "give either header or replace: true (where the value goes), not both")
      .refine((e) => e.header !== undefined || e.client_header === "drop", "client_header applies to header entries only"),
    )
    .default([]),
  /** MCP (sluice mcp proxy): tool pinning against rug pulls, and the stdio transport's limits. */
  mcp: z
    .strictObject({
      /** A server's tools seen for the first time: pinned as they are (trust), or withheld until approved. */
      first_contact: z.enum(["trust", "require-approval"]).default("trust"),
      /** The SQLite file of pinned tool sets; relative to the config file. Default SLUICE_HOME/mcp-baselines.sqlite. */
      baselines_file: z.string().min(1).optional(),
      /** The longest message (one line) either side may send; a longer one ends the session. */
      max_line: size.default(4 * 1024 * 1024).refine((n) => n >= 1024 && n <= 256 * 1024 * 1024, "must be between 1KiB and 256MiB"),
      /** How long a request of the client waits for the server's answer (either transport); then -32001 and a cancellation to the server. */
      answer_timeout: duration.default(300_000).refine((ms) => ms >= 100, "must be at least 100ms"),
      /** Environment variables passed to the server besides the built-in allow-list. */
      env_allow: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name")).default([]),
      /** The MCP servers agents may reach over HTTP: their hosts (patterns as in egress.allow). */
      servers: z
        .array(
          z.strictObject({
            /** The server's name: --name of sluice mcp proxy (else its command line), or any name for an HTTP server. */
            name: z.string().min(1),
            /** Where it is reached over HTTP (patterns as in egress.allow): MCP to these hosts is not shadow MCP. */
            hosts: z.array(z.string().min(1)).min(1).optional(),
            /** Tool names (`*` matches any run of characters) it may offer; others are withheld and their calls refused. */
            allow_tools: z.array(z.string().min(1)).min(1).optional(),
            /** Tool names withheld and refused, whatever allow_tools says. */
            deny_tools: z.array(z.string().min(1)).default([]),
            /** Credentials (by name) whose placeholders the client may send this server; any other placeholder in a message to it is refused. */
            credentials: z.array(z.string().min(1)).default([]),
          }),
        )
        .default([]),
      /** MCP JSON-RPC sent over HTTP to a host no mcp.servers entry names (shadow MCP): block, warn (record), or off. */
      // Unset: block, when DLP holds bodies to read it in (dlp.enabled), else off.
      shadow: z.enum(["block", "warn", "off"]).optional(),
      /** tools/call arguments against rules/mcp-args (destructive commands, reverse shells, ...), after shell de-obfuscation. */
      arguments: z.enum(["block", "warn", "off"]).default("block"),
    })
    .prefault({}),
  audit: z
    .strictObject({
      /**
       * A plain copy of each record's line for log pipelines: a file path (appended), "stderr",
       * or "off". Unsigned; the signed log in `dir` is the source of truth.
       */
      file: z.string().min(1).default("stderr"),
      /** The signed, hash-chained log (README "Flight recorder"). Unset: SLUICE_HOME/audit. Relative to the config file. */
      dir: z.string().min(1).optional(),
      /** A segment is closed (with a signed tree head) and a new one started past this size. */
      segment_size: size.default(64 * 1024 * 1024).refine((n) => n >= 4096, "must be at least 4KiB"),
      /** A segment is also closed (with a signed tree head) once its first record is this old; 0 turns it off. */
      segment_max_age: duration.default(24 * 3600 * 1000).refine((ms) => ms === 0 || ms >= 1000, "must be at least 1s (or 0: by size only)"),
      /** A signed tree head after this many records, or this long after the last one if records came since; whichever is first. */
      checkpoint_every: z
        .strictObject({
          records: z.number().int().min(1).max(10_000_000).default(10_000),
          interval: duration.default(10_000).refine((ms) => ms >= 100, "must be at least 100ms"),
        })
        .prefault({}),
      /** Ed25519 private key (PKCS#8 PEM, mode 0600) that signs tree heads. Unset: SLUICE_HOME/audit-signing-key.pem, made on first start. Relative to the config file. */
      signing_key_file: z.string().min(1).optional(),
      /** always: each record is on disk before it is acknowledged; interval: synced every ~100 ms (at most that much lost on a power cut). */
      fsync: z.enum(["always", "interval"]).default("interval"),
      /** When the log cannot be written: block refuses new requests until it can (fail closed); continue serves on, degraded. */
      on_failure: z.enum(["block", "continue"]).default("block"),
      /** Copies of each record for a log pipeline, best effort (README "Flight recorder", Export); the signed log stays the source of truth. */
      export: z
        .strictObject({
          /** RFC 5424 over UDP (one datagram per record) or TCP (RFC 6587 octet counting), to a collector. */
          syslog: z
            .strictObject({
              address: collector,
              protocol: z.enum(["udp", "tcp"]).default("udp"),
              facility: z.enum(SYSLOG_FACILITIES).default("local0"),
              app_name: z.string().regex(/^[!-~]{1,48}$/, "1 to 48 printable ASCII characters, no spaces (RFC 5424 APP-NAME)").default("sluice"),
            })
            .optional(),
          /** otlp: one OTLP/JSON ExportLogsServiceRequest per record on stdout (for a cluster's log collector). */
          stdout: z.enum(["otlp", "off"]).default("off"),
        })
        .prefault({}),
    })
    .prefault({}),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;

/** Sections ARCHITECTURE.md reserves for capabilities this version does not have yet. */
export const RESERVED_SECTIONS: readonly string[] = [];

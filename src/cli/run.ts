/**
 * `sluice run`: the composition of proxy, resolver, admin API and audit sink. One of the two
 * places (with main.ts) that knows every module.
 */
import { parseArgs } from "node:util";
import { createMetrics } from "../admin/metrics.ts";
import { createAdminApp } from "../admin/app.ts";
import { createRecentDecisions } from "../admin/recent.ts";
import { startAdminServer, type AdminServer } from "../admin/server.ts";
import { loadOrCreateAdminToken } from "../admin/token.ts";
import { RecorderStartError, startRecorderThread, type ThreadRecorder } from "../audit/recorder-thread.ts";
import { loadSigningKey, SigningKeyError } from "../audit/signing-key.ts";
import { loadConfig, type Loaded } from "../config/load.ts";
import { clipText, redactSecrets } from "../scan/dlp.ts";
import { LABEL_MAX } from "../config/schema.ts";
import { watchConfigFile } from "../config/watch.ts";
import { ConfigError } from "../core/errors.ts";
import { createReceiptIds } from "../audit/receipt-id.ts";
import { createReceiptLookup, type ReceiptAnswer } from "../audit/receipt-lookup.ts";
import type { AuditRecord, AuditSink, Clock } from "../core/types.ts";
import { createDnsAnswerer, type NameScanner } from "../dns/answer.ts";
import { loadHostsTable, type HostsTable } from "../dns/hosts.ts";
import { createDnsResolver } from "../dns/resolver.ts";
import { startDnsServer, type DnsServer } from "../dns/server.ts";
import { createUpstreamClient } from "../dns/upstream.ts";
import { createLogger, type Logger, type LogLevel } from "./logger.ts";
import { createAddressPolicy, type AddressPolicy } from "../net/address-policy.ts";
import { createGuardedDialer } from "../proxy/dialer.ts";
import { createDnsExfilDetector } from "../scan/dns-exfil.ts";
import type { Policy } from "../policy/policy.ts";
import { startForwardProxy, type ForwardProxy } from "../proxy/forward.ts";
import { CaError, createCa, loadCa, type CertificateAuthority } from "../proxy/tls-ca.ts";
import { dirname, resolve } from "node:path";
import { auditPaths } from "./audit.ts";
import { writeCaFiles } from "./ca.ts";
import { withPins } from "./mcp.ts";
import { BENCH_AUDIT_OFF, BUILD } from "./build-info.ts";
import { configPath, sluiceHome } from "./paths.ts";
import { EXIT, UsageError } from "./usage.ts";
import { REFUSALS, watchJailRefusals } from "../jail/counters.ts";

export const HELP = `Usage: sluice run [--config FILE] [--overlay FILE] [--label TEXT] [--jail ID] [--log-format json|text] [--log-level LEVEL]

Starts the forward proxy (proxy.listen, default 127.0.0.1:8888) and the admin API
(admin.listen, default 127.0.0.1:8889). Without --config or SLUICE_CONFIG, runs the embedded
default policy (print it with \`sluice init\`).

Reloads the config on SIGHUP, when the file changes, and on POST /v1/reload; an invalid
config is rejected and the running policy stays. SIGTERM / SIGINT stop gracefully.

Writes the certificate of its TLS interception CA to SLUICE_HOME/ca.pem (and ca-bundle.pem, the
system roots plus it); \`sluice ca export --env\` points trust stores at them. A new CA on every
start unless tls.ca names a persistent one.

Decision records go to the signed log in audit.dir (default SLUICE_HOME/audit, signing key
SLUICE_HOME/audit-signing-key.pem, made on first start); \`sluice audit verify\` checks it.
audit.file (default stderr) gets an unsigned copy of each line. While the log cannot be
written, audit.on_failure: block (default) refuses all traffic with 503 and /healthz says
failing; continue serves on and /healthz says degraded.

--overlay FILE: a JSON object merged over the config before it is checked (mappings key by key,
anything else replaced); kept on reloads. \`sluice jail\` uses it for its listeners and agent.
--label TEXT: says what this sluice is for in its start and stop records (secrets in it cut out).
With --jail and no --label, the jail's agent's label (\`sluice jail\`: the jail and its command).
--jail ID: this sluice serves jail ID (\`sluice jail\` passes it): what the jail's nftables rules
refuse (UDP, DNS over TLS, other packets) is read from their counters and recorded.

Environment: SLUICE_CONFIG (config file), SLUICE_HOME (state: admin token, CA certificate,
audit log and its signing key).`;

/** bench:audit's reference binary only (build-info.ts BENCH_AUDIT_OFF): records go nowhere. */
const NO_RECORDER: ThreadRecorder = { record() {}, recordLine() {}, checkpoint: async () => {}, failure: () => null, close: async () => {}, opened: { resumedAt: 0, segment: "", repaired: null } };

const clock: Clock = { now: () => performance.now(), wall: () => new Date(), epochMs: () => Date.now() };

export async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: "string", short: "c" },
      "log-format": { type: "string" },
      "log-level": { type: "string" },
      overlay: { type: "string" },
      label: { type: "string" },
      jail: { type: "string" },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`run takes no arguments (got ${positionals[0]})`);
  const format = values["log-format"] ?? (process.stderr.isTTY ? "text" : "json");
  if (format !== "json" && format !== "text") throw new UsageError("--log-format must be json or text");
  const level = values["log-level"] ?? process.env.SLUICE_LOG_LEVEL ?? "info";
  if (!["debug", "info", "warn", "error"].includes(level)) throw new UsageError("--log-level must be debug, info, warn or error");
  const log = createLogger({ format, level: level as LogLevel });

  const path = configPath(values.config);
  let overlay: Record<string, unknown> | undefined;
  if (values.overlay !== undefined) {
    try {
      const o: unknown = JSON.parse(await Bun.file(values.overlay).text());
      if (o === null || typeof o !== "object" || Array.isArray(o)) throw new Error("not a JSON object");
      overlay = o as Record<string, unknown>;
    } catch (err) {
      log.error("invalid --overlay", { file: values.overlay, error: err instanceof Error ? err.message : String(err) });
      return EXIT.failure;
    }
  }
  let loaded: Loaded;
  try {
    loaded = await loadConfig(path, overlay);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.error("invalid config", { errors: err.issues.map((i) => `${i.path || "(root)"}: ${i.message}`) });
    return EXIT.failure;
  }
  if (values.jail !== undefined && !/^[a-z0-9]{1,24}$/.test(values.jail)) throw new UsageError("--jail takes a jail id (sluice jail passes it)");
  // Into the start and stop records: a secret in it is cut out of the whole of it, and only then
  // is it shortened. A jail's label is its agent's (the overlay's, redacted at load): the command
  // line is never on sluice's own command line, where any local user could read it.
  const spelled = values.label?.replace(/[\x00-\x1f\x7f]/g, " ");
  const label =
    spelled === undefined
      ? values.jail !== undefined
        ? loaded.policy.agents.labelOf(`jail-${values.jail}`)
        : undefined
      : clipText(loaded.policy.dlp ? redactSecrets(spelled, loaded.policy.dlp.engine, "label") : spelled, LABEL_MAX);
  return serve(loaded, log, overlay, label, values.jail);
}

/** How long a jail's sluice waits for the address it is to listen on (sluice jail makes it meanwhile). */
const JAIL_ADDRESS_WAIT_MS = 5000;

/**
 * Waits until `hostname` is an address of this host (a throwaway listener binds), or `ms` have
 * passed; the listeners then report any other problem as usual.
 */
async function untilAssignable(hostname: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      Bun.listen({ hostname, port: 0, socket: { data() {} } }).stop(true);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EADDRNOTAVAIL" || performance.now() > deadline) return;
    }
    await Bun.sleep(2);
  }
}

async function serve(initial: Loaded, log: Logger, overlay?: Record<string, unknown>, label?: string, jailId?: string): Promise<number> {
  const home = sluiceHome();
  let loaded = initial;
  let killswitch = false;

  const metrics = createMetrics();
  const recent = createRecentDecisions(1000);
  let auditErrors = 0;
  // Logged once per 1000 failures: a full disk must not also flood the log.
  const onAuditError = (error: string) => {
    if (auditErrors++ % 1000 === 0)
      log.error("cannot write decision records; keeping them in memory", {
        error,
        failures: auditErrors,
        on_failure: loaded.config.audit.on_failure === "block" ? "block: new requests are refused until the log can be written" : "continue: serving without a durable log",
      });
  };
  // The signed flight recorder is the source of truth, sealed and written on a thread of its
  // own (recorder-thread.ts), which also writes audit.file's plain copy of each line. Its thread
  // opens the log while this one makes the CA; nothing listens before it is open.
  let recorder: ThreadRecorder = NO_RECORDER;
  let receipt: ((id: string) => Promise<ReceiptAnswer>) | undefined;
  const openAuditLog = async () => {
    const paths = auditPaths(loaded, home);
    const key = loadSigningKey({ home, ...(paths.keyFile !== undefined ? { file: paths.keyFile } : {}), create: true });
    const a = loaded.config.audit;
    const thread = await startRecorderThread({
      options: { dir: paths.dir, segmentBytes: a.segment_size, ...(a.segment_max_age > 0 ? { segmentMs: a.segment_max_age } : {}), checkpointRecords: a.checkpoint_every.records, checkpointMs: a.checkpoint_every.interval, fsync: a.fsync },
      keyFile: key.path,
      copy: a.file,
      exports: {
        stdout: a.export.stdout,
        ...(a.export.syslog ? { syslog: { host: a.export.syslog.address.hostname, port: a.export.syslog.address.port, protocol: a.export.syslog.protocol, facility: a.export.syslog.facility, appName: a.export.syslog.app_name } } : {}),
      },
      onError: onAuditError,
    });
    return { thread, paths, key };
  };
  const openingLog = BENCH_AUDIT_OFF ? null : openAuditLog();
  // Awaited below; a failure is reported there, not as an unhandled rejection meanwhile.
  openingLog?.catch(() => {});
  // Each record is serialised once, here: the line goes to the recorder's thread and the recent
  // ring (unsealed: /v1/decisions shows records as made), the object to the metrics.
  // One receipt id per mediated decision: the proxy puts it in its responses; DNS and MCP
  // records get theirs here.
  const receiptIds = createReceiptIds();
  const audit: AuditSink = {
    record(r) {
      const line = JSON.stringify(r.receipt === undefined && (r.kind === "dns" || r.kind === "mcp") ? { ...r, receipt: receiptIds() } : r);
      recorder.recordLine(line);
      recent.push(line);
      metrics.observe(r);
    },
    close: () => recorder.close(),
  };
  // audit.on_failure: block refuses every new request while the log cannot be written (fail
  // closed); continue only reports it. The setting is read at start, like the rest of audit.
  const onFailure = loaded.config.audit.on_failure;
  const auditFailure = (): string | null => {
    if (onFailure !== "block") return null;
    const f = recorder.failure();
    return f === null ? null : f.error;
  };
  const auditHealth = () => {
    const f = recorder.failure();
    if (f === null) return { audit: { status: "ok" } };
    // failing: requests are refused; degraded: served, but records may be lost.
    return { status: onFailure === "block" ? "failing" : "degraded", audit: { status: "failing", on_failure: onFailure, error: f.error, since: f.since } };
  };
  const event = (detail: string, rule: string, extra: Partial<AuditRecord> = {}) =>
    audit.record({ time: clock.wall().toISOString(), kind: "config", agent: "sluice", verdict: "allow", rule, reason: "allowed", detail, ...extra });

  let addresses: AddressPolicy = createAddressPolicy({ trustedCidrs: loaded.policy.trustedCidrs, selfListeners: [] });
  // One resolver for the DNS server and the proxy's dialer (pinned dialing).
  const hostsFile = process.env.SLUICE_HOSTS_FILE ?? "/etc/hosts";
  let hosts: HostsTable = loadHostsTable(hostsFile);
  // The detector keeps per-domain budgets, so there is one per config load.
  const makeScanner = (p: Policy): NameScanner | null => {
    const e = p.dns.exfil;
    // DLP over query names: a name can carry a token as written or encoded (dns.qname). A
    // finding set to redact blocks here: a name cannot be redacted; warn-only findings pass.
    const dlp = p.dlp;
    const dlpScan = dlp
      ? (text: string) => {
          const hit = dlp.engine.scan([{ location: "dns.qname", text }]).find((h) => h.action !== "warn");
          return hit ? { rule: hit.finding.rule, detail: `${hit.finding.rule}: ${hit.finding.preview}${hit.finding.via.length > 0 ? ` (via ${hit.finding.via.join(" > ")})` : ""}` } : null;
        }
      : null;
    if (!e.enabled) {
      // Exfiltration heuristics off, DLP on: names are still read for secrets, with and without dots.
      if (!dlpScan) return null;
      return (name) => dlpScan(name) ?? (name.includes(".") ? dlpScan(name.replaceAll(".", "")) : null);
    }
    const extraScanners = dlpScan ? [dlpScan] : [];
    const detector = createDnsExfilDetector({
      extraScanners,
      allowDomains: [...e.allowDomains],
      ...(e.maxNameLength !== undefined ? { maxNameLength: e.maxNameLength } : {}),
      ...(e.subdomainsPerMinute !== undefined ? { subdomainsPerMinute: e.subdomainsPerMinute } : {}),
    });
    return (name, now, type) => detector.check(name, now, type);
  };
  let scanName = makeScanner(loaded.policy);
  const resolver = createDnsResolver({ settings: () => loaded.policy.dns, upstream: createUpstreamClient(), hosts: () => hosts, now: clock.now });
  const dialer = createGuardedDialer({
    resolver,
    addresses: () => addresses,
    connectTimeoutMs: () => loaded.policy.proxy.connectTimeoutMs,
  });

  let proxy: ForwardProxy;
  let admin: AdminServer;
  // Files the config names are relative to it (the embedded default: to the working directory).
  const configDir = loaded.path === null ? process.cwd() : dirname(loaded.path);
  const token = await loadOrCreateAdminToken({ home, ...(loaded.config.admin.token_file ? { tokenFile: resolve(configDir, loaded.config.admin.token_file) } : {}) });
  // The TLS interception CA: loaded (tls.ca) or made now, its key in memory only; its
  // certificate goes to SLUICE_HOME for the agents' trust stores.
  let ca: CertificateAuthority;
  try {
    const spec = loaded.config.tls.ca;
    ca = spec ? await loadCa(resolve(configDir, spec.cert_file), resolve(configDir, spec.key_file), clock.epochMs) : await createCa(clock.epochMs);
    const files = await writeCaFiles(home, ca.certPem);
    log.info("TLS interception CA ready", { subject: ca.subject, sha256: ca.fingerprint, persistent: spec !== undefined, ca_file: files.caFile, bundle: files.bundleFile });
  } catch (err) {
    log.error("cannot set up the TLS interception CA", { error: err instanceof CaError ? err.message : String(err) });
    // The log was being opened meanwhile: let it finish (a repair is not cut short) and close it.
    const opened = await openingLog?.catch(() => null);
    await opened?.thread.close();
    return EXIT.failure;
  }
  // `sluice jail` starts this sluice while it makes the jail's veth, whose address it listens on.
  if (jailId !== undefined) await untilAssignable(loaded.config.proxy.listen.hostname, JAIL_ADDRESS_WAIT_MS);
  if (openingLog) {
    try {
      const { thread, paths, key } = await openingLog;
      recorder = thread;
      receipt = createReceiptLookup({ dir: paths.dir, checkpoint: (trigger) => recorder.checkpoint(trigger) });
      log.info("audit log ready", { dir: paths.dir, segment: thread.opened.segment, seq: thread.opened.resumedAt, key_id: key.keyId, key_file: key.path, ...(key.created ? { key_created: true } : {}), ...(thread.opened.repaired ? { repaired: thread.opened.repaired } : {}) });
    } catch (err) {
      if (!(err instanceof RecorderStartError || err instanceof SigningKeyError)) throw err;
      log.error("cannot open the audit log", { error: err.message });
      return EXIT.failure;
    }
  }
  try {
    proxy = startForwardProxy({ policy: () => loaded.policy, killswitch: () => killswitch, auditFailure, dialer, audit, log, clock, ca, receiptIds, resolveName: (host) => resolver.resolve(host) });
  } catch (err) {
    log.error("cannot listen for the proxy", { listen: loaded.config.proxy.listen, error: String(err) });
    return EXIT.failure;
  }

  let dns: DnsServer | null = null;
  const selfListeners = () => [
    { address: proxy.hostname, port: proxy.port },
    ...(proxy.transparentPort !== null ? [{ address: loaded.policy.proxy.transparentListen!.hostname, port: proxy.transparentPort }] : []),
    { address: admin.hostname, port: admin.port },
    ...(dns ? [{ address: dns.hostname, port: dns.port }] : []),
  ];

  let reloading: Promise<{ ok: boolean; errors: string[] }> | null = null;
  const reload = (trigger: string): Promise<{ ok: boolean; errors: string[] }> => {
    // One reload at a time; a burst of triggers shares the running one.
    reloading ??= (async () => {
      try {
        const next = await loadConfig(loaded.path, overlay);
        const nextAddresses = createAddressPolicy({ trustedCidrs: next.policy.trustedCidrs, selfListeners: selfListeners() });
        for (const section of ["proxy", "admin"] as const) {
          const a = loaded.config[section].listen;
          const b = next.config[section].listen;
          if (a.hostname !== b.hostname || a.port !== b.port) log.warn(`${section}.listen changed: takes effect after a restart`);
        }
        if (JSON.stringify(next.config.audit) !== JSON.stringify(loaded.config.audit)) log.warn("audit changed: takes effect after a restart");
        if (JSON.stringify(next.config.tls.ca) !== JSON.stringify(loaded.config.tls.ca)) log.warn("tls.ca changed: takes effect after a restart");
        if (JSON.stringify(next.config.dns.listen) !== JSON.stringify(loaded.config.dns.listen)) log.warn("dns.listen changed: takes effect after a restart");
        loaded = next;
        addresses = nextAddresses;
        Bun.gc(true);
        proxy.clearPool();
        hosts = loadHostsTable(hostsFile);
        resolver.clear();
        scanName = makeScanner(next.policy);
        metrics.countReload(true);
        log.info("config reloaded", { trigger, digest: next.policy.digest, mode: next.policy.mode });
        event(`config reloaded (${trigger}), digest ${next.policy.digest}`, "config.reload");
        return { ok: true, errors: [] };
      } catch (err) {
        const errors =
          err instanceof ConfigError ? err.issues.map((i) => `${i.path || "(root)"}: ${i.message}`) : [String(err)];
        metrics.countReload(false);
        log.error("config reload rejected; the running policy stays", { trigger, errors });
        event(`config reload rejected (${trigger})`, "config.reload-rejected", { verdict: "block", reason: "internal_error" });
        return { ok: false, errors };
      } finally {
        reloading = null;
      }
    })();
    return reloading;
  };

  const app = createAdminApp({
    token: token.token,
    caPem: () => ca.certPem,
    credentials: () =>
      loaded.policy.credentials.map((c) => ({ name: c.name, hosts: c.hostPatterns, header: c.mode === "header" ? c.headerName : null, placeholder: c.placeholder, allow_plaintext: c.allowPlaintext })),
    // Opened per call: `sluice mcp proxy` processes write the same file (SQLite, WAL).
    mcpPins: {
      list: (server) => withPins(loaded, (p) => p.list(server)),
      diff: (server) => withPins(loaded, (p) => p.diff(server)),
      approve: (server, tool, digest) => withPins(loaded, (p) => p.approve(server, tool, digest)),
    },
    metrics,
    recent,
    ...(receipt ? { receipt } : {}),
    reload: () => reload("api"),
    killswitch: {
      get: () => killswitch,
      set(on, by) {
        killswitch = on;
        // New requests see the flag; tunnels and idle upstream connections opened before it
        // must not outlive it.
        const cut = on ? proxy.cutOff({ rule: "admin.killswitch", code: "killswitch", detail: `kill switch turned on by ${by}` }) : 0;
        if (on) proxy.clearPool();
        log.warn(`kill switch ${on ? "ON: all egress refused" : "off"}`, { by, ...(on ? { cut_off: cut } : {}) });
        event(`kill switch ${on ? "on" : "off"} by ${by}`, "admin.killswitch", { verdict: on ? "block" : "allow", reason: on ? "killswitch" : "allowed" });
      },
    },
    health: () => ({
      version: BUILD.version,
      // Where it listens (sluice jail --attach reads this).
      listeners: {
        proxy: `${proxy.hostname}:${proxy.port}`,
        ...(proxy.transparentPort !== null ? { transparent: `${loaded.policy.proxy.transparentListen!.hostname}:${proxy.transparentPort}` } : {}),
        ...(dns ? { dns: `${dns.hostname}:${dns.port}` } : {}),
      },
      mode: loaded.policy.mode,
      policy: loaded.policy.digest,
      killswitch,
      ...proxy.stats(),
      ...auditHealth(),
    }),
    onError: (err) => log.error("admin API error", { error: String(err) }),
  });
  try {
    admin = startAdminServer({ hostname: loaded.config.admin.listen.hostname, port: loaded.config.admin.listen.port, app });
  } catch (err) {
    await proxy.stop();
    log.error("cannot listen for the admin API", { listen: loaded.config.admin.listen, error: String(err) });
    return EXIT.failure;
  }
  const dnsListen = loaded.policy.dns.listen;
  if (dnsListen) {
    const answer = createDnsAnswerer({
      policy: () => loaded.policy,
      addresses: () => addresses,
      killswitch: () => killswitch,
      auditFailure,
      resolver,
      scanName: () => scanName,
      audit,
      log,
      clock,
    });
    try {
      dns = await startDnsServer({ hostname: dnsListen.hostname, port: dnsListen.port, answer, log });
    } catch (err) {
      await proxy.stop();
      await admin.stop();
      log.error("cannot listen for DNS", { listen: dnsListen, error: String(err) });
      return EXIT.failure;
    }
  }
  addresses = createAddressPolicy({ trustedCidrs: loaded.policy.trustedCidrs, selfListeners: selfListeners() });
  metrics.registerGauge("sluice_open_tunnels", "CONNECT tunnels open now", () => proxy.stats().tunnels);
  metrics.registerGauge("sluice_open_connections", "Client connections open now", () => proxy.stats().connections);
  metrics.registerGauge("sluice_dns_queries", "DNS questions answered (server and dialer), since start", () => resolver.stats().queries);
  metrics.registerGauge("sluice_dns_cache_hits", "DNS questions answered from the cache, since start", () => resolver.stats().cacheHits);
  metrics.registerGauge("sluice_dns_upstream_failures", "Upstream DNS exchanges that failed, since start", () => resolver.stats().upstreamFailures);
  metrics.registerGauge("sluice_dns_upstream_latency_seconds", "Mean upstream DNS round trip", () => {
    const st = resolver.stats();
    return st.upstreamQueries > 0 ? st.upstreamMs / st.upstreamQueries / 1000 : 0;
  });
  metrics.registerGauge("sluice_killswitch", "1 while the kill switch refuses all egress", () => (killswitch ? 1 : 0));

  const watcher = loaded.path ? watchConfigFile(loaded.path, () => void reload("file")) : null;
  process.on("SIGHUP", () => void reload("sighup"));

  // Handlers go in before the ready line: a signal that arrives between the two would
  // otherwise meet the default disposition and kill the process mid-write.
  let refusals: { stop(): Promise<void> } | null = null;
  let lastCounterError: string | null = null;
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      // Ctrl-C reaches the whole process group and a supervisor may add a SIGTERM: stop once.
      if (stopping) return;
      stopping = true;
      log.info("stopping", { signal });
      watcher?.close();
      await proxy.stop();
      await admin.stop();
      dns?.stop();
      resolver.close();
      await refusals?.stop();
      event(`stopped on ${signal}${label ? ` (${label})` : ""}`, "lifecycle.stop", { kind: "lifecycle" });
      await audit.close?.();
      resolve(EXIT.ok);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
  });

  log.info("sluice ready", {
    version: BUILD.version,
    commit: BUILD.commit,
    proxy: `${proxy.hostname}:${proxy.port}`,
    ...(proxy.transparentPort !== null ? { transparent: `${loaded.policy.proxy.transparentListen!.hostname}:${proxy.transparentPort}` } : {}),
    admin: `${admin.hostname}:${admin.port}`,
    ...(dns ? { dns: `${dns.hostname}:${dns.port}` } : {}),
    config: loaded.path ?? "embedded default",
    mode: loaded.policy.mode,
    admin_auth_file: token.path,
  });
  event(`started sluice ${BUILD.version}${label ? ` (${label})` : ""}`, "lifecycle.start", { kind: "lifecycle" });
  // Compiling the rule packs (thousands of lexicon phrases, YAML parsed) leaves tens of MB of
  // garbage: collected now, once listening, rather than whenever the collector gets to it.
  setTimeout(() => Bun.gc(true), 0);
  // A jail's own sluice: what the jail's nftables rules refused never reaches it as traffic;
  // their counters are read and each increase recorded as a refusal of the jail's agent.
  refusals =
    jailId === undefined
      ? null
      : watchJailRefusals({
          id: jailId,
          everyMs: 2000,
          onRefused: (refusal, packets) => {
            const { rule, what } = REFUSALS[refusal];
            const reason = refusal === "refused_udp" || refusal === "refused_dot" ? "port_not_allowed" : "blocked_address";
            const agentLabel = loaded.policy.agents.labelOf(`jail-${jailId}`);
            audit.record({ time: clock.wall().toISOString(), kind: "connect", agent: `jail-${jailId}`, ...(agentLabel !== undefined ? { agent_label: agentLabel } : {}), verdict: "block", rule, reason, detail: `${packets} ${what}`, receipt: receiptIds() });
          },
          // Said when it changes, not every 2 s while it lasts.
          onError: (error) => {
            if (error === lastCounterError) return;
            lastCounterError = error;
            log.warn("cannot read the jail's nftables counters", { jail: jailId, error });
          },
        });

  return stopped;
}

/**
 * The policy sluice runs with in the cluster: the operator's (or the embedded default), with what
 * the cluster needs set over it, validated by the schema `sluice check-config` uses (the CLI
 * compiles it too, as `sluice run` would). What the generator sets: listeners on
 * the pod's address, no DNS server (agents resolve only sluice's own Service name, through
 * cluster DNS), files from the mounted Secrets, the signed log on the pod's volume and its
 * records on stdout for the cluster's log pipeline, and one agent per workload. Everything else
 * is the operator's, comments included.
 */
import { isMap, isSeq, parseDocument, Scalar, YAMLSeq, type Document } from "yaml";
import { ConfigError } from "../../core/errors.ts";
import { parseConfigText } from "../../config/parse.ts";
import type { Config } from "../../config/schema.ts";
import { ADMIN_PORT, PATHS, PROXY_PORT } from "./layout.ts";
import { SidecarError } from "./manifests.ts";

export interface ClusterPolicy {
  readonly text: string;
  readonly config: Config;
}

const HEADER = "sluice init sidecar: the policy of sluice's pods in the cluster.";

/** The keys this generator owns, with their values; the rest of the policy is the operator's. */
function settings(): [path: string[], value: unknown][] {
  return [
    [["proxy", "listen"], `0.0.0.0:${PROXY_PORT}`],
    [["admin", "listen"], `0.0.0.0:${ADMIN_PORT}`],
    [["admin", "token_file"], PATHS.adminToken],
    [["dns", "listen"], quoted("off")],
    [["audit", "dir"], PATHS.auditDir],
    // The records go to stdout as OTLP for the log pipeline; a second plain copy on stderr would
    // only double what it collects (and a file path would be on the read-only root).
    [["audit", "file"], quoted("off")],
    [["audit", "signing_key_file"], PATHS.auditKey],
    [["audit", "export", "stdout"], "otlp"],
  ];
}

/**
 * `text` (from `source`) made into the cluster's policy, with one agent per name in `agents`.
 * The result is what is validated, under the operator's key paths: an agent listed by a
 * workload's name with no token of its own (just its egress lists) is complete once the
 * generator has set its token_file.
 */
export function clusterPolicy(text: string, source: string, agents: readonly string[]): ClusterPolicy {
  const what = `policy ${source}`;
  const own = withoutHeader(text);
  const doc = parseDocument(own);
  // Not YAML, or not a mapping: parse's own message says where.
  if (doc.errors.length > 0 || !isMap(doc.contents)) validate(own, what);
  const intercept = doc.getIn(["tls", "intercept"]) === true;
  // Every client in the cluster is a workload with a token: one that dropped it must not shed its
  // own allow list for the policy's global one.
  if (doc.getIn(["proxy", "require_agent"]) === false) throw new SidecarError(`${what}: proxy.require_agent: false: in the cluster every agent has a token, and one that sends none must be refused, not given the global allow list; remove the setting`);
  try {
    for (const [path, value] of settings()) doc.setIn(path, value);
    if (intercept) doc.setIn(["tls", "ca"], doc.createNode({ cert_file: `${PATHS.caDir}/tls.crt`, key_file: `${PATHS.caDir}/tls.key` }));
  } catch (e) {
    // A section that is not a mapping (`proxy: 5`): the schema names it.
    validate(own, what);
    throw e;
  }
  setAgents(doc, agents);
  const header = headerLines(intercept, agents);
  doc.commentBefore = doc.commentBefore ? `${header}\n\n${doc.commentBefore}` : header;
  const out = doc.toString({ flowCollectionPadding: false });
  return { text: out, config: validate(out, what) };
}

function headerLines(intercept: boolean, agents: readonly string[]): string {
  return [
    ` ${HEADER}`,
    " It sets proxy.listen, admin.listen and admin.token_file, dns.listen, audit.dir, audit.file,",
    ` audit.signing_key_file, audit.export.stdout${intercept ? ", tls.ca" : ""} and the agents' token_file (${agents.join(", ")}).`,
  ].join("\n");
}

/** A run on a policy this generator wrote starts from the operator's text again. */
function withoutHeader(text: string): string {
  if (!text.startsWith(`# ${HEADER}\n`)) return text;
  const lines = text.split("\n").slice(headerLines(false, []).split("\n").length);
  return (lines[0] === "" || lines[0] === "#" ? lines.slice(1) : lines).join("\n");
}

const agentFile = (agent: string) => `${PATHS.agentTokens}/${agent}`;

/**
 * One entry per workload agent, token from its key of the mounted Secret. An entry the operator
 * already has under that name (say, with its own egress.allow) is kept, its token taken from the
 * Secret instead.
 */
function setAgents(doc: Document, agents: readonly string[]): void {
  let list = doc.get("agents");
  if (list === undefined || list === null) {
    list = new YAMLSeq();
    doc.set("agents", list);
  }
  if (!isSeq(list)) return; // not a list: the validation that follows says so
  // An agent of a workload an earlier run had and this one has not (its token file is one the
  // generator names): gone, so its token can neither linger valid nor keep sluice from starting.
  const ours = new Set(agents);
  list.items = list.items.filter((item) => {
    if (!isMap(item)) return true;
    const file = item.get("token_file");
    return !(typeof file === "string" && file.startsWith(`${PATHS.agentTokens}/`) && !ours.has(String(item.get("name"))));
  });
  for (const agent of agents) {
    const existing = list.items.find((item) => isMap(item) && item.get("name") === agent);
    if (isMap(existing)) {
      existing.delete("token_sha256");
      existing.set("token_file", agentFile(agent));
    } else {
      list.items.push(doc.createNode({ name: agent, token_file: agentFile(agent) }));
    }
  }
}

function validate(text: string, what: string): Config {
  try {
    return parseConfigText(text, what);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new SidecarError(`${what} is not valid:\n${e.issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`).join("\n")}`);
  }
}

/** "off" in quotes: YAML 1.1 readers would take a bare off for false. */
function quoted(value: string): Scalar {
  const s = new Scalar(value);
  s.type = Scalar.QUOTE_DOUBLE;
  return s;
}

/**
 * Settings of the policy that need something the sluice pod does not get from this generator (an
 * environment variable, a file), each as `key: value`: the operator adds them with a patch.
 */
export function podDependencies(config: Config): string[] {
  const out: string[] = [];
  config.credentials.forEach((c, i) => out.push("env" in c.source ? `credentials.${i}.source.env: ${c.source.env}` : `credentials.${i}.source.file: ${c.source.file}`));
  config.dlp.known_secrets.env.forEach((e, i) => out.push(`dlp.known_secrets.env.${i}: ${e}`));
  config.dlp.known_secrets.files.forEach((f, i) => out.push(`dlp.known_secrets.files.${i}: ${f}`));
  config.tls.extra_ca_files.forEach((f, i) => out.push(`tls.extra_ca_files.${i}: ${f}`));
  // Agents that are not workloads of this run keep the token files the operator gave them.
  config.agents.forEach((a, i) => {
    if (a.token_file !== undefined && !a.token_file.startsWith(`${PATHS.agentTokens}/`)) out.push(`agents.${i}.token_file: ${a.token_file}`);
  });
  if (config.mcp.baselines_file !== undefined) out.push(`mcp.baselines_file: ${config.mcp.baselines_file}`);
  if (config.tls.ca !== undefined && !config.tls.ca.key_file.startsWith(`${PATHS.caDir}/`)) out.push(`tls.ca.key_file: ${config.tls.ca.key_file}`);
  return out;
}

/**
 * `sluice init sidecar`: reads the workloads, the policy and the CA certificate, runs the
 * generator (src/deploy/k8s), checks the resulting policy as `sluice check-config` would, and
 * writes the output. Everything is built in memory first, so an error writes nothing; a
 * directory is written under a temporary name and renamed into place whole.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, chmodSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { rootCertificates } from "node:tls";
import { parseArgs } from "node:util";
import { compilePolicy } from "../config/compile.ts";
import { builtinArgRules, builtinInjectionRules, builtinRules, DEFAULT_CONFIG_TEXT } from "../config/load.ts";
import { ConfigError } from "../core/errors.ts";
import { emitKustomize, emitYaml } from "../deploy/k8s/emit.ts";
import { emitHelm } from "../deploy/k8s/helm.ts";
import { SidecarError } from "../deploy/k8s/manifests.ts";
import { generateSidecar, type Sidecar } from "../deploy/k8s/sidecar.ts";
import { BUILD } from "./build-info.ts";
import { EXIT, UsageError } from "./usage.ts";

export const SIDECAR_USAGE = `sluice init sidecar --inject-spec FILE [--emit yaml|kustomize|helm] [-o PATH]
         [--image IMAGE] [--namespace NS] [--config POLICY.yaml] [--ca-cert FILE]
         [--no-proxy-cluster [--api-server-cidr CIDR]...] [--cluster-cidr CIDR]...
         [--service-cidr CIDR]... [--allow-cidr CIDR]... [--cluster-domain DOMAIN]`;

export const SIDECAR_HELP = `sluice init sidecar writes the Kubernetes objects that make sluice the only way out of the
workloads in FILE (Deployment, StatefulSet, DaemonSet, Job, CronJob; several documents; - reads
stdin): sluice's Deployment (2 replicas), Service, PodDisruptionBudget and policy ConfigMap; the
workloads with HTTP_PROXY and HTTPS_PROXY pointing at sluice, each with its own agent token; and
NetworkPolicies that let the agents reach only sluice and cluster DNS, and sluice only the
internet. Secrets are referenced, never written: the output's first lines say which to create.
Run again on its own --emit yaml output, it writes the same bytes.

  --emit yaml        one YAML stream, to stdout or -o FILE (default)
  --emit kustomize   a kustomization, in the new directory -o DIR (kubectl apply -k DIR)
  --emit helm        a Helm chart, in the new directory -o DIR
  --config FILE      the policy (default: the embedded one), checked as check-config checks it
  --namespace NS     sluice's and the agents' namespace (default: the workloads', else default)
  --image IMAGE      sluice's image (default: sluice:${BUILD.version})
  --ca-cert FILE     with tls.intercept: the CA's certificate, as the agents' sluice-ca ConfigMap
  --no-proxy-cluster NO_PROXY for the cluster's Services; the agents may then reach every pod
  --api-server-cidr  with --no-proxy-cluster: where the API server is, for the agents to reach it
  --cluster-cidr, --service-cidr   ranges sluice may not reach (default: RFC 1918, CGNAT and
                     IPv6 unique-local; link-local always)
  --allow-cidr CIDR  a range sluice may reach all the same (as egress.trusted_cidrs are)
  --cluster-domain   the cluster's DNS domain (default cluster.local)`;

const EMITS = ["yaml", "kustomize", "helm"] as const;

export async function initSidecarCommand(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      "inject-spec": { type: "string" },
      emit: { type: "string", default: "yaml" },
      output: { type: "string", short: "o" },
      image: { type: "string", default: `sluice:${BUILD.version}` },
      namespace: { type: "string" },
      config: { type: "string" },
      "ca-cert": { type: "string" },
      "no-proxy-cluster": { type: "boolean", default: false },
      "api-server-cidr": { type: "string", multiple: true, default: [] },
      "cluster-cidr": { type: "string", multiple: true, default: [] },
      "service-cidr": { type: "string", multiple: true, default: [] },
      "allow-cidr": { type: "string", multiple: true, default: [] },
      "cluster-domain": { type: "string", default: "cluster.local" },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const spec = values["inject-spec"];
  if (spec === undefined) throw new UsageError("init sidecar needs --inject-spec FILE (the workloads' manifest)");
  const emit = values.emit as (typeof EMITS)[number];
  if (!EMITS.includes(emit)) throw new UsageError(`--emit ${values.emit}: one of ${EMITS.join(", ")}`);
  if (emit !== "yaml" && values.output === undefined) throw new UsageError(`--emit ${emit} writes a directory: give -o DIR`);

  let sidecar: Sidecar;
  try {
    const caFile = values["ca-cert"];
    sidecar = generateSidecar({
      specFile: spec === "-" ? "stdin" : spec,
      specText: spec === "-" ? await Bun.stdin.text() : read(spec),
      policySource: values.config ?? "embedded default",
      policyText: values.config === undefined ? DEFAULT_CONFIG_TEXT : read(values.config),
      ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
      image: values.image,
      clusterDomain: values["cluster-domain"],
      ...(caFile !== undefined ? { caCert: { source: caFile, pem: read(caFile) } } : {}),
      systemRoots: rootCertificates,
      network: { clusterCidrs: values["cluster-cidr"], serviceCidrs: values["service-cidr"], allowCidrs: values["allow-cidr"], noProxyCluster: values["no-proxy-cluster"], apiServerCidrs: values["api-server-cidr"] },
      version: BUILD.version,
    });
    await checkCompiles(sidecar, values.config ?? "embedded default");
  } catch (e) {
    if (!(e instanceof SidecarError)) throw e;
    err(`sluice init sidecar: ${e.message}\n`);
    return EXIT.failure;
  }
  for (const w of sidecar.warnings) err(`sluice init sidecar: warning: ${w}\n`);

  if (emit === "yaml") {
    const text = emitYaml(sidecar);
    if (values.output === undefined) out(text);
    else writeFileAtomically(values.output, text);
    return EXIT.ok;
  }
  const dir = resolve(values.output!);
  const files = emit === "kustomize" ? emitKustomize(sidecar) : emitHelm(sidecar);
  writeDirectory(dir, files);
  out(`wrote ${dir} (${files.size} files); create the Secrets its ${emit === "kustomize" ? "kustomization.yaml" : "values.yaml"} names, then: ${emit === "kustomize" ? `kubectl apply -k ${dir}` : `helm install sluice ${dir} -n ${sidecar.namespace}`}\n`);
  return EXIT.ok;
}

function read(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new SidecarError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/**
 * The policy compiled as `sluice run` compiles it (host patterns, CIDRs, rules), without what
 * only the pod has: the agents' token files (their digests) and its resolv.conf (a stand-in
 * nameserver; the pod's is cluster DNS).
 */
async function checkCompiles(s: Sidecar, source: string): Promise<void> {
  try {
    compilePolicy(s.policy.config, {
      agentTokenDigests: new Map(),
      digest: s.policySha256,
      systemNameservers: [{ hostname: "10.96.0.10", port: 53 }],
      builtinRules: await builtinRules(),
      injectionRules: await builtinInjectionRules(),
      argRules: await builtinArgRules(),
    });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new SidecarError(`policy ${source} is not valid:\n${e.issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`).join("\n")}`);
  }
}

function writeFileAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** `files` as the new directory `dir` (which may exist only empty), all or nothing. */
function writeDirectory(dir: string, files: ReadonlyMap<string, string>): void {
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new UsageError(`-o ${dir} exists and is not an empty directory: sluice writes a new one (remove it first, or choose another)`);
  }
  let tmp: string | undefined;
  try {
    tmp = mkdtempSync(join(dirname(dir), `.${basename(dir)}.tmp-`));
    for (const [path, text] of files) {
      mkdirSync(dirname(join(tmp, path)), { recursive: true });
      writeFileSync(join(tmp, path), text, { mode: 0o644 });
    }
    chmodSync(tmp, 0o755);
    if (existsSync(dir)) rmdirSync(dir);
    renameSync(tmp, dir);
  } catch (e) {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
    throw new Error(`cannot write ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

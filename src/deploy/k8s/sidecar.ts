/**
 * `sluice init sidecar`, the generator: the agents' workloads and a policy in, sluice's objects,
 * the patched workloads and the NetworkPolicies out. Pure: the caller reads the files and writes
 * the result (emit.ts turns it into YAML, a kustomization or a Helm chart).
 *
 * Everything goes into one namespace. sluice's own objects found in the input (a run over an
 * earlier output) are left out and made again, and workloads patched before are patched the same
 * way again, so a run over its own output writes the same bytes.
 */
import { createHash } from "node:crypto";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IEnvVar } from "kubernetes-models/v1/EnvVar";
import type { IService } from "kubernetes-models/v1/Service";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { caBundle, readCaCertificate } from "./ca.ts";
import { AGENT_CA_DIR, CA_BUNDLE, CA_CONFIGMAP, CA_PEM, MANAGED_BY, PROXY_PORT, SECRETS, SLUICE } from "./layout.ts";
import { describe, isRecord, parseManifests, SidecarError, type Manifest } from "./manifests.ts";
import { agentNetworkPolicy, checkNetworkOptions, sluiceEgress, sluiceNetworkPolicy, type NetworkOptions } from "./network-policies.ts";
import { clusterPolicy, podDependencies, type ClusterPolicy } from "./policy.ts";
import { caConfigMap, deployment, podDisruptionBudget, policyConfigMap, service } from "./sluice-objects.ts";
import { agentNames, injectWorkload, readWorkload, WORKLOAD_KINDS, type Injection, type PatchedWorkload, type Workload } from "./workloads.ts";

export interface SidecarInput {
  /** The workloads' manifest: its name (for messages) and text. */
  readonly specFile: string;
  readonly specText: string;
  readonly policySource: string;
  readonly policyText: string;
  /** Default: the workloads' namespace, else `default`. */
  readonly namespace?: string;
  readonly image: string;
  /** The cluster's DNS domain (kubelet --cluster-domain), for sluice's Service name. */
  readonly clusterDomain: string;
  /** --ca-cert: the interception CA's certificate, emitted as the agents' ConfigMap. */
  readonly caCert?: { readonly source: string; readonly pem: string };
  /** The roots ca-bundle.pem starts with (node:tls rootCertificates in the CLI). */
  readonly systemRoots: readonly string[];
  readonly network: NetworkOptions;
  /** sluice's version, for the chart and the notes. */
  readonly version: string;
}

export interface Sidecar {
  readonly namespace: string;
  readonly version: string;
  readonly image: string;
  readonly policy: ClusterPolicy;
  readonly policySha256: string;
  /** Policy and CA ConfigMaps, Service, Deployment, PodDisruptionBudget, in this order. */
  readonly sluiceObjects: readonly (IConfigMap | IService | IDeployment | IPodDisruptionBudget)[];
  /** sluice's own, then one per agent workload. */
  readonly networkPolicies: readonly INetworkPolicy[];
  readonly workloads: readonly PatchedWorkload[];
  /** tls.intercept without --ca-cert: the agents' pods wait for a sluice-ca ConfigMap made by hand. */
  readonly caConfigMapMissing: boolean;
  /** Things the operator must know that do not stop the run. */
  readonly warnings: readonly string[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function generateSidecar(input: SidecarInput): Sidecar {
  const file = input.specFile;
  if (!/^\S+$/.test(input.image)) throw new SidecarError(`--image ${JSON.stringify(input.image)}: not an image reference`);
  if (!DOMAIN.test(input.clusterDomain)) throw new SidecarError(`--cluster-domain ${input.clusterDomain}: not a DNS domain`);
  if (input.network.apiServerCidrs.length > 0 && !input.network.noProxyCluster) throw new SidecarError("--api-server-cidr is for --no-proxy-cluster (the agents then reach the API server directly)");
  checkNetworkOptions(input.network);

  const workloads = readWorkloads(parseManifests(input.specText, file), file);
  const namespace = chooseNamespace(workloads, input.namespace, file);
  const agents = agentNames(workloads, file);
  const policy = clusterPolicy(input.policyText, input.policySource, agents);
  const intercept = policy.config.tls.intercept;
  if (input.caCert && !intercept) throw new SidecarError(`--ca-cert ${input.caCert.source}: the policy does not intercept TLS (tls.intercept is not true), so the agents need no CA`);
  const caPem = input.caCert ? readCaCertificate(input.caCert.pem, input.caCert.source) : undefined;

  const patched = workloads.map((w, i) => injectWorkload(w, agents[i]!, agentInjection(agents[i]!, namespace, input, intercept), namespace, file));
  const policySha256 = createHash("sha256").update(policy.text).digest("hex");
  const sluiceObjects = [
    policyConfigMap(namespace, policy.text),
    ...(caPem !== undefined ? [caConfigMap(namespace, caPem, caBundle(caPem, input.systemRoots))] : []),
    service(namespace),
    deployment(namespace, { image: input.image, policySha256, intercept }),
    podDisruptionBudget(namespace),
  ];
  const networkPolicies = [
    sluiceNetworkPolicy(
      namespace,
      workloads.map((w) => w.podSelector),
      sluiceEgress(policy.config, input.network),
    ),
    ...workloads.map((w, i) => agentNetworkPolicy(namespace, agents[i]!, w.podSelector, input.network)),
  ];
  return {
    namespace,
    version: input.version,
    image: input.image,
    policy,
    policySha256,
    sluiceObjects,
    networkPolicies,
    workloads: patched,
    caConfigMapMissing: intercept && caPem === undefined,
    warnings: warnings(policy, input.network),
  };
}

/** The workloads of the stream, in order; sluice's own objects dropped, anything else refused. */
function readWorkloads(manifests: readonly Manifest[], file: string): Workload[] {
  const out: Workload[] = [];
  const seen = new Map<string, number>();
  for (const m of manifests) {
    const labels = isRecord(m.object.metadata) ? m.object.metadata.labels : undefined;
    if (isRecord(labels) && labels[MANAGED_BY[0]] === MANAGED_BY[1]) continue;
    if (!WORKLOAD_KINDS.includes(m.kind)) {
      throw new SidecarError(`${describe(file, m)}: kind ${m.kind} is not supported: sluice init sidecar patches ${WORKLOAD_KINDS.join(", ")}; apply other objects from a file of their own`);
    }
    const key = `${m.kind}/${m.namespace ?? ""}/${m.name}`;
    const first = seen.get(key);
    if (first !== undefined) throw new SidecarError(`${describe(file, m)}: the same ${m.kind} as document ${first}`);
    seen.set(key, m.index);
    out.push(readWorkload(m, file));
  }
  if (out.length === 0) throw new SidecarError(`${file}: no workload in it (${WORKLOAD_KINDS.join(", ")})`);
  return out;
}

function chooseNamespace(workloads: readonly Workload[], given: string | undefined, file: string): string {
  if (given !== undefined && !DNS_LABEL.test(given)) throw new SidecarError(`--namespace ${given}: not a namespace name (lower-case letters, digits and -, at most 63)`);
  const own = [...new Set(workloads.flatMap((w) => (w.manifest.namespace === undefined ? [] : [w.manifest.namespace])))];
  if (own.length > 1) throw new SidecarError(`${file}: workloads in several namespaces (${own.join(", ")}): sluice and its agents share one namespace; run once per namespace`);
  const namespace = given ?? own[0] ?? "default";
  const other = workloads.find((w) => w.manifest.namespace !== undefined && w.manifest.namespace !== namespace);
  if (other) throw new SidecarError(`${describe(file, other.manifest)}: metadata.namespace ${other.manifest.namespace} is not --namespace ${namespace}: sluice and its agents share one namespace`);
  return namespace;
}

/** The CA variables of `sluice ca export --env` (cli/ca.ts), pointing at the mounted ConfigMap. */
const CA_ENV: readonly [string, string][] = [
  ["SSL_CERT_FILE", CA_BUNDLE],
  ["REQUESTS_CA_BUNDLE", CA_BUNDLE],
  ["CURL_CA_BUNDLE", CA_BUNDLE],
  ["GIT_SSL_CAINFO", CA_BUNDLE],
  ["NODE_EXTRA_CA_CERTS", CA_PEM],
  ["DENO_CERT", CA_PEM],
];

/**
 * What every container of an agent's pod gets: its token from the Secret, the proxy variables
 * with the token as the proxy password (sluice reads Basic credentials' password as the token),
 * NO_PROXY when asked, and the CA when sluice intercepts TLS.
 */
function agentInjection(agent: string, namespace: string, input: SidecarInput, intercept: boolean): Injection {
  const url = `http://${agent}:$(SLUICE_AGENT_TOKEN)@${SLUICE}.${namespace}.svc.${input.clusterDomain}:${PROXY_PORT}`;
  const noProxy = `localhost,127.0.0.1,::1,.svc,.svc.${input.clusterDomain},kubernetes.default.svc`;
  const env: IEnvVar[] = [
    { name: "SLUICE_AGENT_TOKEN", valueFrom: { secretKeyRef: { name: SECRETS.agentTokens, key: agent } } },
    ...["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"].map((name) => ({ name, value: url })),
    ...(input.network.noProxyCluster ? ["NO_PROXY", "no_proxy"].map((name) => ({ name, value: noProxy })) : []),
    ...(intercept ? CA_ENV.map(([name, file]) => ({ name, value: `${AGENT_CA_DIR}/${file}` })) : []),
  ];
  return {
    env,
    mounts: intercept ? [{ name: CA_CONFIGMAP, mountPath: AGENT_CA_DIR, readOnly: true }] : [],
    volumes: intercept ? [{ name: CA_CONFIGMAP, configMap: { name: CA_CONFIGMAP } }] : [],
  };
}

function warnings(policy: ClusterPolicy, network: NetworkOptions): string[] {
  const out: string[] = [];
  const needs = podDependencies(policy.config);
  if (needs.length > 0) out.push(`the policy reads environment variables or files that sluice's pod does not get from this generator; add them to the sluice Deployment (a patch): ${needs.join("; ")}`);
  if (network.noProxyCluster && network.apiServerCidrs.length === 0) {
    out.push("--no-proxy-cluster sends kubernetes.default.svc past sluice, and the API server is not a pod the agents' NetworkPolicy lets them reach: pass --api-server-cidr with its addresses (kubectl get endpoints kubernetes -n default), or the agents' calls to it will time out");
  }
  return out;
}

/**
 * The NetworkPolicies that make sluice the agents' only way out. Each agent workload's pods may
 * reach sluice's pods on the proxy port and cluster DNS (to find sluice's Service), nothing else.
 * sluice's pods accept connections from those pods only, on the proxy port, and may reach DNS and
 * the internet on the policy's ports, but not the cluster's own pod, service and link-local
 * ranges unless listed (the policy's egress.trusted_cidrs, --allow-cidr).
 *
 * Kubelet probes are not subject to NetworkPolicy on the common CNIs (Calico, Cilium, ...), so the
 * admin port needs no ingress rule for them.
 */
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyEgressRule } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyEgressRule";
import type { INetworkPolicyPeer } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer";
import type { INetworkPolicyPort } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort";
import type { Config } from "../../config/schema.ts";
import { parseCidr, type Cidr } from "../../net/cidr.ts";
import { KUBE_DNS, LABELS, PROXY_PORT, SELECTOR_LABELS, SLUICE } from "./layout.ts";
import { SidecarError } from "./manifests.ts";
import type { LabelSelector } from "./workloads.ts";

export interface NetworkOptions {
  /** The cluster's pod ranges (--cluster-cidr); with serviceCidrs, what sluice may not reach. */
  readonly clusterCidrs: readonly string[];
  readonly serviceCidrs: readonly string[];
  /** Ranges sluice may reach all the same (--allow-cidr). */
  readonly allowCidrs: readonly string[];
  /** --no-proxy-cluster: agents reach the cluster's pods directly, and the API server at these ranges. */
  readonly noProxyCluster: boolean;
  readonly apiServerCidrs: readonly string[];
}

/**
 * Not the internet, by default: RFC 1918, CGNAT (RFC 6598, some clusters' pod ranges), IPv6
 * unique-local (RFC 4193) and, always, link-local (RFC 3927, RFC 4291 §2.5.6: the metadata
 * endpoints live there) and Azure's WireServer (a public address that serves instance metadata,
 * as net/classify.ts lists it).
 */
const DEFAULT_BLOCKED = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"];
const LINK_LOCAL = ["169.254.0.0/16", "168.63.129.16/32", "fe80::/10"];

/** The API server's usual ports (443 behind most managed clusters' endpoints, 6443 kubeadm's). */
const API_SERVER_PORTS = [443, 6443];

/** Cluster DNS, UDP and TCP (RFC 7766: TCP is not optional). */
function dnsRule(): INetworkPolicyEgressRule {
  return {
    to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": KUBE_DNS.namespace } }, podSelector: { matchLabels: { ...KUBE_DNS.labels } } }],
    ports: [
      { protocol: "UDP", port: 53 },
      { protocol: "TCP", port: 53 },
    ],
  };
}

/** Checks every CIDR option up front, so a bad one is an error before anything is built. */
export function checkNetworkOptions(o: NetworkOptions): void {
  const lists: [string, readonly string[]][] = [["--cluster-cidr", o.clusterCidrs], ["--service-cidr", o.serviceCidrs], ["--allow-cidr", o.allowCidrs], ["--api-server-cidr", o.apiServerCidrs]];
  for (const [flag, list] of lists) for (const c of list) cidr(c, flag);
}

function cidr(text: string, where: string): Cidr {
  try {
    return parseCidr(text);
  } catch (e) {
    throw new SidecarError(`${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The policy of one agent workload's pods. */
export function agentNetworkPolicy(namespace: string, agent: string, pods: LabelSelector, o: NetworkOptions): INetworkPolicy {
  const egress: INetworkPolicyEgressRule[] = [{ to: [{ podSelector: { matchLabels: { ...SELECTOR_LABELS } } }], ports: [{ protocol: "TCP", port: PROXY_PORT }] }, dnsRule()];
  if (o.noProxyCluster) {
    // NO_PROXY sends the cluster's own Services past sluice: let them through. NetworkPolicy
    // sees Service traffic after it is translated to a pod's address, so "every pod" covers it.
    egress.push({ to: [{ namespaceSelector: {} }] });
    if (o.apiServerCidrs.length > 0) {
      egress.push({ to: ipBlocks(o.apiServerCidrs, "--api-server-cidr"), ports: API_SERVER_PORTS.map((port) => ({ protocol: "TCP", port })) });
    }
  }
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: `${SLUICE}-agent-${agent}`, namespace, labels: { ...LABELS } },
    spec: { podSelector: pods, policyTypes: ["Egress"], egress },
  };
}

/** sluice's own policy: who may connect (the agents' pods), and where sluice may go (`egress`). */
export function sluiceNetworkPolicy(namespace: string, agentPods: readonly LabelSelector[], egress: INetworkPolicyEgressRule[]): INetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: SLUICE, namespace, labels: { ...LABELS } },
    spec: {
      podSelector: { matchLabels: { ...SELECTOR_LABELS } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ from: agentPods.map((podSelector) => ({ podSelector })), ports: [{ protocol: "TCP", port: PROXY_PORT }] }],
      egress,
    },
  };
}

/**
 * sluice's egress rules: DNS; the internet, on the policy's ports (egress.ports), without the
 * blocked ranges; the trusted and allowed ranges on the same ports; and the DNS upstreams and
 * syslog collector the policy names, which may well be inside the cluster.
 */
export function sluiceEgress(config: Config, o: NetworkOptions): INetworkPolicyEgressRule[] {
  const ports = egressPorts(config);
  const given = [...o.clusterCidrs.map((c) => cidr(c, "--cluster-cidr").text), ...o.serviceCidrs.map((c) => cidr(c, "--service-cidr").text)];
  const blocked = (family: 4 | 6) => {
    const own = given.filter((c) => familyOf(c) === family);
    return unique([...(own.length > 0 ? own : DEFAULT_BLOCKED.filter((c) => familyOf(c) === family)), ...LINK_LOCAL.filter((c) => familyOf(c) === family)]);
  };
  const rules: INetworkPolicyEgressRule[] = [
    dnsRule(),
    {
      to: [
        { ipBlock: { cidr: "0.0.0.0/0", except: blocked(4) } },
        { ipBlock: { cidr: "::/0", except: blocked(6) } },
      ],
      ports,
    },
  ];
  const trusted = [...config.egress.trusted_cidrs.map((c, i) => cidr(c, `policy egress.trusted_cidrs.${i}`).text), ...o.allowCidrs.map((c) => cidr(c, "--allow-cidr").text)];
  if (trusted.length > 0) rules.push({ to: unique(trusted).map((c) => ({ ipBlock: { cidr: c } })), ports });
  for (const u of config.dns.upstreams ?? []) rules.push(hostRule(u.hostname, u.port, ["UDP", "TCP"]));
  const syslog = config.audit.export.syslog;
  if (syslog) rules.push(hostRule(syslog.address.hostname, syslog.address.port, [syslog.protocol === "tcp" ? "TCP" : "UDP"]));
  return rules;
}

/** egress.ports.http and .connect as NetworkPolicy ports (a range as port..endPort), sorted, once each. */
function egressPorts(config: Config): INetworkPolicyPort[] {
  const ranges = [...config.egress.ports.http, ...config.egress.ports.connect];
  const seen = new Set<string>();
  return ranges
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .filter(([lo, hi]) => !seen.has(`${lo}-${hi}`) && seen.add(`${lo}-${hi}`))
    .map(([lo, hi]) => (hi > lo ? { protocol: "TCP", port: lo, endPort: hi } : { protocol: "TCP", port: lo }));
}

function hostRule(ip: string, port: number, protocols: ("UDP" | "TCP")[]): INetworkPolicyEgressRule {
  return { to: [{ ipBlock: { cidr: cidr(ip, "policy").text } }], ports: protocols.map((protocol) => ({ protocol, port })) };
}

function ipBlocks(list: readonly string[], flag: string): INetworkPolicyPeer[] {
  return unique(list.map((c) => cidr(c, flag).text)).map((c) => ({ ipBlock: { cidr: c } }));
}

const unique = (list: readonly string[]): string[] => [...new Set(list)];
const familyOf = (cidrText: string): 4 | 6 => (cidrText.includes(":") ? 6 : 4);

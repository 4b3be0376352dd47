/**
 * `sluice init sidecar`'s refusals: each names the file, the document (index, kind, name) and
 * the path of the problem, or the option, so the operator can fix it without guessing.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_CONFIG_TEXT } from "../../../src/config/load.ts";
import { SidecarError } from "../../../src/deploy/k8s/manifests.ts";
import { generateSidecar, type SidecarInput } from "../../../src/deploy/k8s/sidecar.ts";

const FIXTURES = join(import.meta.dir, "../../fixtures/k8s");
const fixture = (name: string) => readFileSync(join(FIXTURES, name), "utf8");

const NETWORK = { clusterCidrs: [], serviceCidrs: [], allowCidrs: [], noProxyCluster: false, apiServerCidrs: [] };

const deployment = (name: string, extra = "", podSpec = "containers: [{ name: app, image: app:1 }]") =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: ${name}${extra} }\nspec:\n  selector: { matchLabels: { app: ${name} } }\n  template:\n    metadata: { labels: { app: ${name} } }\n    spec: { ${podSpec} }\n`;

function errorOf(over: Partial<SidecarInput>): string {
  try {
    generateSidecar({
      specFile: "spec-file.yaml",
      specText: deployment("web"),
      policySource: "team.yaml",
      policyText: DEFAULT_CONFIG_TEXT,
      image: "sluice:0.1.0",
      clusterDomain: "cluster.local",
      systemRoots: [],
      version: "0.1.0",
      ...over,
      network: { ...NETWORK, ...over.network },
    });
  } catch (e) {
    expect(e).toBeInstanceOf(SidecarError);
    return (e as Error).message;
  }
  throw new Error("no error");
}

describe("init sidecar refuses, saying where", () => {
  const cases: [what: string, over: Partial<SidecarInput>, message: string][] = [
    ["a missing containers list", { specText: `${deployment("api")}---\n${deployment("web", "", "restartPolicy: Always")}` }, "spec-file.yaml: document 2 (Deployment web): spec.template.spec.containers: missing"],
    ["an empty containers list", { specText: deployment("web", "", "containers: []") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.containers: must be a non-empty list"],
    ["a container without a name", { specText: deployment("web", "", "containers: [{ image: app:1 }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.containers.0.name: missing"],
    ["an env entry without a name", { specText: deployment("web", "", "containers: [{ name: a, env: [{ value: x }] }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.containers.0.env.0.name: missing"],
    ["a volume mount without a path", { specText: deployment("web", "", "containers: [{ name: a }], initContainers: [{ name: i, volumeMounts: [{ name: v }] }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.initContainers.0.volumeMounts.0.mountPath: missing"],
    ["one of sluice's names twice", { specText: deployment("web", "", "containers: [{ name: a, env: [{ name: HTTP_PROXY, value: x }, { name: HTTP_PROXY, value: y }] }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.containers.0.env: HTTP_PROXY appears twice"],
    ["a pod on the node's network", { specText: deployment("web", "", "hostNetwork: true, containers: [{ name: a }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.hostNetwork: true: NetworkPolicies do not apply to pods on the node's network, so nothing would make sluice their only way out"],
    ["a Deployment without a selector", { specText: "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { template: { spec: { containers: [{ name: a }] } } }\n" }, "spec-file.yaml: document 1 (Deployment web): spec.selector: missing (the agent NetworkPolicy selects the workload's pods with it)"],
    ["a CronJob without pod labels", { specText: "apiVersion: batch/v1\nkind: CronJob\nmetadata: { name: nightly }\nspec: { schedule: '@daily', jobTemplate: { spec: { template: { spec: { restartPolicy: Never, containers: [{ name: a }] } } } } }\n" }, "spec-file.yaml: document 1 (CronJob nightly): spec.jobTemplate.spec.template.metadata.labels: missing (the agent NetworkPolicy selects the workload's pods by them: add a label such as app: NAME)"],
    ["a CronJob without a pod template", { specText: "apiVersion: batch/v1\nkind: CronJob\nmetadata: { name: nightly }\nspec: { schedule: '@daily' }\n" }, "spec-file.yaml: document 1 (CronJob nightly): spec.jobTemplate.spec.template: missing"],
    ["an old apiVersion", { specText: deployment("web").replace("apps/v1", "extensions/v1beta1") }, "spec-file.yaml: document 1 (Deployment web): apiVersion: extensions/v1beta1 is not supported (sluice patches Deployment of apps/v1)"],
    ["an unsupported kind", { specText: `${deployment("web")}---\napiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec: { ports: [{ port: 80 }] }\n` }, "spec-file.yaml: document 2 (Service web): kind Service is not supported: sluice init sidecar patches Deployment, StatefulSet, DaemonSet, Job, CronJob; apply other objects from a file of their own"],
    ["malformed YAML, with the line", { specText: `${deployment("web")}---\napiVersion: apps/v1\nkind: [\n  a: 1\n` }, "spec-file.yaml: document 2: Flow sequence in block collection must be sufficiently indented and end with a ] at line 13, column 1"],
    ["a duplicate key", { specText: "apiVersion: apps/v1\nkind: Deployment\nkind: Job\n" }, "spec-file.yaml: document 1: Map keys must be unique at line 3, column 1"],
    ["a document that is not an object", { specText: "- one\n- two\n" }, "spec-file.yaml: document 1: not a Kubernetes object (a mapping with apiVersion, kind and metadata)"],
    ["a document without a kind", { specText: "apiVersion: v1\nmetadata: { name: x }\n" }, "spec-file.yaml: document 1: kind: missing"],
    ["a document without a name", { specText: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {}\n" }, "spec-file.yaml: document 1 (Deployment): metadata.name: missing"],
    ["an injected annotation that is not sluice's", { specText: deployment("web", ", annotations: { sluice/injected: 'not json' }") }, "spec-file.yaml: document 1 (Deployment web): metadata.annotations.sluice/injected: not what sluice writes there (JSON lists env, volumeMounts, volumes); remove the annotation"],
    ["a pod that sees the node's processes", { specText: deployment("web", "", "hostPID: true, containers: [{ name: a }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.hostPID: true: a process that sees the node's processes can enter the node's network namespace, past the NetworkPolicies that make sluice the only way out"],
    ["a privileged container", { specText: deployment("web", "", "containers: [{ name: a, securityContext: { privileged: true } }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.containers.0.securityContext: privileged: such a container can change or leave its network namespace, past the NetworkPolicies that make sluice the only way out"],
    ["a container with SYS_ADMIN", { specText: deployment("web", "", "containers: [{ name: a }], initContainers: [{ name: i, securityContext: { capabilities: { add: [NET_ADMIN, CAP_SYS_ADMIN] } } }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.initContainers.0.securityContext: adds SYS_ADMIN: such a container can change or leave its network namespace, past the NetworkPolicies that make sluice the only way out"],
    ["a hostPath volume", { specText: deployment("web", "", "containers: [{ name: a }], volumes: [{ name: sock, hostPath: { path: /run/containerd/containerd.sock } }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.volumes.0.hostPath: /run/containerd/containerd.sock: a directory of the node's can be a way onto the node (a runtime socket, /proc, /run/netns), past the NetworkPolicies that make sluice the only way out; use another kind of volume"],
    ["a container with SYS_MODULE", { specText: deployment("web", "", "containers: [{ name: a, securityContext: { capabilities: { add: [SYS_MODULE] } } }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.containers.0.securityContext: adds SYS_MODULE: such a container can change or leave its network namespace, past the NetworkPolicies that make sluice the only way out"],
    ["a Windows host process", { specText: deployment("web", "", "securityContext: { windowsOptions: { hostProcess: true } }, containers: [{ name: a }]") }, "spec-file.yaml: document 1 (Deployment web): spec.template.spec.securityContext.windowsOptions.hostProcess: true: a host process runs on the node's network, past the NetworkPolicies that make sluice the only way out"],
    ["a policy that lets an agent drop its token", { policyText: "version: 1\nproxy: { require_agent: false }\n" }, "policy team.yaml: proxy.require_agent: false: in the cluster every agent has a token, and one that sends none must be refused, not given the global allow list; remove the setting"],
    ["the same workload twice", { specText: `${deployment("web")}---\n${deployment("web")}` }, "spec-file.yaml: document 2 (Deployment web): the same Deployment as document 1"],
    ["no workload at all", { specText: "# nothing here\n" }, "spec-file.yaml: no workload in it (Deployment, StatefulSet, DaemonSet, Job, CronJob)"],
    ["workloads in two namespaces", { specText: `${deployment("a", ", namespace: team-a")}---\n${deployment("b", ", namespace: team-b")}` }, "spec-file.yaml: workloads in several namespaces (team-a, team-b): sluice and its agents share one namespace; run once per namespace"],
    ["--namespace other than the workloads'", { specText: deployment("web", ", namespace: team-a"), namespace: "team-b" }, "spec-file.yaml: document 1 (Deployment web): metadata.namespace team-a is not --namespace team-b: sluice and its agents share one namespace"],
    ["a bad --namespace", { namespace: "Team_A" }, "--namespace Team_A: not a namespace name (lower-case letters, digits and -, at most 63)"],
    ["an agent name too long for sluice", { specText: deployment("a".repeat(65)) }, `spec-file.yaml: document 1 (Deployment ${"a".repeat(65)}): metadata.name: the agent name ${"a".repeat(65)} is longer than sluice's 64 characters: shorten the name`],
    ["a policy with an unknown key", { policyText: "version: 1\negress:\n  alow: [x.example]\n" }, "policy team.yaml is not valid:\n  egress.alow: unknown key"],
    ["a policy that is not a mapping", { policyText: "- version: 1\n" }, "policy team.yaml is not valid:\n  (root): the config must be a YAML mapping with `version: 1`"],
    ["a policy section that is not a mapping", { policyText: "version: 1\nproxy: 5\n" }, "policy team.yaml is not valid:\n  proxy: Invalid input: expected object, received number"],
    ["a policy agents section that is not a list", { policyText: "version: 1\nagents: { web: 1 }\n" }, "policy team.yaml is not valid:\n  agents: Invalid input: expected array, received object"],
    ["a policy agent with no identity (not a workload's)", { policyText: "version: 1\nagents:\n  - name: ci-bot\n    egress: { allow: [api.github.com] }\n" }, "policy team.yaml is not valid:\n  agents.0: an agent needs token_sha256, token_file or source_cidrs to be identified"],
    ["--ca-cert without interception", { caCert: { source: "ca.crt", pem: fixture("ca.crt") } }, "--ca-cert ca.crt: the policy does not intercept TLS (tls.intercept is not true), so the agents need no CA"],
    ["--ca-cert that is not a CA's", { policyText: fixture("policy-intercept.yaml"), caCert: { source: "leaf.crt", pem: fixture("leaf.crt") } }, "--ca-cert leaf.crt: not a CA certificate (basicConstraints cA is not set): CN=not-a-ca.example"],
    ["--ca-cert holding a key", { policyText: fixture("policy-intercept.yaml"), caCert: { source: "ca.pem", pem: `${fixture("ca.crt")}-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n` } }, "--ca-cert ca.pem: holds a private key: give the certificate alone (the key goes into the sluice-ca Secret)"],
    ["--ca-cert with two certificates", { policyText: fixture("policy-intercept.yaml"), caCert: { source: "chain.pem", pem: fixture("ca.crt") + fixture("root.crt") } }, "--ca-cert chain.pem: 2 certificates in it: give the CA's alone"],
    ["--ca-cert with no certificate", { policyText: fixture("policy-intercept.yaml"), caCert: { source: "empty.pem", pem: "hello\n" } }, "--ca-cert empty.pem: no PEM certificate in it"],
    ["a bad --cluster-cidr", { network: { ...NETWORK, clusterCidrs: ["10.0.0.1/8"] } }, '--cluster-cidr: invalid CIDR "10.0.0.1/8": host bits are set after /8 (did you mean 10.0.0.0/8?)'],
    ["a bad trusted_cidrs entry in the policy", { policyText: "version: 1\negress:\n  trusted_cidrs: [10.1.2.0/33]\n" }, 'policy egress.trusted_cidrs.0: invalid CIDR "10.1.2.0/33": prefix length 33 exceeds 32 for IPv4'],
    ["--api-server-cidr without --no-proxy-cluster", { network: { ...NETWORK, apiServerCidrs: ["172.20.0.10/32"] } }, "--api-server-cidr is for --no-proxy-cluster (the agents then reach the API server directly)"],
    ["a bad --image", { image: "sluice 0.1" }, '--image "sluice 0.1": not an image reference'],
    ["a bad --cluster-domain", { clusterDomain: "Cluster_Local" }, "--cluster-domain Cluster_Local: not a DNS domain"],
  ];
  test.each(cases)("%s", (_what, over, message) => {
    expect(errorOf(over)).toBe(message);
  });
});

/**
 * The generator's result as files: one YAML stream (`--emit yaml`), or a kustomization whose
 * `kustomize build` gives the same objects (`--emit kustomize`). helm.ts writes the chart.
 *
 * Order, fixed: sluice's objects, then the NetworkPolicies (so the fence is up before the patched
 * pods start), then the workloads in input order.
 */
import { CA_CONFIGMAP, SECRETS } from "./layout.ts";
import { commentLines, toYaml, toYamlStream } from "./manifests.ts";
import type { Sidecar } from "./sidecar.ts";

/** What to do before applying: the Secrets to create (by command: no value is ever written here). */
export function setupNotes(s: Sidecar): string {
  const ns = s.namespace;
  const intercept = s.policy.config.tls.intercept;
  const tokens = s.workloads.map((w) => `--from-literal=${w.agent}=$(openssl rand -hex 32)`);
  return [
    `Written by \`sluice init sidecar\` (sluice ${s.version}) for namespace ${ns}. Create the Secrets it`,
    "references first (README \"Kubernetes\"); no secret value is ever written here:",
    `  kubectl -n ${ns} create secret generic ${SECRETS.agentTokens} \\`,
    ...tokens.map((t, i) => `    ${t}${i < tokens.length - 1 ? " \\" : ""}`),
    `  kubectl -n ${ns} create secret generic ${SECRETS.adminToken.name} --from-literal=${SECRETS.adminToken.key}=$(openssl rand -hex 32)`,
    "  openssl genpkey -algorithm ed25519 -out audit-key.pem",
    `  kubectl -n ${ns} create secret generic ${SECRETS.auditKey.name} --from-file=${SECRETS.auditKey.key}=audit-key.pem`,
    ...(intercept ? [`  kubectl -n ${ns} create secret tls ${SECRETS.ca} --cert=ca.crt --key=ca.key   # the interception CA`] : []),
    ...(s.caConfigMapMissing
      ? [
          `The agents' pods wait for the ConfigMap ${CA_CONFIGMAP}: run again with --ca-cert ca.crt, or`,
          "  cat /etc/ssl/certs/ca-certificates.crt ca.crt > ca-bundle.pem",
          `  kubectl -n ${ns} create configmap ${CA_CONFIGMAP} --from-file=ca.pem=ca.crt --from-file=ca-bundle.pem`,
        ]
      : []),
  ].join("\n");
}

export function emitYaml(s: Sidecar): string {
  return `${commentLines(setupNotes(s))}\n${toYamlStream(allObjects(s))}`;
}

export function allObjects(s: Sidecar): object[] {
  return [...s.sluiceObjects, ...s.networkPolicies, ...s.workloads.map((w) => w.object)];
}

/** `deployment-sluice.yaml`: where an object goes in the kustomization and the chart. */
export function objectFile(kind: string, name: string): string {
  return `${kind.toLowerCase()}-${name}.yaml`;
}

/** The file holding the input's workloads, copied as they were (comments too). */
export const WORKLOADS_FILE = "workloads.yaml";

/**
 * kustomization.yaml with sluice's objects and the original workloads as resources, and the
 * strategic-merge patches that inject sluice into each workload. Patches name the workload as
 * the original does; `namespace:` then puts everything into sluice's namespace.
 */
export function emitKustomize(s: Sidecar): Map<string, string> {
  const files = new Map<string, string>();
  const resources: string[] = [];
  for (const o of [...s.sluiceObjects, ...s.networkPolicies]) {
    const file = objectFile(o.kind, o.metadata!.name!);
    files.set(file, toYaml(o));
    resources.push(file);
  }
  files.set(WORKLOADS_FILE, s.workloads.map((w) => withoutDocumentStart(w.workload.manifest.source)).join("---\n"));
  resources.push(WORKLOADS_FILE);
  const patches: { path: string }[] = [];
  for (const w of s.workloads) {
    const base = `patches/${objectFile(w.workload.manifest.kind, w.workload.manifest.name).replace(/\.yaml$/, "")}`;
    // Two patches when the workload had some of sluice's entries: the first removes them.
    w.patches.forEach((p, i) => {
      const path = `${base}${i === 0 && w.patches.length === 2 ? ".remove" : ""}.yaml`;
      files.set(path, toYaml(p));
      patches.push({ path });
    });
  }
  const kustomization = { apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", namespace: s.namespace, resources, patches };
  files.set("kustomization.yaml", `${commentLines(`${setupNotes(s)}\nThen: kubectl apply -k .`)}\n${toYaml(kustomization)}`);
  return files;
}

const withoutDocumentStart = (source: string) => source.replace(/^---\n/, "");

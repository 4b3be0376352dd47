/**
 * sluice's own objects: the policy ConfigMap, the CA ConfigMap for the agents, the Service, the
 * Deployment and its PodDisruptionBudget. Secrets are referenced by name, never written.
 */
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IService } from "kubernetes-models/v1/Service";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ADMIN_PORT, CA_BUNDLE, CA_CONFIGMAP, CA_PEM, LABELS, PATHS, POLICY_CONFIGMAP, POLICY_KEY, PROXY_PORT, SECRET_MODE, SECRETS, SELECTOR_LABELS, SLUICE, SLUICE_UID } from "./layout.ts";

const meta = (name: string, namespace: string) => ({ name, namespace, labels: { ...LABELS } });

export function policyConfigMap(namespace: string, policyText: string): IConfigMap {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: meta(POLICY_CONFIGMAP, namespace), data: { [POLICY_KEY]: policyText } };
}

export function caConfigMap(namespace: string, caPem: string, bundle: string): IConfigMap {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: meta(CA_CONFIGMAP, namespace), data: { [CA_PEM]: caPem, [CA_BUNDLE]: bundle } };
}

export function service(namespace: string): IService {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(SLUICE, namespace),
    spec: { type: "ClusterIP", selector: { ...SELECTOR_LABELS }, ports: [{ name: "proxy", port: PROXY_PORT, targetPort: "proxy", protocol: "TCP" }] },
  };
}

export function podDisruptionBudget(namespace: string): IPodDisruptionBudget {
  return { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: meta(SLUICE, namespace), spec: { minAvailable: 1, selector: { matchLabels: { ...SELECTOR_LABELS } } } };
}

export interface DeploymentOptions {
  readonly image: string;
  /** sha256 hex of the policy text: a new policy rolls the pods. */
  readonly policySha256: string;
  readonly intercept: boolean;
}

/** The defaults the Helm chart's values start from. */
export const REPLICAS = 2;
export const RESOURCES = { requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "2", memory: "1Gi" } };

/**
 * Two replicas on different nodes where possible; ready and alive while /healthz answers 200 on
 * the admin port (it needs no token, and answers 503 while the signed log cannot be written);
 * non-root with a read-only root and nothing but its volumes writable; state (admin token, CA
 * copies, the signed log) on an emptyDir, so each replica keeps its own signed chain.
 */
export function deployment(namespace: string, o: DeploymentOptions): IDeployment {
  const probe = (initialDelaySeconds: number, periodSeconds: number, failureThreshold: number) => ({ httpGet: { path: "/healthz", port: "admin" }, initialDelaySeconds, periodSeconds, failureThreshold });
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(SLUICE, namespace),
    spec: {
      replicas: REPLICAS,
      selector: { matchLabels: { ...SELECTOR_LABELS } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: { ...LABELS }, annotations: { "checksum/policy": o.policySha256 } },
        spec: {
          automountServiceAccountToken: false,
          // Service links would put SLUICE_PORT and friends into sluice's environment.
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: SLUICE_UID, runAsGroup: SLUICE_UID, fsGroup: SLUICE_UID, seccompProfile: { type: "RuntimeDefault" } },
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { ...SELECTOR_LABELS } } } }],
            },
          },
          containers: [
            {
              name: SLUICE,
              image: o.image,
              args: ["run", "--log-format", "json"],
              env: [
                { name: "SLUICE_CONFIG", value: PATHS.policy },
                { name: "SLUICE_HOME", value: PATHS.home },
              ],
              ports: [
                { name: "proxy", containerPort: PROXY_PORT, protocol: "TCP" },
                { name: "admin", containerPort: ADMIN_PORT, protocol: "TCP" },
              ],
              readinessProbe: probe(0, 5, 2),
              livenessProbe: probe(10, 10, 3),
              resources: structuredClone(RESOURCES),
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } },
              volumeMounts: mounts(o.intercept),
            },
          ],
          volumes: volumes(o.intercept),
        },
      },
    },
  };
}

function mounts(intercept: boolean): IVolumeMount[] {
  return [
    { name: "policy", mountPath: PATHS.policyDir, readOnly: true },
    { name: "agent-tokens", mountPath: PATHS.agentTokens, readOnly: true },
    { name: "admin-token", mountPath: PATHS.adminTokenDir, readOnly: true },
    { name: "audit-key", mountPath: PATHS.auditKeyDir, readOnly: true },
    ...(intercept ? [{ name: "ca", mountPath: PATHS.caDir, readOnly: true }] : []),
    { name: "state", mountPath: PATHS.home },
  ];
}

function volumes(intercept: boolean): IVolume[] {
  // 0440 and the pod's fsGroup: root owns the files, sluice's group reads them (core/secret-file.ts).
  const secret = (secretName: string, keys?: readonly string[]): IVolume["secret"] => ({ secretName, defaultMode: SECRET_MODE, ...(keys ? { items: keys.map((key) => ({ key, path: key })) } : {}) });
  return [
    { name: "policy", configMap: { name: POLICY_CONFIGMAP } },
    // Every key: one per agent, a file sluice reads by the agent's name.
    { name: "agent-tokens", secret: secret(SECRETS.agentTokens) },
    { name: "admin-token", secret: secret(SECRETS.adminToken.name, [SECRETS.adminToken.key]) },
    { name: "audit-key", secret: secret(SECRETS.auditKey.name, [SECRETS.auditKey.key]) },
    ...(intercept ? [{ name: "ca", secret: secret(SECRETS.ca, ["tls.crt", "tls.key"]) }] : []),
    { name: "state", emptyDir: {} },
  ];
}

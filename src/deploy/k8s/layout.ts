/**
 * Names, labels, ports and paths every part of the Kubernetes generator agrees on: the objects it
 * writes, the Secrets it references, and where their files appear in the sluice container.
 */

export const PROXY_PORT = 8888;
export const ADMIN_PORT = 8889;

/** sluice's objects; the Deployment, Service, PodDisruptionBudget and its NetworkPolicy are all "sluice". */
export const SLUICE = "sluice";
export const POLICY_CONFIGMAP = "sluice-policy";
export const POLICY_KEY = "sluice.yaml";
/** The ConfigMap the agents' pods trust the interception CA from (keys CA_PEM, CA_BUNDLE). */
export const CA_CONFIGMAP = "sluice-ca";
export const CA_PEM = "ca.pem";
export const CA_BUNDLE = "ca-bundle.pem";

/** Secrets the operator creates (README "Kubernetes"); referenced, never written. */
export const SECRETS = {
  /** One key per agent (the agent's name), a random token. */
  agentTokens: "sluice-agent-tokens",
  adminToken: { name: "sluice-admin-token", key: "token" },
  /** Ed25519 private key, PKCS#8 PEM. */
  auditKey: { name: "sluice-audit-key", key: "signing-key.pem" },
  /** kubernetes.io/tls: the interception CA, shared by every replica (only with tls.intercept). */
  ca: "sluice-ca",
} as const;

/** Selects sluice's pods; stable, so the Deployment's selector never has to change. */
export const SELECTOR_LABELS: Readonly<Record<string, string>> = {
  "app.kubernetes.io/name": SLUICE,
  "app.kubernetes.io/component": "egress-proxy",
};

/** On every object sluice writes: how a later run recognises (and replaces) its own output. */
export const LABELS: Readonly<Record<string, string>> = { ...SELECTOR_LABELS, "app.kubernetes.io/managed-by": SLUICE };
export const MANAGED_BY = ["app.kubernetes.io/managed-by", SLUICE] as const;

/** The distroless image's `nonroot` user (Dockerfile); also the pod's fsGroup, which makes Secret files readable. */
export const SLUICE_UID = 65532;

/** Paths in the sluice container. Nothing is nested in a read-only volume. */
export const PATHS = {
  policyDir: "/etc/sluice/policy",
  policy: `/etc/sluice/policy/${POLICY_KEY}`,
  agentTokens: "/etc/sluice/agent-tokens",
  adminTokenDir: "/etc/sluice/admin",
  adminToken: `/etc/sluice/admin/${SECRETS.adminToken.key}`,
  auditKeyDir: "/etc/sluice/audit-key",
  auditKey: `/etc/sluice/audit-key/${SECRETS.auditKey.key}`,
  caDir: "/etc/sluice/ca",
  home: "/var/lib/sluice",
  auditDir: "/var/lib/sluice/audit",
} as const;

/** Where the agents' containers find the CA ConfigMap. */
export const AGENT_CA_DIR = "/etc/sluice-ca";

/** Cluster DNS as kubeadm, EKS, GKE and AKS label it. */
export const KUBE_DNS = { namespace: "kube-system", labels: { "k8s-app": "kube-dns" } } as const;

/** Secret files: read by the owner (root) and the pod's fsGroup only (core/secret-file.ts accepts this). */
export const SECRET_MODE = 0o440;

/**
 * The agents' workloads: which kinds sluice patches, how their pods are found and selected, and
 * the patch itself, both as the patched object (`--emit yaml`) and as strategic-merge patches
 * that turn the original into it (`--emit kustomize`).
 *
 * sluice's entries (env by name, volumeMounts by mountPath, volumes by name) are removed where the
 * workload already has them and appended, in sluice's order: SLUICE_AGENT_TOKEN must come before
 * the proxy variables that say $(SLUICE_AGENT_TOKEN), since Kubernetes expands a reference only
 * to an entry above it. A strategic merge keeps an existing entry where it is, so the patches do
 * the same in two steps: one deletes the existing entries (`$patch: delete`), the next appends.
 */
import type { IEnvVar } from "kubernetes-models/v1/EnvVar";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import type { INetworkPolicySpec } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicySpec";
import { describe, isRecord, SidecarError, type KubeObject, type Manifest } from "./manifests.ts";

export type LabelSelector = INetworkPolicySpec["podSelector"];

interface KindSpec {
  readonly apiVersion: string;
  /** Where the pod template is. */
  readonly template: readonly string[];
  /** The kind has a required, immutable spec.selector that selects its pods. */
  readonly selector: boolean;
}

const KINDS: Readonly<Record<string, KindSpec>> = {
  Deployment: { apiVersion: "apps/v1", template: ["spec", "template"], selector: true },
  StatefulSet: { apiVersion: "apps/v1", template: ["spec", "template"], selector: true },
  DaemonSet: { apiVersion: "apps/v1", template: ["spec", "template"], selector: true },
  Job: { apiVersion: "batch/v1", template: ["spec", "template"], selector: false },
  CronJob: { apiVersion: "batch/v1", template: ["spec", "jobTemplate", "spec", "template"], selector: false },
};

export const WORKLOAD_KINDS: readonly string[] = Object.keys(KINDS);

export interface Workload {
  readonly manifest: Manifest;
  readonly template: readonly string[];
  /** The workload's pods: its selector (apps/v1 kinds), else its pod template's labels. */
  readonly podSelector: LabelSelector;
}

/** What sluice adds to every container (env, mounts) and to the pod (volumes). */
export interface Injection {
  readonly env: readonly IEnvVar[];
  readonly mounts: readonly IVolumeMount[];
  readonly volumes: readonly IVolume[];
}

export interface PatchedWorkload {
  readonly workload: Workload;
  readonly agent: string;
  readonly object: KubeObject;
  /** Strategic-merge patches, in order, that turn the original object into `object` (but for its namespace). */
  readonly patches: readonly KubeObject[];
}

const CONTAINER_LISTS = ["containers", "initContainers"] as const;

type Fail = (path: string, problem: string) => never;

/** A workload document checked for everything the patch and the NetworkPolicies rely on. */
export function readWorkload(m: Manifest, file: string): Workload {
  const spec = KINDS[m.kind]!;
  const fail: Fail = (path, problem) => {
    throw new SidecarError(`${describe(file, m)}: ${path}: ${problem}`);
  };
  if (m.object.apiVersion !== spec.apiVersion) fail("apiVersion", `${String(m.object.apiVersion)} is not supported (sluice patches ${m.kind} of ${spec.apiVersion})`);
  const at = spec.template.join(".");
  const template = dig(m.object, spec.template);
  if (!isRecord(template)) fail(at, "missing");
  const pod = template.spec;
  if (!isRecord(pod)) fail(`${at}.spec`, "missing");
  if (pod.hostNetwork === true) fail(`${at}.spec.hostNetwork`, "true: NetworkPolicies do not apply to pods on the node's network, so nothing would make sluice their only way out");
  if (!Array.isArray(pod.containers) || pod.containers.length === 0) fail(`${at}.spec.containers`, pod.containers === undefined ? "missing" : "must be a non-empty list");
  if (pod.initContainers !== undefined && !Array.isArray(pod.initContainers)) fail(`${at}.spec.initContainers`, "must be a list");
  for (const list of CONTAINER_LISTS) {
    ((pod[list] ?? []) as unknown[]).forEach((c, i) => {
      const path = `${at}.spec.${list}.${i}`;
      if (!isRecord(c) || typeof c.name !== "string" || c.name === "") fail(`${path}.name`, "missing");
      checkEntries(c.env, "name", `${path}.env`, fail);
      checkEntries(c.volumeMounts, "mountPath", `${path}.volumeMounts`, fail);
    });
  }
  checkEntries(pod.volumes, "name", `${at}.spec.volumes`, fail);
  // What can leave the pod's own network namespace, or reach the node, is past any NetworkPolicy.
  if (pod.hostPID === true) fail(`${at}.spec.hostPID`, "true: a process that sees the node's processes can enter the node's network namespace, past the NetworkPolicies that make sluice the only way out");
  if (isRecord(pod.securityContext) && isRecord(pod.securityContext.windowsOptions) && pod.securityContext.windowsOptions.hostProcess === true) fail(`${at}.spec.securityContext.windowsOptions.hostProcess`, "true: a host process runs on the node's network, past the NetworkPolicies that make sluice the only way out");
  ((pod.volumes ?? []) as KubeObject[]).forEach((v, i) => {
    // The node's files: its container runtime's socket, /proc, /run/netns, / itself are ways onto the node.
    if (isRecord(v.hostPath)) fail(`${at}.spec.volumes.${i}.hostPath`, `${String(v.hostPath.path)}: a directory of the node's can be a way onto the node (a runtime socket, /proc, /run/netns), past the NetworkPolicies that make sluice the only way out; use another kind of volume`);
  });
  for (const list of CONTAINER_LISTS) {
    ((pod[list] ?? []) as KubeObject[]).forEach((c, i) => {
      const sc = isRecord(c.securityContext) ? c.securityContext : {};
      const caps = isRecord(sc.capabilities) && Array.isArray(sc.capabilities.add) ? (sc.capabilities.add as unknown[]).map((x) => String(x).toUpperCase().replace(/^CAP_/, "")) : [];
      // SYS_ADMIN (setns, mounts), SYS_MODULE (kernel modules), SYS_RAWIO (devices) and ALL reach
      // past the pod; NET_ADMIN and NET_RAW stay in its network namespace, which the NetworkPolicies fence from outside.
      const strong = caps.filter((x) => x === "SYS_ADMIN" || x === "SYS_MODULE" || x === "SYS_RAWIO" || x === "ALL");
      if (sc.privileged === true || strong.length > 0) fail(`${at}.spec.${list}.${i}.securityContext`, `${sc.privileged === true ? "privileged" : `adds ${strong.join(", ")}`}: such a container can change or leave its network namespace, past the NetworkPolicies that make sluice the only way out`);
    });
  }
  return { manifest: m, template: spec.template, podSelector: podSelector(m, spec, template, at, fail) };
}

function podSelector(m: Manifest, spec: KindSpec, template: KubeObject, at: string, fail: Fail): LabelSelector {
  if (spec.selector) {
    const selector = dig(m.object, ["spec", "selector"]);
    const usable = isRecord(selector) && (nonEmpty(selector.matchLabels) || (Array.isArray(selector.matchExpressions) && selector.matchExpressions.length > 0));
    if (!usable) fail("spec.selector", "missing (the agent NetworkPolicy selects the workload's pods with it)");
    return structuredClone(selector) as LabelSelector;
  }
  const labels = dig(template, ["metadata", "labels"]);
  if (!nonEmpty(labels)) fail(`${at}.metadata.labels`, "missing (the agent NetworkPolicy selects the workload's pods by them: add a label such as app: NAME)");
  return { matchLabels: structuredClone(labels) as Record<string, string> };
}

/** A list of mappings, each with a string `key` (env by name, mounts by mountPath). */
function checkEntries(list: unknown, key: string, path: string, fail: Fail): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) fail(path, "must be a list");
  list.forEach((e, i) => {
    if (!isRecord(e) || typeof e[key] !== "string") fail(`${path}.${i}.${key}`, "missing");
  });
}

/**
 * The agent's name in sluice's policy and the key of its token in the sluice-agent-tokens Secret:
 * the workload's name, or kind-name when two workloads share a name (a Deployment and a Job).
 */
export function agentNames(workloads: readonly Workload[], file: string): string[] {
  const count = new Map<string, number>();
  for (const w of workloads) count.set(w.manifest.name, (count.get(w.manifest.name) ?? 0) + 1);
  return workloads.map((w) => {
    const m = w.manifest;
    const name = count.get(m.name)! > 1 ? `${m.kind.toLowerCase()}-${m.name}` : m.name;
    // config/schema.ts: agent names are 1 to 64 letters, digits, . _ -
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new SidecarError(`${describe(file, m)}: metadata.name: the agent name ${name} is longer than sluice's 64 characters: shorten the name`);
    return name;
  });
}

/** The workload with sluice's entries in every container, in `namespace`, and the patches that say so. */
export function injectWorkload(w: Workload, agent: string, injection: Injection, namespace: string, file: string): PatchedWorkload {
  const m = w.manifest;
  const object = structuredClone(m.object);
  const { name, namespace: own, ...restMeta } = object.metadata as KubeObject;
  object.metadata = { name, namespace: own ?? namespace, ...restMeta };
  const pod = dig(object, [...w.template, "spec"]) as KubeObject;

  // What an earlier run put in (its annotation) goes too, even where this run puts in less (no
  // CA, no NO_PROXY): a workload never keeps a setting of sluice's that no run asked for.
  const before = injectedBefore(object, `${describe(file, m)}: metadata.annotations.${INJECTED_ANNOTATION}`);
  const envNames = new Set([...injection.env.map((e) => e.name), ...before.env]);
  const mountPaths = new Set([...injection.mounts.map((v) => v.mountPath), ...before.volumeMounts]);
  const volumeNames = new Set([...injection.volumes.map((v) => v.name), ...before.volumes]);
  const injected = injectedAnnotation(injection);
  const meta = object.metadata as KubeObject;
  meta.annotations = { ...((meta.annotations as Record<string, string> | undefined) ?? {}), [INJECTED_ANNOTATION]: injected };
  const removePod: KubeObject = {};
  const addPod: KubeObject = {};
  for (const list of CONTAINER_LISTS) {
    const containers = pod[list] as KubeObject[] | undefined;
    if (containers === undefined) continue;
    const removals: KubeObject[] = [];
    const additions: KubeObject[] = [];
    containers.forEach((c, i) => {
      const where = `${describe(file, m)}: ${w.template.join(".")}.spec.${list}.${i}`;
      const env = replaceEntries(c, "env", "name", envNames, injection.env, `${where}.env`);
      const mounts = replaceEntries(c, "volumeMounts", "mountPath", mountPaths, injection.mounts, `${where}.volumeMounts`);
      if (env.removed.length + mounts.removed.length > 0) removals.push({ name: c.name, ...patchList("env", env.removed), ...patchList("volumeMounts", mounts.removed) });
      additions.push({ name: c.name, ...patchList("env", injection.env), ...patchList("volumeMounts", injection.mounts) });
    });
    if (removals.length > 0) removePod[list] = removals;
    addPod[list] = additions;
  }
  const volumes = replaceEntries(pod, "volumes", "name", volumeNames, injection.volumes, `${describe(file, m)}: ${w.template.join(".")}.spec.volumes`);
  Object.assign(removePod, patchList("volumes", volumes.removed));
  Object.assign(addPod, patchList("volumes", injection.volumes));

  // A patch names its target as the original does (kustomize matches on kind, name and
  // namespace); the kustomization's `namespace:` then moves everything into `namespace`.
  const head = { apiVersion: m.object.apiVersion, kind: m.kind, metadata: { name: m.name, ...(m.namespace !== undefined ? { namespace: m.namespace } : {}) } };
  const patch = (podSpec: KubeObject, annotate = false): KubeObject => ({ ...head, ...(annotate ? { metadata: { ...head.metadata, annotations: { [INJECTED_ANNOTATION]: injected } } } : {}), ...nest([...w.template, "spec"], podSpec) });
  const patches = Object.keys(removePod).length > 0 ? [patch(removePod), patch(addPod, true)] : [patch(addPod, true)];
  return { workload: w, agent, object, patches };
}

/**
 * Replaces `owner[field]` by its entries without sluice's (by `key`), followed by `ours`; says
 * which of sluice's entries were there (as `$patch: delete` elements). One of sluice's names
 * twice in a list is refused: which of the two the workload meant is anyone's guess.
 */
function replaceEntries(owner: KubeObject, field: string, key: string, keys: ReadonlySet<string | undefined>, ours: readonly object[], where: string): { removed: KubeObject[] } {
  if (keys.size === 0) return { removed: [] };
  const list = (owner[field] ?? []) as KubeObject[];
  const present = list.filter((e) => keys.has(e[key] as string));
  const seen = new Set<unknown>();
  for (const e of present) {
    if (seen.has(e[key])) throw new SidecarError(`${where}: ${String(e[key])} appears twice`);
    seen.add(e[key]);
  }
  owner[field] = [...list.filter((e) => !keys.has(e[key] as string)), ...structuredClone(ours)];
  return { removed: present.map((e) => ({ [key]: e[key], $patch: "delete" })) };
}

/** Where a workload says what sluice put in it: env names, mount paths and volume names, as JSON. */
export const INJECTED_ANNOTATION = "sluice/injected";

interface Injected {
  readonly env: readonly string[];
  readonly volumeMounts: readonly string[];
  readonly volumes: readonly string[];
}

function injectedAnnotation(i: Injection): string {
  const names = (list: readonly object[], key: string) => list.map((e) => String((e as Record<string, unknown>)[key]));
  return JSON.stringify({ env: names(i.env, "name"), volumeMounts: names(i.mounts, "mountPath"), volumes: names(i.volumes, "name") } satisfies Injected);
}

/** What an earlier run's annotation says it put in; nothing when there is none. Not sluice's shape: an error. */
function injectedBefore(object: KubeObject, where: string): Injected {
  const raw = ((object.metadata as KubeObject | undefined)?.annotations as Record<string, unknown> | undefined)?.[INJECTED_ANNOTATION];
  if (raw === undefined) return { env: [], volumeMounts: [], volumes: [] };
  let parsed: unknown;
  try {
    parsed = typeof raw === "string" ? JSON.parse(raw) : null;
  } catch {
    parsed = null;
  }
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
  if (!isRecord(parsed) || !strings(parsed.env) || !strings(parsed.volumeMounts) || !strings(parsed.volumes)) {
    throw new SidecarError(`${where}: not what sluice writes there (JSON lists env, volumeMounts, volumes); remove the annotation`);
  }
  return parsed as unknown as Injected;
}

const patchList = (field: string, entries: readonly object[]): KubeObject => (entries.length > 0 ? { [field]: structuredClone(entries) } : {});

function dig(object: unknown, path: readonly string[]): unknown {
  let at = object;
  for (const key of path) at = isRecord(at) ? at[key] : undefined;
  return at;
}

function nest(path: readonly string[], leaf: KubeObject): KubeObject {
  return path.reduceRight((inner, key) => ({ [key]: inner }), leaf);
}

const nonEmpty = (v: unknown): boolean => isRecord(v) && Object.keys(v).length > 0;

/**
 * Validates Kubernetes objects against the API's OpenAPI schemas (kubernetes-models, a recent
 * Kubernetes release), without a cluster. Every kind the generator writes or patches is listed;
 * any other kind is an error, never skipped.
 */
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { Job } from "kubernetes-models/batch/v1/Job";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";

type Model = new (data: never) => { validate(): void };

const MODELS: Readonly<Record<string, Model>> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/DaemonSet": DaemonSet,
  "batch/v1/Job": Job,
  "batch/v1/CronJob": CronJob,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

/** Throws, naming the object and the path of the first problem, unless `object` is valid. */
export function validateObject(object: unknown): void {
  const o = object as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };
  const id = `${String(o.apiVersion)}/${String(o.kind)}`;
  const Model = MODELS[id];
  if (!Model) throw new Error(`no schema for ${id} (${String(o.metadata?.name)}): add it to test/helpers/k8s-validate.ts`);
  try {
    new Model(object as never).validate();
  } catch (e) {
    throw new Error(`${id} ${String(o.metadata?.name)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  // The schemas do not hold names to the API's rules; the server does. Check the ones we write.
  const name = o.metadata?.name;
  if (typeof name !== "string" || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) throw new Error(`${id}: metadata.name ${String(name)} is not a DNS subdomain name`);
}

/**
 * What `kustomize build` makes of the generated kustomization, for the part of kustomize it
 * uses, throwing on anything else: `resources` (files), `patches` (files holding strategic-merge
 * patches, matched to a resource by apiVersion, kind, name and namespace, applied in order), then
 * `namespace` set on every object (kustomize's order: patches before the namespace).
 *
 * Strategic merge as the Kubernetes API defines it for the lists the patches touch: containers
 * and initContainers merge by name, env by name, volumes by name, volumeMounts by mountPath; an
 * element `$patch: delete` removes its match; `null` removes a field; maps merge; scalars replace.
 * Any other list in a patch, or any other directive, throws.
 */
import { parse, parseAllDocuments } from "yaml";

type Obj = Record<string, unknown>;

const MERGE_KEYS: Readonly<Record<string, string>> = { containers: "name", initContainers: "name", env: "name", volumes: "name", volumeMounts: "mountPath" };

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

function readDocs(files: ReadonlyMap<string, string>, path: string): Obj[] {
  const text = files.get(path);
  if (text === undefined) throw new Error(`${path}: no such file in the kustomization`);
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(text, { version: "1.1" })) {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
    const o = doc.toJS() as unknown;
    if (o === null) continue;
    if (!isObj(o)) throw new Error(`${path}: a document is not a mapping`);
    out.push(o);
  }
  return out;
}

/** The objects `kustomize build` would print for the kustomization in `files` (path -> text). */
export function kustomizeBuild(files: ReadonlyMap<string, string>): Obj[] {
  const k = parse(files.get("kustomization.yaml") ?? "", { version: "1.1" }) as Obj | null;
  if (!isObj(k) || k.apiVersion !== "kustomize.config.k8s.io/v1beta1" || k.kind !== "Kustomization") throw new Error("kustomization.yaml: not a Kustomization");
  const unknown = Object.keys(k).filter((key) => !["apiVersion", "kind", "namespace", "resources", "patches"].includes(key));
  if (unknown.length > 0) throw new Error(`kustomization.yaml: not supported here: ${unknown.join(", ")}`);
  const objects = ((k.resources ?? []) as string[]).flatMap((path) => readDocs(files, path));
  for (const entry of (k.patches ?? []) as Obj[]) {
    if (Object.keys(entry).join() !== "path") throw new Error(`patches: only { path } entries are supported: ${JSON.stringify(entry)}`);
    const [patch, ...more] = readDocs(files, entry.path as string);
    if (!patch || more.length > 0) throw new Error(`${String(entry.path)}: one patch per file`);
    const id = (o: Obj) => {
      const m = o.metadata as Obj;
      return `${String(o.apiVersion)}/${String(o.kind)}/${String(m.namespace ?? "default")}/${String(m.name)}`;
    };
    const targets = objects.filter((o) => id(o) === id(patch));
    if (targets.length !== 1) throw new Error(`${String(entry.path)}: ${targets.length} resources match ${id(patch)}`);
    const target = targets[0]!;
    objects[objects.indexOf(target)] = mergeMap(target, patch, String(entry.path));
  }
  if (typeof k.namespace === "string") for (const o of objects) (o.metadata as Obj).namespace = k.namespace;
  return objects;
}

function mergeMap(target: Obj, patch: Obj, at: string): Obj {
  const out: Obj = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) throw new Error(`${at}.${key}: directive not supported`);
    if (value === null) delete out[key];
    else if (Array.isArray(value)) out[key] = mergeList(key, Array.isArray(out[key]) ? (out[key] as unknown[]) : [], value, `${at}.${key}`);
    else if (isObj(value)) out[key] = mergeMap(isObj(out[key]) ? (out[key] as Obj) : {}, value, `${at}.${key}`);
    else out[key] = value;
  }
  return out;
}

function mergeList(field: string, target: readonly unknown[], patch: readonly unknown[], at: string): unknown[] {
  const key = MERGE_KEYS[field];
  if (key === undefined) throw new Error(`${at}: a list without a merge key this applier knows`);
  const out = [...target] as Obj[];
  for (const element of patch) {
    if (!isObj(element) || typeof element[key] !== "string") throw new Error(`${at}: an element without ${key}`);
    const i = out.findIndex((e) => e[key] === element[key]);
    const { $patch: directive, ...rest } = element;
    if (directive === "delete") {
      if (i >= 0) out.splice(i, 1);
    } else if (directive !== undefined) {
      throw new Error(`${at}: $patch: ${String(directive)} is not supported`);
    } else if (i >= 0) {
      out[i] = mergeMap(out[i]!, rest, `${at}.${String(element[key])}`);
    } else {
      out.push(mergeMap({}, rest, `${at}.${String(element[key])}`));
    }
  }
  return out;
}

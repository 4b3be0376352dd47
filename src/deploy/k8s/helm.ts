/**
 * `--emit helm`: a chart whose default values render the objects of `--emit yaml`. The templates
 * are those objects written out with a few values cut in: the image, the replica count, the
 * resources, the policy (and the checksum that rolls the pods when it changes), sluice's egress
 * rules, and the workloads themselves. What shape the output has (agents, CA, namespace) was
 * decided when it was generated: run the generator again to change that.
 *
 * The templates use a small part of Helm's template language only: `{{ .Values.x }}`, pipelines
 * into `quote`, `toYaml`, `nindent`, `sha256sum`, and one `range` (test/helpers/helm-render.ts
 * renders exactly that part, and refuses anything else).
 */
import { POLICY_KEY } from "./layout.ts";
import { objectFile, setupNotes } from "./emit.ts";
import { isRecord, toCommentedYaml, toYaml, type KubeObject } from "./manifests.ts";
import { RESOURCES, REPLICAS } from "./sluice-objects.ts";
import type { Sidecar } from "./sidecar.ts";

/** A value cut into a template: a scalar, a YAML block (toYaml), or a text block (a `|` literal). */
interface Hole {
  readonly path: readonly (string | number)[];
  readonly expr: string;
  readonly as: "scalar" | "block" | "text";
}

const CONTAINER = ["spec", "template", "spec", "containers", 0] as const;

/** The holes of each templated object, by kind and name; the others are written as they are. */
const HOLES: Readonly<Record<string, readonly Hole[]>> = {
  "ConfigMap/sluice-policy": [{ path: ["data", POLICY_KEY], expr: ".Values.policy", as: "text" }],
  "Deployment/sluice": [
    { path: ["spec", "replicas"], expr: ".Values.replicas", as: "scalar" },
    { path: ["spec", "template", "metadata", "annotations", "checksum/policy"], expr: ".Values.policy | sha256sum", as: "scalar" },
    { path: [...CONTAINER, "image"], expr: ".Values.image | quote", as: "scalar" },
    { path: [...CONTAINER, "resources"], expr: ".Values.resources", as: "block" },
  ],
  "NetworkPolicy/sluice": [{ path: ["spec", "egress"], expr: ".Values.networkPolicy.egress", as: "block" }],
};

const WORKLOADS_TEMPLATE = `{{- range .Values.workloads }}
---
{{ toYaml . }}
{{- end }}
`;

export function emitHelm(s: Sidecar): Map<string, string> {
  const files = new Map<string, string>();
  files.set("Chart.yaml", toYaml({ apiVersion: "v2", name: "sluice", description: "sluice, the egress firewall AI agents run behind, as the companion proxy of these workloads", type: "application", version: s.version, appVersion: s.version }));
  files.set("values.yaml", values(s));
  for (const o of [...s.sluiceObjects, ...s.networkPolicies]) {
    const file = objectFile(o.kind, o.metadata!.name!);
    files.set(`templates/${file}`, templatize(o, file, HOLES[`${o.kind}/${o.metadata!.name!}`] ?? []));
  }
  files.set("templates/workloads.yaml", WORKLOADS_TEMPLATE);
  return files;
}

function values(s: Sidecar): string {
  const egress = s.networkPolicies[0]!.spec!.egress;
  return toCommentedYaml(
    { image: s.image, replicas: REPLICAS, resources: RESOURCES, policy: s.policy.text, networkPolicy: { egress }, workloads: s.workloads.map((w) => w.object) },
    `${setupNotes(s)}\nThen: helm install sluice . -n ${s.namespace}`,
    {
      image: "sluice's container image (the repository's Dockerfile builds it).",
      replicas: "Each replica keeps its own signed decision log (README \"Kubernetes\").",
      policy: "sluice's policy. Adding agents or turning tls.intercept on or off changes the workloads and\nthe Secrets too: run sluice init sidecar again for that.",
      networkPolicy: "Where sluice's pods may connect: DNS, and the internet on the policy's ports without the\ncluster's own ranges. Run the generator again (or edit here) when egress.ports changes.",
      workloads: "The agents' workloads, with sluice's proxy settings in every container.",
    },
  );
}

const SENTINEL = "__sluice_helm_hole_";

/** `object` as YAML with each hole's value replaced by its template expression. */
function templatize(object: object, file: string, holes: readonly Hole[]): string {
  const copy = structuredClone(object) as KubeObject;
  holes.forEach((h, i) => setPath(copy, h.path, `${SENTINEL}${i}`));
  let text = toYaml(copy);
  // Text that is not ours must not be read as a template (it would be a bug to get here: the
  // values that may hold anything, the policy and the workloads, are in values.yaml).
  if (text.includes("{{")) throw new Error(`${file} holds "{{", which Helm would read as a template`);
  holes.forEach((h, i) => {
    const line = new RegExp(`^( *)(- )?(\\S[^\\n]*): ${SENTINEL}${i}$`, "m").exec(text);
    if (!line) throw new Error(`${file}: no place for ${h.expr}`);
    const [whole, spaces, dash = "", key] = line;
    const inner = spaces!.length + dash.length + 2;
    const pad = " ".repeat(inner);
    const replacement =
      h.as === "scalar"
        ? `${spaces}${dash}${key}: {{ ${h.expr} }}`
        : h.as === "block"
          ? `${spaces}${dash}${key}:\n${pad}{{- toYaml ${h.expr} | nindent ${inner} }}`
          : `${spaces}${dash}${key}: |\n${pad}{{- ${h.expr} | nindent ${inner} }}`;
    text = text.replace(whole, () => replacement);
  });
  return text;
}

function setPath(object: KubeObject, path: readonly (string | number)[], value: unknown): void {
  let at: unknown = object;
  for (const key of path.slice(0, -1)) at = (at as Record<string | number, unknown>)[key];
  if (!isRecord(at) && !Array.isArray(at)) throw new Error(`no ${path.join(".")} to template`);
  (at as Record<string | number, unknown>)[path.at(-1)!] = value;
}

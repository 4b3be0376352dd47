/**
 * The test-side tools the generator's tests trust: the schema validator, the Helm renderer and
 * the kustomize applier. Each is shown to catch what it must, so a test that uses it can fail.
 */
import { describe, expect, test } from "bun:test";
import { renderChart, renderTemplate } from "../../helpers/helm-render.ts";
import { validateObject } from "../../helpers/k8s-validate.ts";
import { kustomizeBuild } from "../../helpers/kustomize-apply.ts";

const deployment = () => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web" },
  spec: { selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "app", image: "app:1", env: [{ name: "A", value: "1" }] }] } } },
});

describe("validateObject", () => {
  test("accepts a valid object", () => {
    validateObject(deployment());
  });

  test("rejects a broken object, naming it and the path", () => {
    const broken = deployment();
    (broken.spec.template.spec.containers[0]!.env[0] as Record<string, unknown>).value = 1;
    expect(() => validateObject(broken)).toThrow("apps/v1/Deployment web: data/spec/template/spec/containers/0/env/0/value must be string");
    const noName = deployment() as Record<string, unknown>;
    (noName.spec as { template: { spec: { containers: unknown[] } } }).template.spec.containers = [{ image: "x" }];
    expect(() => validateObject(noName)).toThrow("containers/0 must have required property name");
  });

  test("rejects a kind it has no schema for, and a name the API would refuse", () => {
    expect(() => validateObject({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" } })).toThrow("no schema for v1/Secret (s)");
    expect(() => validateObject({ ...deployment(), metadata: { name: "Web_1" } })).toThrow("metadata.name Web_1 is not a DNS subdomain name");
  });
});

describe("renderTemplate (Helm's template subset)", () => {
  const top = { Values: { name: "web", n: 2, on: true, off: false, list: ["a", "b"], map: { k: "v", m: { x: 1 } }, text: "l1\nl2\n" }, Release: { Namespace: "ns", Name: "r" } };

  test("values, pipelines and functions as Helm prints them", () => {
    expect(renderTemplate('name: {{ .Values.name | quote }} n={{ .Values.n }} {{ .Release.Namespace }} {{ "lit" }}', top)).toBe('name: "web" n=2 ns lit');
    expect(renderTemplate("a:\n  {{- toYaml .Values.map | nindent 2 }}\nb", top)).toBe("a:\n  k: v\n  m:\n    x: 1\nb");
    expect(renderTemplate("t: |\n  {{- .Values.text | nindent 2 }}", top)).toBe("t: |\n  l1\n  l2\n  ");
    expect(renderTemplate("{{ .Values.name | indent 3 }}|{{ .Values.name | b64enc }}|{{ .Values.name | sha256sum }}", top)).toBe(`   web|d2Vi|${new Bun.CryptoHasher("sha256").update("web").digest("hex")}`);
  });

  test("if / else, range with . and $, and trim markers on both sides", () => {
    expect(renderTemplate("{{- if .Values.on }}yes{{- else }}no{{- end }}|{{ if .Values.off }}yes{{ else }}no{{ end }}|{{ if .Values.missing }}x{{ end }}", top)).toBe("yes|no|");
    expect(renderTemplate("{{- range .Values.list }}\n- {{ . }} in {{ $.Release.Namespace }}\n{{- end }}\n", top)).toBe("\n- a in ns\n- b in ns\n");
    expect(renderTemplate("a  {{- .Values.name -}}  \n b", top)).toBe("aweb" + "b");
  });

  test("anything outside the subset throws", () => {
    const refused: [string, string | RegExp][] = [
      ['{{ include "x" . }}', "function include is not supported"],
      ["{{ .Values.name | default \"x\" }}", "function default is not supported"],
      ["{{ with .Values.map }}{{ end }}", "{{ with }} is not supported"],
      ["{{ $x := 1 }}", "not supported"],
      ["{{/* a comment */}}", "not supported"],
      ["{{ .Values.map }}", /printing \{"k":"v"/],
      ["{{ .Values.missing }}", "printing a missing value"],
      ["{{ if .Values.on }}open", "missing {{ end }}"],
      ["{{ end }}", "unexpected {{ end }}"],
      ["{{ .Values.name", "unclosed {{"],
      ["{{-.Values.n}}", '"{{-" must be followed by a space'],
      ["{{ range .Values.map }}{{ end }}", "range over a object: only lists are supported"],
    ];
    for (const [src, message] of refused) expect(() => renderTemplate(src, top)).toThrow(message);
  });

  test("renderChart: default values, templates in order, empty documents dropped", () => {
    const files = new Map([
      ["Chart.yaml", "apiVersion: v2\nname: c\nversion: 1.0.0\n"],
      ["values.yaml", "image: app:1\ncount: 0644\n"],
      ["templates/a.yaml", "---\nkind: A\nimage: {{ .Values.image | quote }}\nmode: {{ .Values.count }}\n---\n"],
    ]);
    expect(renderChart(files)).toEqual([{ kind: "A", image: "app:1", mode: 420 }]);
    expect(() => renderChart(new Map([...files, ["templates/_helpers.tpl", ""]]))).toThrow("only .yaml templates are supported");
    expect(() => renderChart(new Map([...files, ["Chart.yaml", "apiVersion: v1\nname: c\n"]]))).toThrow("Chart.yaml needs apiVersion v2");
  });
});

describe("kustomizeBuild (resources, strategic-merge patches, namespace)", () => {
  const files = (patch: string, extra: Record<string, string> = {}) =>
    new Map(
      Object.entries({
        "kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: team\nresources: [w.yaml]\npatches:\n  - path: p.yaml\n",
        "w.yaml": `apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: app:1\n          env: [{ name: A, value: "1" }, { name: B, valueFrom: { x: 1 } }]\n      volumes: [{ name: v, emptyDir: {} }]\n`,
        "p.yaml": patch,
        ...extra,
      }),
    );
  const head = "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  template:\n    spec:\n";

  test("merges by the API's keys: env by name (in place, or appended), a field set to null removed, $patch: delete", () => {
    const [o] = kustomizeBuild(files(`${head}      containers:\n        - name: app\n          env: [{ name: B, value: "2", valueFrom: null }, { name: C, value: "3" }, { name: A, $patch: delete }]\n      volumes: [{ name: w, emptyDir: {} }]\n`));
    expect(o).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "team" },
      spec: { template: { spec: { containers: [{ name: "app", image: "app:1", env: [{ name: "B", value: "2" }, { name: "C", value: "3" }] }], volumes: [{ name: "v", emptyDir: {} }, { name: "w", emptyDir: {} }] } } },
    });
  });

  test("throws on what it does not know, and on a patch that matches nothing", () => {
    expect(() => kustomizeBuild(files(`${head}      containers:\n        - name: app\n          args: [x]\n`))).toThrow("a list without a merge key this applier knows");
    expect(() => kustomizeBuild(files(`${head}      containers:\n        - name: app\n          env: [{ name: A, $patch: replace }]\n`))).toThrow("$patch: replace is not supported");
    expect(() => kustomizeBuild(files(`${head}      $retainKeys: [a]\n`))).toThrow("directive not supported");
    expect(() => kustomizeBuild(files(head.replace("name: web", "name: api")))).toThrow("0 resources match apps/v1/Deployment/default/api");
    expect(() => kustomizeBuild(files(head, { "kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [w.yaml]\ncommonLabels: { a: b }\n" }))).toThrow("not supported here: commonLabels");
  });
});

/**
 * `sluice init sidecar`'s generator over realistic manifests (test/fixtures/k8s): golden outputs
 * compared byte for byte, every object of every emit mode validated against the Kubernetes
 * schemas, the kustomization (applied by test/helpers/kustomize-apply.ts) and the Helm chart
 * (rendered by test/helpers/helm-render.ts) giving exactly the objects of `--emit yaml`, a run
 * over its own output writing the same bytes, the policy passing sluice's own schema and compiler,
 * and no secret anywhere in what it writes.
 *
 * UPDATE_GOLDEN=1 bun test test/unit/deploy rewrites the golden files; read every one before
 * committing it.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { compilePolicy } from "../../../src/config/compile.ts";
import { builtinRules, DEFAULT_CONFIG_TEXT } from "../../../src/config/load.ts";
import { parseConfigText } from "../../../src/config/parse.ts";
import { allObjects, emitKustomize, emitYaml } from "../../../src/deploy/k8s/emit.ts";
import { emitHelm } from "../../../src/deploy/k8s/helm.ts";
import { generateSidecar, type Sidecar, type SidecarInput } from "../../../src/deploy/k8s/sidecar.ts";
import { scanText } from "../../../src/scan/text-scan.ts";
import { renderChart } from "../../helpers/helm-render.ts";
import { validateObject } from "../../helpers/k8s-validate.ts";
import { kustomizeBuild } from "../../helpers/kustomize-apply.ts";

const FIXTURES = join(import.meta.dir, "../../fixtures/k8s");
const GOLDEN = join(FIXTURES, "golden");
const UPDATE = process.env.UPDATE_GOLDEN === "1";
const fixture = (name: string) => readFileSync(join(FIXTURES, name), "utf8");

type Mode = "yaml" | "kustomize" | "helm";

interface Case {
  readonly name: string;
  readonly spec: string;
  readonly policy?: string;
  readonly options?: Partial<Omit<SidecarInput, "network">> & { network?: Partial<SidecarInput["network"]> };
  /** Modes whose files are kept as golden files (all modes are checked against --emit yaml). */
  readonly golden: readonly Mode[];
}

const CASES: readonly Case[] = [
  { name: "deployment", spec: "deployment.yaml", golden: ["yaml", "kustomize", "helm"] },
  // Existing env (an old HTTPS_PROXY and http_proxy), volumes and mounts; NO_PROXY asked for.
  { name: "statefulset", spec: "statefulset.yaml", options: { network: { noProxyCluster: true, apiServerCidrs: ["172.20.0.10/32"] } }, golden: ["yaml", "kustomize"] },
  // TLS interception with the CA given, the cluster's own ranges, an allowed range, an image.
  {
    name: "cronjob",
    spec: "cronjob.yaml",
    policy: "policy-review.yaml",
    options: { caCert: { source: "ca.crt", pem: fixture("ca.crt") }, image: "registry.example.com/sluice:0.1.0", network: { clusterCidrs: ["10.244.0.0/16"], serviceCidrs: ["10.96.0.0/12"], allowCidrs: ["10.50.0.0/16"] } },
    golden: ["yaml"],
  },
  // Three workloads, two of them named alike; interception without the CA (the pods wait for it).
  { name: "multi", spec: "multi.yaml", policy: "policy-intercept.yaml", options: { namespace: "agents-prod" }, golden: ["yaml", "kustomize", "helm"] },
];

/** A stand-in for node:tls rootCertificates, so golden files do not change with Bun's roots. */
const ROOTS = [fixture("root.crt")];

function inputFor(c: Case, specText = fixture(c.spec)): SidecarInput {
  const { network, ...rest } = c.options ?? {};
  return {
    specFile: c.spec,
    specText,
    policySource: c.policy ?? "embedded default",
    policyText: c.policy ? fixture(c.policy) : DEFAULT_CONFIG_TEXT,
    image: "sluice:0.1.0",
    clusterDomain: "cluster.local",
    systemRoots: ROOTS,
    version: "0.1.0",
    ...rest,
    network: { clusterCidrs: [], serviceCidrs: [], allowCidrs: [], noProxyCluster: false, apiServerCidrs: [], ...network },
  };
}

function emit(s: Sidecar, mode: Mode): Map<string, string> {
  if (mode === "yaml") return new Map([["sidecar.yaml", emitYaml(s)]]);
  return mode === "kustomize" ? emitKustomize(s) : emitHelm(s);
}

/** Compares `text` with a golden file, or rewrites it. */
function expectGoldenFile(path: string, text: string): void {
  if (UPDATE) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return;
  }
  expect(existsSync(path)).toBe(true);
  expect(text).toBe(readFileSync(path, "utf8"));
}

/** Compares `files` with a golden directory (every file, and no other), or rewrites it. */
function expectGoldenDir(dir: string, files: ReadonlyMap<string, string>): void {
  if (UPDATE) rmSync(dir, { recursive: true, force: true });
  else {
    const onDisk = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
    expect(onDisk.sort()).toEqual([...files.keys()].sort());
  }
  for (const [path, text] of files) expectGoldenFile(join(dir, path), text);
}

const parseStream = (text: string) =>
  parseAllDocuments(text, { version: "1.1" })
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o !== null);

const key = (o: Record<string, unknown>) => {
  const m = o.metadata as Record<string, unknown>;
  return `${String(o.kind)}/${String(m.namespace)}/${String(m.name)}`;
};
const byKey = (objects: Record<string, unknown>[]) => new Map(objects.map((o) => [key(o), o]));

describe.each(CASES)("init sidecar: $name", (c) => {
  const sidecar = generateSidecar(inputFor(c));
  const yaml = emitYaml(sidecar);
  const objects = parseStream(yaml);

  test.each(c.golden)("--emit %s matches its golden files", (mode) => {
    if (mode === "yaml") expectGoldenFile(join(GOLDEN, c.name, "sidecar.yaml"), yaml);
    else expectGoldenDir(join(GOLDEN, c.name, mode), emit(sidecar, mode));
  });

  test("every object of --emit yaml passes the Kubernetes schemas, and is the generator's", () => {
    expect(objects).toEqual(JSON.parse(JSON.stringify(allObjects(sidecar))));
    for (const o of objects) validateObject(o);
  });

  test("--emit kustomize builds the same objects, each valid", () => {
    const built = kustomizeBuild(emitKustomize(sidecar));
    for (const o of built) validateObject(o);
    expect(byKey(built)).toEqual(byKey(objects));
  });

  test("--emit helm renders the same objects with its default values, each valid", () => {
    const files = emitHelm(sidecar);
    for (const path of files.keys()) expect(path).toMatch(/^(Chart\.yaml|values\.yaml|templates\/[a-z0-9-]+\.yaml)$/);
    const rendered = renderChart(files, { Name: "sluice", Namespace: sidecar.namespace });
    for (const o of rendered) validateObject(o);
    expect(byKey(rendered)).toEqual(byKey(objects));
  });

  test("a run over its own --emit yaml output writes the same bytes", () => {
    expect(emitYaml(generateSidecar({ ...inputFor(c, yaml), specFile: "sidecar.yaml" }))).toBe(yaml);
  });

  test("a run over its own policy as --config writes the same policy", () => {
    expect(generateSidecar({ ...inputFor(c), policyText: sidecar.policy.text }).policy.text).toBe(sidecar.policy.text);
  });

  test("the policy in the ConfigMap passes sluice's schema and compiler, and sets what the cluster needs", async () => {
    const cm = objects.find((o) => o.kind === "ConfigMap" && (o.metadata as { name: string }).name === "sluice-policy")!;
    const text = (cm.data as Record<string, string>)["sluice.yaml"]!;
    expect(text).toBe(sidecar.policy.text);
    const config = parseConfigText(text, "sluice.yaml");
    compilePolicy(config, { agentTokenDigests: new Map(), digest: "t", systemNameservers: [{ hostname: "10.96.0.10", port: 53 }], builtinRules: await builtinRules() });
    expect(config.proxy.listen).toEqual({ hostname: "0.0.0.0", port: 8888 });
    expect(config.admin.listen).toEqual({ hostname: "0.0.0.0", port: 8889 });
    expect(config.dns.listen).toBe("off");
    expect(config.audit.export.stdout).toBe("otlp");
    expect(config.audit.dir).toBe("/var/lib/sluice/audit");
    const agents = sidecar.workloads.map((w) => w.agent);
    expect(config.agents.filter((a) => agents.includes(a.name)).map((a) => [a.name, a.token_file, a.token_sha256])).toEqual(agents.map((a) => [a, `/etc/sluice/agent-tokens/${a}`, undefined]));
    expect(config.tls.ca !== undefined).toBe(config.tls.intercept);
  });

  test("every container of every workload goes through sluice with its agent's token, the token first", () => {
    for (const w of sidecar.workloads) {
      const pod = podSpec(w.object);
      for (const container of [...(pod.containers as Container[]), ...((pod.initContainers ?? []) as Container[])]) {
        const names = container.env!.map((e) => e.name);
        expect(names.indexOf("SLUICE_AGENT_TOKEN")).toBeLessThan(names.indexOf("HTTP_PROXY"));
        for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "SLUICE_AGENT_TOKEN"]) expect(names.filter((n) => n === name)).toHaveLength(1);
        expect(container.env!.find((e) => e.name === "HTTPS_PROXY")!.value).toBe(`http://${w.agent}:$(SLUICE_AGENT_TOKEN)@sluice.${sidecar.namespace}.svc.cluster.local:8888`);
        expect(container.env!.find((e) => e.name === "SLUICE_AGENT_TOKEN")!.valueFrom).toEqual({ secretKeyRef: { name: "sluice-agent-tokens", key: w.agent } });
      }
    }
  });

  test("no secret is written: no Secret object, no private key, no token, nothing DLP would flag", async () => {
    const rules = await builtinRules();
    const outputs = (["yaml", "kustomize", "helm"] as const).flatMap((m) => [...emit(sidecar, m).values()]);
    for (const text of outputs) {
      expect(text).not.toContain("PRIVATE KEY");
      expect(text).not.toMatch(/^kind: Secret$/m);
      // The only long hex string is the policy's checksum (a digest of a public ConfigMap).
      expect(text.match(/\b[0-9a-f]{32,}\b/g) ?? []).toEqual(text.includes(sidecar.policySha256) ? text.match(new RegExp(sidecar.policySha256, "g"))! : []);
      // The proxy URL's password is the reference $(SLUICE_AGENT_TOKEN), which Kubernetes fills in
      // from the Secret: a placeholder, as ${VAR} is.
      expect(scanText(rules, text)).toEqual([]);
    }
  });
});

interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
}

function podSpec(o: Record<string, unknown>): Record<string, unknown> {
  const spec = o.spec as Record<string, unknown>;
  const template = (o.kind === "CronJob" ? ((spec.jobTemplate as Record<string, unknown>).spec as Record<string, unknown>).template : spec.template) as Record<string, unknown>;
  return template.spec as Record<string, unknown>;
}

describe("init sidecar: the pieces", () => {
  test("an existing entry of sluice's is replaced, not duplicated: the kustomization deletes it first", () => {
    const s = generateSidecar(inputFor(CASES[1]!));
    const files = emitKustomize(s);
    expect([...files.keys()].filter((p) => p.startsWith("patches/"))).toEqual(["patches/statefulset-indexer.remove.yaml", "patches/statefulset-indexer.yaml"]);
    const containers = podSpec(s.workloads[0]!.object).containers as Container[];
    // The user's other entries stay, in their order; the old proxy settings are gone.
    expect(containers[0]!.env!.map((e) => e.name).slice(0, 3)).toEqual(["INDEX_DIR", "OPENAI_API_KEY", "LOG_LEVEL"]);
    expect(JSON.stringify(containers)).not.toContain("corp-proxy");
    expect(JSON.stringify(containers)).not.toContain("proxy.corp.example");
  });

  test("run again with fewer options, the workload keeps nothing of sluice's the new run did not ask for; the user's own entries stay", () => {
    // First: the CA (interception) and NO_PROXY; then the same output with neither.
    const first = generateSidecar({ ...inputFor(CASES[2]!), network: { ...inputFor(CASES[2]!).network, noProxyCluster: true, apiServerCidrs: ["172.20.0.10/32"] } });
    const firstPod = JSON.stringify(podSpec(first.workloads[0]!.object));
    for (const seen of ["NO_PROXY", "SSL_CERT_FILE", "/etc/sluice-ca", '"sluice-ca"']) expect(firstPod).toContain(seen);
    const again = generateSidecar({ ...inputFor(CASES[0]!), specText: emitYaml(first), specFile: "sidecar.yaml" });
    const pod = podSpec(again.workloads[0]!.object);
    const text = JSON.stringify(pod);
    for (const gone of ["NO_PROXY", "no_proxy", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "/etc/sluice-ca", '"sluice-ca"']) expect(text).not.toContain(gone);
    expect(text).toContain("HTTPS_PROXY");
    // And the kustomization does the same to the first run's output.
    const built = kustomizeBuild(emitKustomize(again));
    expect(JSON.stringify(built.find((o) => o.kind === "CronJob"))).not.toContain("NO_PROXY");
    // A NO_PROXY of the user's own (not in the annotation) is left alone.
    const own = emitYaml(generateSidecar(inputFor(CASES[0]!))).replace("- name: SLUICE_AGENT_TOKEN", "- name: NO_PROXY\n              value: localhost\n            - name: SLUICE_AGENT_TOKEN");
    const kept = JSON.stringify(podSpec(generateSidecar({ ...inputFor(CASES[0]!), specText: own, specFile: "sidecar.yaml" }).workloads[0]!.object));
    expect(kept).toContain('"name":"NO_PROXY","value":"localhost"');
  });

  test("run again without a workload, its agent leaves the policy; an agent of the operator's own stays", () => {
    const multi = generateSidecar(inputFor(CASES[3]!));
    expect(multi.policy.config.agents.map((a) => a.name)).toEqual(["deployment-coder", "job-coder", "node-scout"]);
    const withLaptop = multi.policy.text.replace("agents:\n", "agents:\n  - { name: laptop, token_file: /etc/tokens/laptop }\n");
    const again = generateSidecar({ ...inputFor(CASES[0]!), policyText: withLaptop });
    expect(again.policy.config.agents.map((a) => a.name)).toEqual(["laptop", "web"]);
  });

  test("a workload's agent listed in the policy keeps its egress lists and gets its token from the Secret", () => {
    const policyText = "version: 1\nagents:\n  - name: web\n    token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n    egress: { allow: [api.github.com] }\n";
    const s = generateSidecar({ ...inputFor(CASES[0]!), policyText, policySource: "team.yaml" });
    expect(s.policy.config.agents).toEqual([expect.objectContaining({ name: "web", token_file: "/etc/sluice/agent-tokens/web", egress: { allow: ["api.github.com"] } })]);
    expect(s.policy.text).not.toContain("token_sha256");
  });

  test("the CA ConfigMap holds the certificate and the roots before it; without --ca-cert the pods wait for one", () => {
    const s = generateSidecar(inputFor(CASES[2]!));
    const cm = s.sluiceObjects.find((o) => o.kind === "ConfigMap" && o.metadata!.name === "sluice-ca") as { data: Record<string, string> };
    expect(cm.data["ca.pem"]).toBe(fixture("ca.crt"));
    expect(cm.data["ca-bundle.pem"]).toBe(`${fixture("root.crt").trim()}\n\n# sluice interception CA\n${fixture("ca.crt")}`);
    const multi = generateSidecar(inputFor(CASES[3]!));
    expect(multi.caConfigMapMissing).toBe(true);
    expect(multi.sluiceObjects.some((o) => o.metadata!.name === "sluice-ca")).toBe(false);
    expect(emitYaml(multi)).toContain("kubectl -n agents-prod create configmap sluice-ca");
  });

  test("a Deployment and a Job of the same name are two agents, kind-name", () => {
    expect(generateSidecar(inputFor(CASES[3]!)).workloads.map((w) => w.agent)).toEqual(["deployment-coder", "job-coder", "node-scout"]);
  });

  test("the Helm chart's policy value rolls sluice's pods: the checksum is the policy's sha256", () => {
    const s = generateSidecar(inputFor(CASES[0]!));
    const files = emitHelm(s);
    const changed = new Map(files);
    changed.set("values.yaml", files.get("values.yaml")!.replace("mode: enforce", "mode: audit"));
    const deploymentOf = (objects: Record<string, unknown>[]) => JSON.stringify(objects.find((o) => o.kind === "Deployment" && (o.metadata as { name: string }).name === "sluice"));
    expect(deploymentOf(renderChart(changed))).not.toBe(deploymentOf(renderChart(files)));
    expect(deploymentOf(renderChart(files))).toContain(s.policySha256);
  });

  test("warnings: files the policy needs in sluice's pod, and --no-proxy-cluster without the API server's addresses", () => {
    const policyText = "version: 1\ndlp:\n  known_secrets:\n    env: [OPENAI_API_KEY]\n";
    const base = inputFor(CASES[0]!);
    const s = generateSidecar({ ...base, policyText, network: { ...base.network, noProxyCluster: true } });
    expect(s.warnings).toHaveLength(2);
    expect(s.warnings[0]).toContain("dlp.known_secrets.env.0: OPENAI_API_KEY");
    expect(s.warnings[1]).toContain("--api-server-cidr");
    expect(generateSidecar(base).warnings).toEqual([]);
    // Files the pod does not get: another agent's token, the MCP baselines, a CA without interception.
    const more = "version: 1\nagents:\n  - { name: laptop, token_file: /etc/tokens/laptop }\nmcp: { baselines_file: /var/lib/pins.db }\ntls: { ca: { cert_file: /etc/ca.pem, key_file: /etc/ca.key } }\n";
    const w = generateSidecar({ ...base, policyText: more }).warnings.join("\n");
    for (const k of ["agents.0.token_file: /etc/tokens/laptop", "mcp.baselines_file: /var/lib/pins.db", "tls.ca.key_file: /etc/ca.key"]) expect(w).toContain(k);
  });

  test("the golden directory holds no stale case or mode", () => {
    if (UPDATE) return;
    expect(readdirSync(GOLDEN).sort()).toEqual(CASES.map((c) => c.name).sort());
    for (const c of CASES) expect(readdirSync(join(GOLDEN, c.name)).sort()).toEqual(c.golden.map((m) => (m === "yaml" ? "sidecar.yaml" : m)).sort());
  });
});

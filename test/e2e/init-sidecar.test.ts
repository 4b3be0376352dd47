/**
 * `sluice init sidecar` through dist/sluice: all three emit modes write what the generator makes
 * (each object valid, the kustomization and the chart giving the objects of --emit yaml), a run
 * over its own output writes the same bytes, and errors exit as the other commands do, writing
 * nothing. Then the emitted policy is put to work: with the Secrets' files laid out as the pod
 * mounts them (made with the commands the output's notes give), `check-config` accepts it and
 * `sluice run` starts on it, answers /healthz without a token, tells the agent apart by its token
 * as the proxy password, and its signed log verifies against the audit key's public half.
 * Everything stays on loopback: the one proxied request is refused by policy before any lookup.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { rootCertificates } from "node:tls";
import { parseAllDocuments } from "yaml";
import pkg from "../../package.json" with { type: "json" };
import { DEFAULT_CONFIG_TEXT } from "../../src/config/load.ts";
import { emitKustomize, emitYaml } from "../../src/deploy/k8s/emit.ts";
import { emitHelm } from "../../src/deploy/k8s/helm.ts";
import { generateSidecar, type SidecarInput } from "../../src/deploy/k8s/sidecar.ts";
import { renderChart } from "../helpers/helm-render.ts";
import { validateObject } from "../helpers/k8s-validate.ts";
import { kustomizeBuild } from "../helpers/kustomize-apply.ts";
import { BIN, launchSluice, tempDir } from "../helpers/sluice.ts";

const T = 60_000;
const FIXTURES = join(import.meta.dir, "../fixtures/k8s");
const dir = tempDir("slt-sidecar-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (args: string[], stdin?: string) => {
  const r = Bun.spawnSync([BIN, ...args], { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

/** What the generator makes in process for the same command line (the binary's defaults). */
function expected(spec: string, over: Partial<SidecarInput> = {}): SidecarInput {
  return {
    specFile: spec,
    specText: readFileSync(spec, "utf8"),
    policySource: "embedded default",
    policyText: DEFAULT_CONFIG_TEXT,
    image: `sluice:${pkg.version}`,
    clusterDomain: "cluster.local",
    systemRoots: rootCertificates,
    version: pkg.version,
    network: { clusterCidrs: [], serviceCidrs: [], allowCidrs: [], noProxyCluster: false, apiServerCidrs: [] },
    ...over,
  };
}

const readDir = (root: string) =>
  new Map(
    readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => {
        const path = join(e.parentPath, e.name);
        return [relative(root, path), readFileSync(path, "utf8")] as const;
      }),
  );

const objectsOf = (yaml: string) =>
  parseAllDocuments(yaml, { version: "1.1" })
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o !== null);

const sorted = (objects: Record<string, unknown>[]) => objects.map((o) => JSON.stringify(o)).sort();

const openssl = (args: string[]) => {
  const r = Bun.spawnSync(["openssl", ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
};

describe("sluice init sidecar (dist/sluice)", () => {
  test("sluice init with no argument still prints the embedded default policy", () => {
    expect(cli(["init"])).toEqual({ code: 0, out: DEFAULT_CONFIG_TEXT, err: "" });
  });

  test("--emit yaml: the generator's output, valid; a run over it (from a file, then from stdin) writes the same bytes", () => {
    const spec = join(FIXTURES, "multi.yaml");
    const r = cli(["init", "sidecar", "--inject-spec", spec, "--namespace", "agents-prod"]);
    expect([r.code, r.err]).toEqual([0, ""]);
    expect(r.out).toBe(emitYaml(generateSidecar(expected(spec, { namespace: "agents-prod" }))));
    for (const o of objectsOf(r.out)) validateObject(o);
    const out = join(dir, "once.yaml");
    expect(cli(["init", "sidecar", "--inject-spec", spec, "--namespace", "agents-prod", "-o", out])).toEqual({ code: 0, out: "", err: "" });
    expect(readFileSync(out, "utf8")).toBe(r.out);
    const again = cli(["init", "sidecar", "--inject-spec", "-", "--namespace", "agents-prod"], r.out);
    expect([again.code, again.err]).toEqual([0, ""]);
    expect(again.out).toBe(r.out);
  });

  test("--emit kustomize and --emit helm: new directories whose objects are --emit yaml's, each valid", () => {
    const spec = join(FIXTURES, "statefulset.yaml");
    const yaml = cli(["init", "sidecar", "--inject-spec", spec]).out;
    const sidecar = generateSidecar(expected(spec));
    for (const [mode, emit, build] of [
      ["kustomize", emitKustomize, kustomizeBuild],
      ["helm", emitHelm, (files: Map<string, string>) => renderChart(files, { Name: "sluice", Namespace: "agents" })],
    ] as const) {
      const out = join(dir, mode);
      const r = cli(["init", "sidecar", "--inject-spec", spec, "--emit", mode, "-o", out]);
      expect([r.code, r.err]).toEqual([0, ""]);
      expect(r.out).toStartWith(`wrote ${out} (`);
      const files = readDir(out);
      expect(files).toEqual(emit(sidecar));
      const objects = build(files);
      for (const o of objects) validateObject(o);
      expect(sorted(objects)).toEqual(sorted(objectsOf(yaml)));
    }
  });

  test(
    "the emitted policy passes check-config and runs, with the Secrets' files as the pod mounts them",
    async () => {
      // The interception CA and the audit key, made as the output's notes say.
      const keys = join(dir, "keys");
      mkdirSync(keys);
      openssl(["req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", join(keys, "ca.key"), "-out", join(keys, "ca.crt"), "-days", "3650", "-subj", "/CN=sluice interception CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
      openssl(["genpkey", "-algorithm", "ed25519", "-out", join(keys, "audit-key.pem")]);
      openssl(["pkey", "-in", join(keys, "audit-key.pem"), "-pubout", "-out", join(keys, "audit-pub.pem")]);

      const spec = join(FIXTURES, "cronjob.yaml");
      const r = cli(["init", "sidecar", "--inject-spec", spec, "--config", join(FIXTURES, "policy-review.yaml"), "--ca-cert", join(keys, "ca.crt")]);
      expect([r.code, r.err]).toEqual([0, ""]);
      const objects = objectsOf(r.out);
      for (const o of objects) validateObject(o);
      const data = (name: string) => (objects.find((o) => o.kind === "ConfigMap" && (o.metadata as { name: string }).name === name)!.data as Record<string, string>);
      expect(data("sluice-ca")["ca.pem"]).toBe(readFileSync(join(keys, "ca.crt"), "utf8"));
      expect(data("sluice-ca")["ca-bundle.pem"]!.split("BEGIN CERTIFICATE")).toHaveLength(rootCertificates.length + 2);

      // /etc/sluice/... and /var/lib/sluice as the pod has them, under a test directory.
      const root = join(dir, "pod");
      const secret = (path: string, text: string) => {
        mkdirSync(join(path, ".."), { recursive: true });
        writeFileSync(path, text, { mode: 0o600 });
        chmodSync(path, 0o600);
      };
      const token = "7f3c9e1a5b2d4f6081a3c5e7092b4d6f";
      secret(join(root, "etc/agent-tokens/nightly-review"), `${token}\n`);
      secret(join(root, "etc/admin/token"), "0a1b2c3d4e5f60718293a4b5c6d7e8f9\n");
      secret(join(root, "etc/audit-key/signing-key.pem"), readFileSync(join(keys, "audit-key.pem"), "utf8"));
      secret(join(root, "etc/ca/tls.crt"), readFileSync(join(keys, "ca.crt"), "utf8"));
      secret(join(root, "etc/ca/tls.key"), readFileSync(join(keys, "ca.key"), "utf8"));
      const policy = data("sluice-policy")["sluice.yaml"]!.replaceAll("/etc/sluice/", `${root}/etc/`).replaceAll("/var/lib/sluice", `${root}/state`);
      writeFileSync(join(root, "sluice.yaml"), policy);
      const check = cli(["check-config", join(root, "sluice.yaml")]);
      expect([check.code, check.err]).toEqual([0, ""]);
      expect(check.out).toStartWith("ok:");

      // Loopback and free ports instead of the pod's 0.0.0.0:8888 and :8889; nothing else changed.
      const resolv = join(root, "resolv.conf");
      writeFileSync(resolv, "nameserver 127.0.0.1\n");
      const s = await launchSluice({ configYaml: policy.replace("0.0.0.0:8888", "127.0.0.1:0").replace("0.0.0.0:8889", "127.0.0.1:0"), dir: root, env: { SLUICE_RESOLV_CONF: resolv } });
      try {
        expect((await fetch(`${s.adminUrl}/healthz`)).status).toBe(200);
        // The proxy URL's form: the agent's name as user, its token as password. Refused by
        // policy (the host is not allowed) before any lookup, with the agent named.
        const asAgent = await fetch("http://not-allowed.invalid/", { proxy: `http://nightly-review:${token}@127.0.0.1:${s.proxyPort}` });
        expect([asAgent.status, asAgent.headers.get("x-sluice-rule")]).toEqual([403, "egress.not-allowed"]);
        const record = await s.waitForLine((l) => JSON.stringify(l).includes('"key":"sluice.agent","value":{"stringValue":"nightly-review"}'));
        expect(JSON.stringify(record)).toContain("egress.not-allowed");
        const stranger = await fetch("http://not-allowed.invalid/", { proxy: `http://nightly-review:${"0".repeat(32)}@127.0.0.1:${s.proxyPort}` });
        expect(stranger.status).toBe(407);
      } finally {
        expect(await s.stop()).toBe(0);
      }
      const verify = cli(["audit", "verify", join(root, "state/audit"), "--pubkey", join(keys, "audit-pub.pem")]);
      expect([verify.code, verify.err]).toEqual([0, ""]);
    },
    T,
  );

  test("usage errors exit 2, bad input exits 1 naming the problem, and nothing is written", () => {
    const spec = join(FIXTURES, "deployment.yaml");
    expect(cli(["init", "sidecar"]).code).toBe(2);
    expect(cli(["init", "sidecar"]).err).toContain("init sidecar needs --inject-spec FILE");
    expect(cli(["init", "sidecar", "--inject-spec", spec, "--emit", "json"]).err).toContain("--emit json: one of yaml, kustomize, helm");
    expect(cli(["init", "sidecar", "--inject-spec", spec, "--emit", "helm"]).code).toBe(2);
    expect(cli(["init", "sidecar", "--inject-spec", spec, "--bogus"]).code).toBe(2);
    expect(cli(["init", "extra"]).code).toBe(2);

    const missing = cli(["init", "sidecar", "--inject-spec", join(dir, "nope.yaml")]);
    expect(missing).toEqual({ code: 1, out: "", err: `sluice init sidecar: cannot read ${join(dir, "nope.yaml")}: ENOENT\n` });
    const withService = join(dir, "with-service.yaml");
    writeFileSync(withService, `${readFileSync(spec, "utf8")}---\napiVersion: v1\nkind: Service\nmetadata: { name: web }\n`);
    const out = join(dir, "not-written");
    const bad = cli(["init", "sidecar", "--inject-spec", withService, "--emit", "kustomize", "-o", out]);
    expect(bad.code).toBe(1);
    expect(bad.err).toStartWith(`sluice init sidecar: ${withService}: document 2 (Service web): kind Service is not supported`);
    expect(existsSync(out)).toBe(false);
    const badPolicy = join(dir, "bad-policy.yaml");
    writeFileSync(badPolicy, "version: 1\nproxy:\n  lisen: 127.0.0.1:8888\n");
    expect(cli(["init", "sidecar", "--inject-spec", spec, "--config", badPolicy])).toEqual({ code: 1, out: "", err: `sluice init sidecar: policy ${badPolicy} is not valid:\n  proxy.lisen: unknown key\n` });
    const badHost = join(dir, "bad-host.yaml");
    writeFileSync(badHost, "version: 1\negress:\n  allow: ['*.com']\n");
    const compiled = cli(["init", "sidecar", "--inject-spec", spec, "--config", badHost]);
    expect([compiled.code, compiled.out]).toEqual([1, ""]);
    expect(compiled.err).toStartWith(`sluice init sidecar: policy ${badHost} is not valid:\n  egress.allow:`);

    // An existing directory with something in it is left alone.
    const full = join(dir, "full");
    mkdirSync(full);
    writeFileSync(join(full, "keep.txt"), "mine");
    const taken = cli(["init", "sidecar", "--inject-spec", spec, "--emit", "helm", "-o", full]);
    expect(taken.code).toBe(2);
    expect(taken.err).toContain("exists and is not an empty directory");
    expect(readdirSync(full)).toEqual(["keep.txt"]);
  });

  test("warnings go to stderr and do not fail the run; --help describes init sidecar", () => {
    const r = cli(["init", "sidecar", "--inject-spec", join(FIXTURES, "deployment.yaml"), "--no-proxy-cluster"]);
    expect(r.code).toBe(0);
    expect(r.err).toStartWith("sluice init sidecar: warning: --no-proxy-cluster sends kubernetes.default.svc past sluice");
    const help = cli(["init", "sidecar", "--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("sluice init sidecar --inject-spec FILE");
    expect(cli(["--help"]).out).toContain("init sidecar: Kubernetes manifests");
  });
});

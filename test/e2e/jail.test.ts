/**
 * `sluice jail` through dist/sluice (root; CI is root): the "internet" is a web host in a
 * namespace of the test's own (veth, 10.201.x.2) and a fake DNS upstream on loopback naming it.
 * A command in the jail (curl, Node, Bun's fetch, git) reaches the host through the explicit
 * proxy and, without proxy variables, through the transparent listener; an IP-literal connection and a Host that does not
 * resolve to the address dialled are refused (net.unbound-address) and recorded; the exit status
 * comes back; nothing of the jail is left once it ends, and --cleanup removes a crashed jail's
 * leftovers and nothing else. The rendered nftables rule sets pass `nft -c -f`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderHostRules, renderNamespaceRules } from "../../src/jail/render.ts";
import { startFakeDns, type FakeDns } from "../helpers/fake-dns.ts";
import { netnsSupport } from "../helpers/netns.ts";
import { GIT_README, startWebHost, type WebHost } from "../helpers/netns-web.ts";
import { logRecords } from "../helpers/audit.ts";
import { BIN, launchSluice, tempDir } from "../helpers/sluice.ts";
import { sampleSecret } from "../helpers/dlp-samples.ts";

const T = 60_000;
const support = netnsSupport();
const ok = support.ok && Bun.which("nft") !== null && Bun.which("setpriv") !== null && Bun.which("curl") !== null;
if (!ok) console.warn(`jail.test.ts: skipping sluice jail: ${support.ok ? "nft, setpriv or curl is not installed" : support.reason}`);

let host: WebHost;
let WEB_IP = "";
const dir = tempDir("slt-jail-");
let dns: FakeDns | null = null;

const sh = (argv: string[]) => {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

beforeAll(async () => {
  if (!ok) return;
  host = await startWebHost();
  WEB_IP = host.ip;
  dns = await startFakeDns({ names: { "web.test": { answers: [{ type: "A", data: WEB_IP }] }, "elsewhere.test": { answers: [{ type: "A", data: host.gateway }] }, "denied.test": { answers: [{ type: "A", data: WEB_IP }] } } });
  writeFileSync(
    join(dir, "sluice.yaml"),
    [
      "version: 1",
      "egress:",
      '  allow: ["web.test", "elsewhere.test"]',
      '  ports: { http: ["1-65535"] }',
      '  trusted_cidrs: ["10.201.0.0/16"]',
      `dns: { upstreams: ["${dns.address}"] }`,
      'audit: { dir: ./log, file: "off" }',
      "",
    ].join("\n"),
  );
  // The same with TLS interception (the web host's certificate trusted upstream).
  writeFileSync(join(dir, "tls.yaml"), `${readFileSync(join(dir, "sluice.yaml"), "utf8")}tls: { intercept: true, extra_ca_files: [${JSON.stringify(host.caFile)}] }\n`);
  // With TLS interception and a credential for web.test, read from the environment of sluice jail (the jailed command gets its placeholder).
  writeFileSync(join(dir, "cred.yaml"), `${readFileSync(join(dir, "tls.yaml"), "utf8")}credentials:\n  - { name: webkey, hosts: ["web.test"], source: { env: SLT_WEB_KEY }, header: { name: Authorization, value: "Bearer {secret}" } }\n`);
}, T);

afterAll(async () => {
  host?.destroy();
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a jailed command; async, so that the fake DNS server in this process can answer meanwhile. */
const jail = async (cmd: string[], config = "sluice.yaml") => {
  const p = Bun.spawn([BIN, "jail", "--config", join(dir, config), "--user", "nobody", "--", ...cmd], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home"), SLT_WEB_KEY: "real-web-key-5f1c0e" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
};
const ours = () => ({
  netns: sh(["ip", "netns", "list"]).out.split("\n").filter((l) => l.startsWith("sluice-")),
  tables: sh(["nft", "list", "tables"]).out.split("\n").filter((l) => l.includes(" sluice_")),
});
const records = () => logRecords(join(dir, "log"));

describe("sluice jail", () => {
  test.skipIf(!ok)(
    "reaches an allowed host through the explicit proxy and, without proxy variables, through the transparent listener",
    async () => {
      const before = ours();
      const explicit = await jail(["curl", "-sS", "http://web.test/explicit"]);
      expect([explicit.code, explicit.out]).toEqual([0, "hello from web /explicit host web.test"]);
      const transparent = await jail(["curl", "-sS", "--noproxy", "*", "http://web.test/transparent"]);
      expect([transparent.code, transparent.out]).toEqual([0, "hello from web /transparent host web.test"]);
      const id = /jail ([0-9a-f]{6}):/.exec(transparent.err)?.[1];
      expect(id).toBeDefined();
      const rec = records().find((r) => r.path === "/transparent");
      expect(rec).toMatchObject({ kind: "http", verdict: "allow", host: "web.test", agent: `jail-${id}` });
      // The jail's start record names it, its user and its command; so does each of its records.
      expect(records().some((r) => r.rule === "lifecycle.start" && String(r.detail).includes(`(jail ${id}, `) && String(r.detail).endsWith("as nobody: curl -sS --noproxy * http://web.test/transparent)"))).toBe(true);
      expect(String(rec?.agent_label)).toMatch(new RegExp(`^jail ${id}, 10\\.[0-9.]+, as nobody: curl -sS --noproxy \\* http://web\\.test/transparent$`));
      // Nothing of either jail is left.
      expect(ours()).toEqual(before);
    },
    T,
  );

  test.skipIf(!ok)(
    "an IP-literal connection and a Host that resolves elsewhere are refused as net.unbound-address, and recorded",
    async () => {
      const literal = await jail(["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", `http://${WEB_IP}/literal`]);
      expect(literal.out).toBe("403");
      const mismatch = await jail(["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: elsewhere.test", "http://web.test/mismatch"]);
      expect(mismatch.out).toBe("403");
      const refused = records().filter((r) => r.rule === "net.unbound-address");
      expect(refused.map((r) => r.host)).toEqual(expect.arrayContaining([WEB_IP, "elsewhere.test"]));
      expect(refused.every((r) => r.verdict === "block" && r.kind === "connect")).toBe(true);
      // A name outside the allow list does not even resolve.
      const denied = await jail(["curl", "-sS", "--noproxy", "*", "http://denied.test/"]);
      expect(denied.code).toBe(6);
    },
    T,
  );

  test.skipIf(!ok)(
    "a secret on the jailed command line is cut out of every record that names the command",
    async () => {
      // A sample access key id (not live), as an argument the command never sends.
      const key = sampleSecret("dlp.aws-access-key-id");
      const r = await jail(["bash", "-c", `getent hosts denied.test; curl -sS --noproxy '*' http://web.test/labelled; ps -eo args | grep '[s]luice run .*--jail' >&2; : ${key}`]);
      expect([r.code, r.out]).toEqual([0, "hello from web /labelled host web.test"]);
      // The jail's own sluice runs meanwhile, and what any local user reads of its command line has no secret (checked below).
      expect(r.err).toMatch(/sluice run .*--overlay \S+ --jail [0-9a-f]{6}/);
      // sluice jail's own message names the program, not its arguments.
      expect(r.err).toContain(": bash (and 2 arguments) as nobody");
      expect(r.err).not.toContain(key);
      const rec = records().find((x) => x.path === "/labelled");
      const shown = `as nobody: bash -c getent hosts denied.test; curl -sS --noproxy '*' http://web.test/labelled; ps -eo args | grep '[s]luice run .*--jail' >&2; : ${key.slice(0, 4)}…${key.slice(-2)}`;
      expect(String(rec?.agent_label)).toEndWith(shown);
      // The resolver's records name the command too (a name not on the allow list).
      const query = records().find((x) => x.kind === "dns" && x.host === "denied.test" && x.agent === rec?.agent);
      expect([query?.verdict, String(query?.agent_label).endsWith(shown)]).toEqual(["block", true]);
      const id = String(rec?.agent).slice("jail-".length);
      const start = records().find((x) => x.rule === "lifecycle.start" && String(x.detail).includes(`(jail ${id}, `));
      expect(String(start?.detail)).toContain(`: ${key.slice(0, 4)}…${key.slice(-2)})`);
      expect(JSON.stringify(records())).not.toContain(key);
      // Nor does it stay on disk: the overlay that carried it to sluice is gone with the jail.
      expect(existsSync(join(dir, "home", "jails", id, "overlay.json"))).toBe(false);
      expect(existsSync(join(dir, "home", "jails", id, "sluice.log"))).toBe(true);
    },
    T,
  );

  test.skipIf(!ok)(
    "the rest of the bypass list fails inside the jail: other UDP, IPv6, DNS over TLS, a TLS server name that resolves elsewhere",
    async () => {
      // UDP to any port but 53: ICMP port-unreachable at once, so the second write is refused.
      const udp = await jail(["bash", "-c", `exec 3<>/dev/udp/${WEB_IP}/9999; echo a >&3; sleep 0.3; echo b >&3 && echo sent || echo refused`]);
      expect(udp.out.trim()).toBe("refused");
      // Refused in the namespace, never reaching sluice: recorded from the rules' counters.
      const refusal = (rule: string) => records().find((r) => r.rule === rule && r.kind === "connect" && r.verdict === "block" && String(r.agent).startsWith("jail-"));
      expect(refusal("jail.udp")?.detail).toMatch(/^[12] UDP datagrams to ports other than 53 refused/);
      // They name the command too, as the jail's other records do.
      expect(String(refusal("jail.udp")?.agent_label)).toContain("as nobody: bash -c exec 3<>/dev/udp/");
      // No IPv6 in the jail (disabled: connect fails before any packet, so nothing to count).
      const v6 = await jail(["curl", "-sS", "-6", "--noproxy", "*", "--max-time", "5", "http://[2001:db8::1]/"]);
      expect(v6.code).not.toBe(0);
      // DNS over TLS: reset at once.
      const dot = await jail(["curl", "-sS", "--noproxy", "*", "--max-time", "5", `telnet://${WEB_IP}:853`]);
      expect(dot.code).toBe(7);
      expect(refusal("jail.dns-over-tls")?.detail).toMatch(/^\d+ TCP connections to port 853 \(DNS over TLS\) reset/);
      // A TLS ClientHello naming elsewhere.test, sent to web.test's address: closed, and recorded.
      const sni = await jail(["curl", "-sS", "--noproxy", "*", "--max-time", "5", "--connect-to", "elsewhere.test:443:web.test:443", "https://elsewhere.test/"]);
      expect(sni.code).not.toBe(0);
      expect(records().some((r) => r.rule === "net.unbound-address" && r.host === "elsewhere.test" && r.port === 443)).toBe(true);
    },
    T,
  );

  test.skipIf(!ok)(
    "the transparent path inspects like the explicit one: DLP on what goes out, injection on what comes back; Node and Bun fetch work inside",
    async () => {
      const secret = sampleSecret("dlp.aws-access-key-id");
      const dlp = await jail(["curl", "-sS", "--noproxy", "*", "-D", "-", "-o", "/dev/null", "-d", `config=${secret}`, "http://web.test/upload"]);
      expect(dlp.out).toMatch(/^HTTP\/1\.1 403/);
      expect(dlp.out).toContain("x-sluice-rule: dlp.aws-access-key-id");
      const inj = await jail(["curl", "-sS", "--noproxy", "*", "-D", "-", "-o", "/dev/null", "http://web.test/inject"]);
      expect(inj.out).toMatch(/^HTTP\/1\.1 403/);
      expect(inj.out).toMatch(/x-sluice-rule: inj\./);
      // Node's fetch ignores HTTP_PROXY (the transparent path); Bun's honours it (the explicit one).
      const node = await jail(["node", "-e", 'fetch("http://web.test/node").then(async (r) => console.log(r.status, await r.text()))']);
      expect(node.out.trim()).toBe("200 hello from web /node host web.test");
      const bun = await jail([process.execPath, "-e", 'const r = await fetch("http://web.test/bun"); console.log(r.status, await r.text())']);
      expect(bun.out.trim()).toBe("200 hello from web /bun host web.test");
      expect(records().filter((r) => r.path === "/node" || r.path === "/bun").length).toBe(2);
    },
    T,
  );

  test.skipIf(!ok)(
    "git clones inside the jail: over HTTP, and over HTTPS with interception and GIT_SSL_CAINFO, with and without proxy variables",
    async () => {
      const clone = async (url: string, config: string, transparent = false) => {
        // A fresh directory the jailed user may write (it runs as nobody; the test's own is 0700).
        const to = mkdtempSync(join(tmpdir(), "slt-clone-"));
        chmodSync(to, 0o777);
        const unproxied = transparent ? ["env", "-u", "HTTP_PROXY", "-u", "http_proxy", "-u", "HTTPS_PROXY", "-u", "https_proxy"] : [];
        const r = await jail([...unproxied, "git", "-c", "init.defaultBranch=main", "clone", "-q", url, join(to, "repo")], config);
        const readme = existsSync(join(to, "repo", "README")) ? readFileSync(join(to, "repo", "README"), "utf8") : null;
        rmSync(to, { recursive: true, force: true });
        if (r.code !== 0) console.error(r.err);
        return { ...r, readme };
      };
      const plain = await clone("http://web.test/repo.git", "sluice.yaml");
      expect([plain.code, plain.readme]).toEqual([0, GIT_README]);
      const tls = await clone("https://web.test/repo.git", "tls.yaml");
      expect([tls.code, tls.readme]).toEqual([0, GIT_README]);
      // Without the proxy variables: the transparent listener, interception the same.
      const direct = await clone("https://web.test/repo.git", "tls.yaml", true);
      expect([direct.code, direct.readme]).toEqual([0, GIT_README]);
      // Both went through sluice, the HTTPS one read inside the tunnel (its requests recorded with their paths).
      expect(records().some((r) => r.kind === "http" && r.path === "/repo.git/info/refs" && String(r.agent).startsWith("jail-"))).toBe(true);
      expect(records().filter((r) => r.kind === "http" && String(r.path).startsWith("/repo.git/objects/")).length).toBeGreaterThan(1);
    },
    T,
  );

  test.skipIf(!ok)(
    "HTTPS through the transparent listener with tls.intercept: the jailed client trusts sluice's CA, and DLP reads inside",
    async () => {
      const ok200 = await jail(["curl", "-sS", "--noproxy", "*", "https://web.test/tls"], "tls.yaml");
      expect([ok200.code, ok200.out]).toEqual([0, "hello from web /tls host web.test"]);
      const secret = sampleSecret("dlp.aws-access-key-id");
      const dlp = await jail(["curl", "-sS", "--noproxy", "*", "-D", "-", "-o", "/dev/null", "-d", `k=${secret}`, "https://web.test/upload"], "tls.yaml");
      expect(dlp.out).toMatch(/^HTTP\/1\.1 403/);
      expect(dlp.out).toContain("x-sluice-rule: dlp.aws-access-key-id");
      expect(records().some((r) => r.kind === "connect" && r.host === "web.test" && r.port === 443 && r.inspected === true)).toBe(true);
    },
    T,
  );

  test.skipIf(!ok)(
    "credential injection through the transparent path: the jailed command holds a placeholder, the web host gets the value",
    async () => {
      const r = await jail(["sh", "-c", 'case "$SLT_WEB_KEY" in sluice-cred-webkey-*) ;; *) echo "not a placeholder: $SLT_WEB_KEY"; exit 3;; esac; curl -sS --noproxy "*" -H "Authorization: Bearer $SLT_WEB_KEY" https://web.test/cred'], "cred.yaml");
      const sent = new Bun.CryptoHasher("sha256").update("Bearer real-web-key-5f1c0e").digest("hex");
      expect([r.code, r.out]).toEqual([0, `hello from web /cred host web.test auth sha256:${sent}`]);
    },
    T,
  );

  test.skipIf(!ok)(
    "--attach: a jail for the sluice already running on loopback, its agents naming the jail by address",
    async () => {
      mkdirSync(join(dir, "attached"), { recursive: true });
      mkdirSync(join(dir, "plain"), { recursive: true });
      const running = await launchSluice({
        dir: join(dir, "attached"),
        configYaml: [
          "version: 1",
          'proxy: { listen: "127.0.0.1:0", transparent_listen: "127.0.0.1:0" }',
          'admin: { listen: "127.0.0.1:0" }',
          `dns: { listen: "127.0.0.1:0", upstreams: ["${dns!.address}"] }`,
          "egress:",
          '  allow: ["web.test"]',
          '  ports: { http: ["1-65535"] }',
          '  trusted_cidrs: ["10.201.0.0/16"]',
          'agents: [{ name: jails, source_cidrs: ["10.200.0.0/16"] }]',
          'audit: { dir: ./log, file: "off" }',
          "",
        ].join("\n"),
      });
      try {
        const run = async (cmd: string[]) => {
          const p = Bun.spawn([BIN, "jail", "--attach", running.adminUrl, "--user", "nobody", "--", ...cmd], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") } });
          const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
          return { out, err, code };
        };
        const transparent = await run(["curl", "-sS", "--noproxy", "*", "http://web.test/attached"]);
        expect([transparent.code, transparent.out]).toEqual([0, "hello from web /attached host web.test"]);
        const explicit = await run(["curl", "-sS", "http://web.test/attached-explicit"]);
        expect([explicit.code, explicit.out]).toEqual([0, "hello from web /attached-explicit host web.test"]);
        const literal = await run(["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", `http://${WEB_IP}/x`]);
        expect(literal.out).toBe("403");
        // What the namespace refused never reaches the attached sluice: sluice jail says it on exit.
        const udp = await run(["bash", "-c", `exec 3<>/dev/udp/${WEB_IP}/9999; echo a >&3`]);
        expect(udp.err).toMatch(/: [12] UDP datagrams to ports other than 53 refused in the namespace/);
        expect(explicit.err).not.toContain("refused in the namespace");
      } finally {
        await running.stop();
      }
      const recs = logRecords(join(dir, "attached", "log"));
      expect(recs.find((r) => r.path === "/attached")).toMatchObject({ kind: "http", verdict: "allow", agent: "jails", host: "web.test" });
      expect(recs.some((r) => r.path === "/attached-explicit" && r.agent === "jails")).toBe(true);
      // A sluice without a transparent listener cannot be attached to.
      const plain = await launchSluice({ dir: join(dir, "plain"), configYaml: 'version: 1\nproxy: { listen: "127.0.0.1:0" }\nadmin: { listen: "127.0.0.1:0" }\n' });
      try {
        const p = Bun.spawn([BIN, "jail", "--attach", plain.adminUrl, "--user", "nobody", "--", "true"], { stdout: "pipe", stderr: "pipe" });
        const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
        expect(code).toBe(1);
        expect(err).toContain("no transparent listener on 127.0.0.1");
      } finally {
        await plain.stop();
      }
    },
    T,
  );

  test.skipIf(!ok)("the command's exit status comes back; a missing user or command is a usage error", async () => {
    expect((await jail(["sh", "-c", "exit 7"])).code).toBe(7);
    const noUser = Bun.spawnSync([BIN, "jail", "--user", "no-such-user-slt", "--", "true"], { stdout: "pipe", stderr: "pipe" });
    expect(noUser.exitCode).toBe(2);
    expect(noUser.stderr.toString()).toContain("no such user");
    expect(Bun.spawnSync([BIN, "jail", "--user", "nobody"], { stdout: "pipe", stderr: "pipe" }).exitCode).toBe(2);
  });

  test.skipIf(!ok)("--cleanup removes a dead jail's namespace and table, and nothing that is not sluice's", () => {
    const leftover = "sluice-0d0d0d";
    sh(["ip", "netns", "add", leftover]);
    sh(["nft", "add", "table", "inet", "sluice_0d0d0d"]);
    const r = Bun.spawnSync([BIN, "jail", "--cleanup"], { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain(`removed netns ${leftover}`);
    expect(r.stdout.toString()).toContain("removed nft table inet sluice_0d0d0d");
    expect(ours().netns.some((n) => n.startsWith(leftover))).toBe(false);
    // The test's own web namespace is not sluice's: still there.
    expect(sh(["ip", "netns", "list"]).out).toContain(host.ns);
  });

  test.skipIf(!ok)("the rendered rule sets pass nft -c -f", () => {
    const host = renderHostRules({ table: "sluice_abcdef", vethHost: "slabcdefh", hostIp: "10.200.0.1", proxyPort: 3128, transparentPort: 3129, dnsPort: 5353 });
    const jailSide = renderNamespaceRules({ table: "sluice_abcdef" });
    for (const text of [host, jailSide]) {
      const r = Bun.spawnSync(["nft", "-c", "-f", "-"], { stdin: Buffer.from(text), stdout: "pipe", stderr: "pipe" });
      expect([r.exitCode, r.stderr.toString()]).toEqual([0, ""]);
    }
    expect(() => renderHostRules({ table: "sluice_abcdef", vethHost: 'x"; flush ruleset; "', hostIp: "10.200.0.1", proxyPort: 1, transparentPort: 2, dnsPort: 3 })).toThrow(/bad interface name/);
  });
});

/**
 * The TLS interception CA through dist/sluice: `sluice run` writes its certificate (and a bundle
 * of the system roots plus it) to SLUICE_HOME, serves it at GET /v1/ca.pem without the admin
 * token, and `sluice ca export [--env]` prints it or the trust-store settings; a persistent CA
 * from tls.ca is the one used, and a bad one stops the start with a clear message.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { stopSluices } from "../helpers/origins.ts";
import { BASE_TEST_CONFIG, BIN, launchSluice, startSluice, tempDir, type Running } from "../helpers/sluice.ts";

const T = 30_000;
const started: Running[] = [];
afterAll(() => stopSluices(...started));

const run = (args: string[], home: string) => {
  const r = Bun.spawnSync([BIN, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: home } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

describe("the interception CA", () => {
  test(
    "run writes ca.pem and ca-bundle.pem; the admin API serves the same certificate without a token; ca export prints it",
    async () => {
      const s = await startSluice(BASE_TEST_CONFIG);
      started.push(s);
      const pem = readFileSync(join(s.home, "ca.pem"), "utf8");
      const cert = new X509Certificate(pem);
      expect(cert.ca).toBe(true);
      const bundle = readFileSync(join(s.home, "ca-bundle.pem"), "utf8");
      expect(bundle.endsWith(pem)).toBe(true);
      expect(bundle.split("BEGIN CERTIFICATE").length).toBeGreaterThan(10); // the system's roots too
      const served = await fetch(`${s.adminUrl}/v1/ca.pem`);
      expect(served.status).toBe(200);
      expect(await served.text()).toBe(pem);
      // The rest of /v1/ still wants the token.
      expect((await fetch(`${s.adminUrl}/v1/decisions`)).status).toBe(401);
      const ready = await s.waitForLine((l) => l.msg === "TLS interception CA ready");
      expect(ready.sha256).toBe(cert.fingerprint256.replaceAll(":", "").toLowerCase());

      expect(run(["ca", "export"], s.home)).toMatchObject({ code: 0, out: pem });
      const env = run(["ca", "export", "--env"], s.home);
      expect(env.code).toBe(0);
      const bundleFile = join(s.home, "ca-bundle.pem");
      const caFile = join(s.home, "ca.pem");
      for (const v of ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"]) expect(env.out).toContain(`export ${v}='${bundleFile}'\n`);
      for (const v of ["NODE_EXTRA_CA_CERTS", "DENO_CERT"]) expect(env.out).toContain(`export ${v}='${caFile}'\n`);
      // The lines are shell: sourcing them sets the variables.
      const sh = Bun.spawnSync(["sh", "-c", `${env.out}\nprintf %s "$CURL_CA_BUNDLE"`]);
      expect(sh.stdout.toString()).toBe(bundleFile);
    },
    T,
  );

  test("ca export before any run: exit 1 and what to do; a bad subcommand is a usage error", () => {
    const home = join(tempDir(), "empty-home");
    const r = run(["ca", "export"], home);
    expect(r.code).toBe(1);
    expect(r.err).toContain("start `sluice run`");
    expect(run(["ca", "import"], home).code).toBe(2);
  });

  test(
    "tls.ca: the persistent CA is the one used; a key others can read stops the start",
    async () => {
      const dir = tempDir();
      const sh = (cmd: string) => expect(Bun.spawnSync(["sh", "-c", cmd], { cwd: dir }).exitCode).toBe(0);
      sh("openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out ca.key");
      sh("openssl req -x509 -new -key ca.key -days 30 -subj '/CN=persistent test CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -out ca.pem");
      chmodSync(join(dir, "ca.key"), 0o600);
      const yaml = `${BASE_TEST_CONFIG}tls: { ca: { cert_file: ca.pem, key_file: ca.key } }\n`;
      const s = await startSluice(yaml, { dir });
      started.push(s);
      const fingerprint = (f: string) => new X509Certificate(readFileSync(f, "utf8")).fingerprint256;
      expect(fingerprint(join(s.home, "ca.pem"))).toBe(fingerprint(join(dir, "ca.pem")));
      await s.stop();

      // Another start, its key file now readable by others: refused, before anything is written.
      const dir2 = tempDir();
      sh(`cp ca.pem ca.key ${dir2}/ && chmod 644 ${dir2}/ca.key`);
      const refused = launchSluice({ configYaml: yaml, dir: dir2 });
      await expect(refused).rejects.toThrow(/exited with 1 before ready[\s\S]*cannot set up the TLS interception CA[\s\S]*chmod 600/);
      expect(existsSync(join(dir2, "home", "ca.pem"))).toBe(false);
    },
    T,
  );
});

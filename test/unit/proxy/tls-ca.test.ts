/**
 * The interception CA (src/proxy/tls-ca.ts): a generated CA and the leaves it mints are accepted
 * by real TLS clients (Bun's fetch, openssl verify) for the host or IP they name; leaves are
 * cached until an hour before they expire, least recently used out first; a persistent CA is
 * loaded only from a private key file that is its certificate's.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaError, createCa, loadCa } from "../../../src/proxy/tls-ca.ts";

const dir = mkdtempSync(join(tmpdir(), "sluice-ca-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let clock = Date.now();
const now = () => clock;

describe("a generated CA", () => {
  test("its leaves are trusted by a real client for the host or IP they name, and only for it", async () => {
    const ca = await createCa(now);
    expect(new X509Certificate(ca.certPem).ca).toBe(true);
    for (const host of ["localhost", "127.0.0.1"]) {
      const leaf = await ca.mint(host);
      const x = new X509Certificate(leaf.certPem);
      expect(x.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
      expect(host === "localhost" ? x.checkHost("localhost") : x.checkIP("127.0.0.1")).toBeDefined();
      expect(x.checkHost("other.test")).toBeUndefined();
      const server = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: leaf.certPem, key: leaf.keyPem }, fetch: () => new Response("hello over TLS") });
      try {
        const res = await fetch(`https://${host}:${server.port}/`, { tls: { ca: ca.certPem } } as RequestInit);
        expect(await res.text()).toBe("hello over TLS");
        // Without the CA the client refuses the leaf.
        await expect(fetch(`https://${host}:${server.port}/`)).rejects.toThrow();
      } finally {
        server.stop(true);
      }
    }
  });

  test("a leaf is minted once per host and kept until an hour before it expires; the least recently used goes first", async () => {
    clock = Date.now();
    const ca = await createCa(now, { cacheSize: 2 });
    const a = await ca.mint("a.test");
    expect((await ca.mint("A.TEST")).certPem).toBe(a.certPem);
    const b = await ca.mint("b.test");
    await ca.mint("a.test"); // a is now the most recently used
    await ca.mint("c.test"); // b goes
    expect((await ca.mint("a.test")).certPem).toBe(a.certPem);
    expect((await ca.mint("b.test")).certPem).not.toBe(b.certPem);
    clock += 23.5 * 3600_000; // within the last hour of a's day
    expect((await ca.mint("a.test")).certPem).not.toBe(a.certPem);
    const c = await ca.mint("c.test");
    expect(new X509Certificate(c.certPem).validToDate.getTime()).toBeGreaterThan(clock + 3600_000);
  });
});

describe("a persistent CA (tls.ca)", () => {
  const openssl = (...args: string[]) => {
    const r = Bun.spawnSync(["openssl", ...args], { cwd: dir });
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  };
  openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "raw.key");
  openssl("pkcs8", "-topk8", "-nocrypt", "-in", "raw.key", "-out", "ca.key");
  openssl("req", "-x509", "-new", "-key", "ca.key", "-days", "30", "-subj", "/CN=test persistent CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", "-out", "ca.pem");
  openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "other.raw");
  openssl("pkcs8", "-topk8", "-nocrypt", "-in", "other.raw", "-out", "other.key");
  openssl("req", "-x509", "-new", "-key", "other.key", "-days", "30", "-subj", "/CN=not a CA", "-addext", "basicConstraints=critical,CA:FALSE", "-out", "leaf.pem");
  for (const f of ["ca.key", "other.key"]) chmodSync(join(dir, f), 0o600);
  const path = (f: string) => join(dir, f);

  test("loads, and mints leaves its certificate verifies", async () => {
    clock = Date.now();
    const ca = await loadCa(path("ca.pem"), path("ca.key"), now);
    expect(ca.subject).toContain("test persistent CA");
    const leaf = await ca.mint("origin.test");
    writeFileSync(path("minted.pem"), leaf.certPem);
    const r = Bun.spawnSync(["openssl", "verify", "-CAfile", path("ca.pem"), "-verify_hostname", "origin.test", path("minted.pem")]);
    expect(r.stdout.toString().trim()).toBe(`${path("minted.pem")}: OK`);
  });

  test("a key readable by others, a certificate that is not a CA's, a key that is not the certificate's: refused, with the file named", async () => {
    chmodSync(path("ca.key"), 0o644);
    await expect(loadCa(path("ca.pem"), path("ca.key"), now)).rejects.toThrow(/readable by group or others.*chmod 600/);
    chmodSync(path("ca.key"), 0o600);
    await expect(loadCa(path("leaf.pem"), path("other.key"), now)).rejects.toThrow(/leaf\.pem: not a CA certificate/);
    await expect(loadCa(path("ca.pem"), path("other.key"), now)).rejects.toThrow(/other\.key is not the key of/);
    await expect(loadCa(path("ca.pem"), path("missing.key"), now)).rejects.toThrow(CaError);
    writeFileSync(path("junk.pem"), "not a certificate");
    await expect(loadCa(path("junk.pem"), path("ca.key"), now)).rejects.toThrow(/junk\.pem: not a PEM certificate/);
  });
});

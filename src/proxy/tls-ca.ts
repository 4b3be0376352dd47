/**
 * The per-instance certificate authority for TLS interception (issue 6): an ECDSA P-256 CA whose
 * private key never leaves the process, and leaf certificates minted from it per host (SAN = the
 * host name or IP literal, valid for a day), cached with expiry and a bound on their number.
 *
 * By default sluice makes a new CA on every start (its key exists only in memory; the
 * certificate is written to SLUICE_HOME for trust stores). `tls.ca: { cert_file, key_file }`
 * loads a persistent one instead; a key file anyone but its owner can read is refused.
 *
 * X.509 with @peculiar/x509 over WebCrypto (crypto.subtle): certificates are built and signed
 * here; node:tls takes the PEM.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
// @peculiar/x509 resolves its ASN.1 converters through tsyringe, which needs the Reflect metadata
// polyfill loaded first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { parseIpLiteral } from "../net/ip.ts";
import { secretFileModeProblem } from "../core/secret-file.ts";

x509.cryptoProvider.set(crypto);

const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const HOUR = 3600_000;
/** A generated CA is valid this long (it is replaced on every start anyway). */
const CA_VALIDITY = 365 * 24 * HOUR;
/** A leaf is valid this long, and backdated by LEAF_BACKDATE for clocks a little behind. */
const LEAF_VALIDITY = 24 * HOUR;
const LEAF_BACKDATE = HOUR;
/** A cached leaf with less than this left is minted again. */
const LEAF_RENEW = HOUR;
/** Leaves kept at once; the least recently used goes first. */
export const LEAF_CACHE_SIZE = 1000;

export interface Leaf {
  readonly certPem: string;
  /** PKCS#8 PEM of the leaves' key (one key for all the leaves of a CA). */
  readonly keyPem: string;
  readonly notAfter: Date;
}

export interface CertificateAuthority {
  /** PEM, ending in a line break. */
  readonly certPem: string;
  /** SHA-256 of the certificate (DER), hex: what an operator compares. */
  readonly fingerprint: string;
  readonly subject: string;
  /** A leaf for `host` (a DNS name or an IP literal), from the cache while it has an hour left. */
  mint(host: string): Promise<Leaf>;
}

/** A CA file that cannot be used: startup stops and prints the message. */
export class CaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CaError";
  }
}

/** A new CA, its key in memory only. `now` is the clock (ms since the epoch). */
export async function createCa(now: () => number, options: { commonName?: string; cacheSize?: number } = {}): Promise<CertificateAuthority> {
  const commonName = options.commonName ?? "sluice interception CA";
  const keys = await crypto.subtle.generateKey(EC, false, ["sign", "verify"]);
  const t = now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName} ${randomBytes(4).toString("hex")}`,
    notBefore: new Date(t - LEAF_BACKDATE),
    notAfter: new Date(t + CA_VALIDITY),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return authority(cert, keys.privateKey, now, options.cacheSize ?? LEAF_CACHE_SIZE);
}

/**
 * A persistent CA from PEM files: the certificate, and its PKCS#8 EC P-256 key, which must not be
 * readable by group or others. Every problem is a CaError naming the file.
 */
export async function loadCa(certFile: string, keyFile: string, now: () => number): Promise<CertificateAuthority> {
  let st: { mode: number; uid: number; gid: number };
  try {
    st = await stat(keyFile);
  } catch (err) {
    throw new CaError(`tls.ca.key_file ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const tooOpen = secretFileModeProblem(st, `tls.ca.key_file ${keyFile}`);
  if (tooOpen !== null) throw new CaError(tooOpen);
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(await readFile(certFile, "utf8"));
  } catch (err) {
    throw new CaError(`tls.ca.cert_file ${certFile}: not a PEM certificate (${(err as Error).message})`);
  }
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (!basic?.ca) throw new CaError(`tls.ca.cert_file ${certFile}: not a CA certificate (basicConstraints cA is not set)`);
  if (cert.notAfter.getTime() <= now()) throw new CaError(`tls.ca.cert_file ${certFile}: expired on ${cert.notAfter.toISOString()}`);
  let key: CryptoKey;
  try {
    const pem = await readFile(keyFile, "utf8");
    const der = x509.PemConverter.decodeFirst(pem);
    key = await crypto.subtle.importKey("pkcs8", der, EC, false, ["sign"]);
  } catch (err) {
    throw new CaError(`tls.ca.key_file ${keyFile}: not a PKCS#8 EC P-256 private key (${(err as Error).message})`);
  }
  // The key must be the certificate's: sign and verify one message.
  const probe = randomBytes(32);
  const signature = await crypto.subtle.sign(SIGNING, key, probe);
  const publicKey = await cert.publicKey.export(EC, ["verify"]);
  if (!(await crypto.subtle.verify(SIGNING, publicKey, signature, probe))) throw new CaError(`tls.ca.key_file ${keyFile} is not the key of ${certFile}`);
  return authority(cert, key, now, LEAF_CACHE_SIZE);
}

async function authority(cert: x509.X509Certificate, caKey: CryptoKey, now: () => number, cacheSize: number): Promise<CertificateAuthority> {
  // One key for every leaf of this CA: minting is then one signature, not a key generation.
  const leafKeys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const keyPem = x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey), "PRIVATE KEY");
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(cert, false);
  const cache = new Map<string, Promise<Leaf>>();

  const mintLeaf = async (host: string): Promise<Leaf> => {
    const ip = parseIpLiteral(host);
    const t = now();
    const notAfter = new Date(Math.min(t + LEAF_VALIDITY, cert.notAfter.getTime()));
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: ip === null ? `CN=${host}` : "CN=sluice",
      issuer: cert.subject,
      notBefore: new Date(t - LEAF_BACKDATE),
      notAfter,
      signingAlgorithm: SIGNING,
      publicKey: leafKeys.publicKey,
      signingKey: caKey,
      extensions: [
        new x509.SubjectAlternativeNameExtension([ip === null ? { type: "dns", value: host } : { type: "ip", value: host.replace(/^\[|\]$/g, "") }]),
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        authorityKeyId,
      ],
    });
    return { certPem: leaf.toString("pem"), keyPem, notAfter };
  };

  return {
    certPem: `${cert.toString("pem").trimEnd()}\n`,
    fingerprint: createHash("sha256").update(new Uint8Array(cert.rawData)).digest("hex"),
    subject: cert.subject,
    async mint(host: string): Promise<Leaf> {
      const name = host.toLowerCase();
      const cached = cache.get(name);
      if (cached !== undefined) {
        const leaf = await cached.catch(() => null);
        if (leaf !== null && leaf.notAfter.getTime() - now() > LEAF_RENEW) {
          // Most recently used last: the first key is the one to evict.
          cache.delete(name);
          cache.set(name, cached);
          return leaf;
        }
        cache.delete(name);
      }
      const minted = mintLeaf(name);
      cache.set(name, minted);
      if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
      // A failed mint is not cached.
      minted.catch(() => cache.get(name) === minted && cache.delete(name));
      return minted;
    },
  };
}

/** A positive 128-bit serial number, hex (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString("hex");
}

/**
 * The interception CA as the agents' pods receive it (the sluice-ca ConfigMap): the certificate
 * alone, checked to be a CA's, and a bundle of the system roots plus it, for tools that take one
 * bundle instead of adding to their roots (cli/ca.ts writes the same two files on a host).
 */
import { X509Certificate } from "node:crypto";
import { SidecarError } from "./manifests.ts";

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The one CA certificate in `pem`, re-encoded; anything else (a key above all) is refused. */
export function readCaCertificate(pem: string, source: string): string {
  // Never let a private key through to a ConfigMap, however it got into the file.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new SidecarError(`--ca-cert ${source}: holds a private key: give the certificate alone (the key goes into the sluice-ca Secret)`);
  const blocks = pem.match(CERT_BLOCK) ?? [];
  if (blocks.length !== 1) throw new SidecarError(`--ca-cert ${source}: ${blocks.length === 0 ? "no PEM certificate in it" : `${blocks.length} certificates in it: give the CA's alone`}`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(blocks[0]!);
  } catch (e) {
    throw new SidecarError(`--ca-cert ${source}: not a readable certificate (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!cert.ca) throw new SidecarError(`--ca-cert ${source}: not a CA certificate (basicConstraints cA is not set): ${cert.subject.replaceAll("\n", ", ")}`);
  return cert.toString();
}

/** The roots, then the CA: deterministic for a given set of roots (a sluice build's). */
export function caBundle(caPem: string, roots: readonly string[]): string {
  return `${roots.map((r) => r.trim()).join("\n")}\n\n# sluice interception CA\n${caPem}`;
}

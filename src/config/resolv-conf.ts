/**
 * Nameservers from resolv.conf text (resolv.conf(5)): `nameserver ADDR` lines, IPv4 or IPv6,
 * zone ids dropped. Pure: the loader reads the file.
 */
import { parseIpLiteral } from "../net/ip.ts";

export function parseResolvConf(text: string): { hostname: string; port: number }[] {
  const out: { hostname: string; port: number }[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const m = /^nameserver\s+(\S+)$/.exec(line);
    if (!m) continue;
    const ip = parseIpLiteral(m[1]!);
    if (ip) out.push({ hostname: ip.text, port: 53 });
  }
  return out;
}

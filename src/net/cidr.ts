/**
 * CIDR ranges (RFC 4632 §3.1 for IPv4, RFC 4291 §2.3 for IPv6). Parsed once at load; `contains`
 * compares bytes and a final masked byte, with no string work on the hot path.
 */
import { formatIp, parseIpLiteral, type ParsedIp } from "./ip.ts";

export interface Cidr {
  readonly family: 4 | 6;
  /** Network address, host bits zero. */
  readonly bytes: Uint8Array;
  readonly prefix: number;
  /** Canonical `address/prefix`. */
  readonly text: string;
}

export interface CidrSet {
  contains(ip: ParsedIp): boolean;
  readonly cidrs: readonly Cidr[];
}

/**
 * Parses `address/prefix`, or a bare address as a single host (/32 or /128). Throws on anything
 * else. Host bits set (`10.0.0.1/8`) are refused rather than masked: in an allow list the typo
 * and the intent differ, and guessing wrong widens what is trusted.
 */
export function parseCidr(text: string): Cidr {
  const input = text.trim();
  const slash = input.indexOf("/");
  const addressText = slash === -1 ? input : input.slice(0, slash);
  if (addressText.includes("%")) throw new Error(`invalid CIDR "${text}": zone ids are not allowed in a range`);
  const ip = parseIpLiteral(addressText);
  if (ip === null) throw new Error(`invalid CIDR "${text}": "${addressText}" is not an IP address`);
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const prefixText = input.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) {
      throw new Error(`invalid CIDR "${text}": prefix length "${prefixText}" is not a number from 0 to ${max}`);
    }
    prefix = Number(prefixText);
    if (prefix > max) throw new Error(`invalid CIDR "${text}": prefix length ${prefix} exceeds ${max} for IPv${ip.family}`);
  }
  const network = maskBytes(ip.bytes, prefix);
  for (let i = 0; i < network.length; i++) {
    if (network[i] !== ip.bytes[i]) {
      const suggestion = `${formatIp(network)}/${prefix}`;
      throw new Error(`invalid CIDR "${text}": host bits are set after /${prefix} (did you mean ${suggestion}?)`);
    }
  }
  return { family: ip.family, bytes: network, prefix, text: `${ip.text}/${prefix}` };
}

/** True when `ip` is inside `cidr`. Families must match: use unmapIpv4 for IPv4-mapped input. */
export function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) return false;
  const a = cidr.bytes;
  const b = ip.bytes;
  const whole = cidr.prefix >>> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a[whole] as number) & mask) === ((b[whole] as number) & mask);
}

/** Compiles a list of CIDRs; throws one Error listing every bad entry with its index. */
export function createCidrSet(list: readonly string[]): CidrSet {
  const cidrs: Cidr[] = [];
  const problems: string[] = [];
  list.forEach((entry, index) => {
    try {
      cidrs.push(parseCidr(entry));
    } catch (error) {
      problems.push(`#${index}: ${(error as Error).message}`);
    }
  });
  if (problems.length > 0) throw new Error(`invalid CIDR list: ${problems.join("; ")}`);
  const v4 = cidrs.filter((c) => c.family === 4);
  const v6 = cidrs.filter((c) => c.family === 6);
  return {
    cidrs,
    contains(ip: ParsedIp): boolean {
      const candidates = ip.family === 4 ? v4 : v6;
      for (const cidr of candidates) if (cidrContains(cidr, ip)) return true;
      return false;
    },
  };
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  const whole = prefix >>> 3;
  for (let i = 0; i < whole; i++) out[i] = bytes[i] as number;
  const rest = prefix & 7;
  if (rest !== 0) out[whole] = (bytes[whole] as number) & ((0xff << (8 - rest)) & 0xff);
  return out;
}


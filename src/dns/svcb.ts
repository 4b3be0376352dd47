/**
 * Address hints inside SVCB and HTTPS records (RFC 9460 section 7.3: ipv4hint = key 4,
 * ipv6hint = key 6). A client may connect to a hint before it asks for A/AAAA, so the rebinding
 * guard must see them too. Sans-IO; malformed RDATA yields what could be read.
 */
import { formatIp } from "../net/ip.ts";

const IPV4HINT = 4;
const IPV6HINT = 6;

/** The hint addresses in an SVCB/HTTPS RDATA. `ok` is false when the RDATA is malformed. */
export function svcbHints(rdata: Uint8Array): { ok: boolean; addresses: string[] } {
  const addresses: string[] = [];
  const view = new DataView(rdata.buffer, rdata.byteOffset, rdata.byteLength);
  let o = 2; // SvcPriority
  // TargetName: uncompressed labels (RFC 9460 section 2.2), ending in a zero byte.
  while (o < rdata.length && rdata[o] !== 0) o += 1 + rdata[o]!;
  o += 1;
  while (o + 4 <= rdata.length) {
    const key = view.getUint16(o);
    const len = view.getUint16(o + 2);
    o += 4;
    if (o + len > rdata.length) return { ok: false, addresses };
    const size = key === IPV4HINT ? 4 : key === IPV6HINT ? 16 : 0;
    if (size > 0) {
      if (len % size !== 0) return { ok: false, addresses };
      for (let i = o; i < o + len; i += size) addresses.push(formatIp(rdata.subarray(i, i + size)));
    }
    o += len;
  }
  return { ok: o === rdata.length, addresses };
}

/** dns-packet names types it does not know `UNKNOWN_<n>`: SVCB is 64, HTTPS is 65. */
export const SVCB_TYPES = new Set(["SVCB", "HTTPS", "UNKNOWN_64", "UNKNOWN_65"]);

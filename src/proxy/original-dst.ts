/**
 * The destination a connection had before nftables redirected it to the transparent listener:
 * getsockopt(fd, SOL_IP, SO_ORIGINAL_DST) for IPv4 (linux/netfilter_ipv4.h: 80), and
 * getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST) for IPv6 (linux/netfilter_ipv6/ip6_tables.h:
 * 80), through bun:ffi on the socket's fd (Bun.listen sockets expose it). The answer is a
 * struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes), port in network byte order; an
 * IPv6 address is given in its canonical text (RFC 5952), as records write addresses.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { formatIp } from "../net/ip.ts";

const SOL_IP = 0;
const SOL_IPV6 = 41;
const SO_ORIGINAL_DST = 80;
const IP6T_SO_ORIGINAL_DST = 80;
const AF_INET = 2;
const AF_INET6 = 10;

let libc: { symbols: { getsockopt: (fd: number, level: number, name: number, value: unknown, len: unknown) => number } } | null = null;

function getsockopt(): (fd: number, level: number, name: number, value: Uint8Array, len: Uint32Array) => number {
  libc ??= dlopen("libc.so.6", { getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 } }) as unknown as typeof libc;
  const f = libc!.symbols.getsockopt;
  return (fd, level, name, value, len) => f(fd, level, name, ptr(value), ptr(len));
}

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** The pre-redirect destination of the connection on `fd`, or null (not redirected, or not Linux). */
export function originalDestination(fd: number, family: "IPv4" | "IPv6" = "IPv4"): OriginalDestination | null {
  if (process.platform !== "linux" || !Number.isInteger(fd) || fd < 0) return null;
  const call = getsockopt();
  const buf = new Uint8Array(28);
  const len = new Uint32Array([buf.length]);
  const six = family === "IPv6";
  if (call(fd, six ? SOL_IPV6 : SOL_IP, six ? IP6T_SO_ORIGINAL_DST : SO_ORIGINAL_DST, buf, len) !== 0) {
    // An IPv4 client of a dual-stack listener (`[::]:port`) comes as ::ffff:a.b.c.d on an IPv6
    // socket, but what was redirected is an IPv4 connection: its destination is asked as IPv4.
    len[0] = buf.length;
    if (!six || call(fd, SOL_IP, SO_ORIGINAL_DST, buf, len) !== 0) return null;
  }
  const view = new DataView(buf.buffer);
  const af = view.getUint16(0, true);
  const port = view.getUint16(2, false);
  if (af === AF_INET && len[0]! >= 8) return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port, family: 4 };
  if (af === AF_INET6 && len[0]! >= 24) {
    return { address: formatIp(buf.subarray(8, 24)), port, family: 6 };
  }
  return null;
}

/**
 * The open-files limit of this process, read and raised through libc (bun:ffi), since `ulimit -n`
 * is per process: children started afterwards (sluice, squid, wrk) inherit the raised soft limit.
 * Linux only: RLIMIT_NOFILE is 7 and `struct rlimit` is two 64-bit rlim_t on x86_64 and arm64.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

const RLIMIT_NOFILE = 7;

export interface FdLimit {
  readonly soft: number;
  readonly hard: number;
}

function libc() {
  return dlopen("libc.so.6", {
    getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  });
}

/** RLIM_INFINITY (all ones) reads as a huge bigint: report it as Infinity. */
const toNumber = (v: bigint) => (v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v));

export function getFdLimit(): FdLimit {
  const lib = libc();
  try {
    const buf = new BigUint64Array(2);
    if (lib.symbols.getrlimit(RLIMIT_NOFILE, ptr(buf)) !== 0) throw new Error("getrlimit(RLIMIT_NOFILE) failed");
    return { soft: toNumber(buf[0]!), hard: toNumber(buf[1]!) };
  } finally {
    lib.close();
  }
}

/** Raises the soft limit towards `want` (capped by the hard limit). Returns the limit now in force. */
export function raiseFdLimit(want: number): FdLimit {
  const now = getFdLimit();
  if (now.soft >= want) return now;
  const target = Math.min(want, now.hard);
  if (target <= now.soft) return now;
  const lib = libc();
  try {
    const buf = new BigUint64Array(2);
    if (lib.symbols.getrlimit(RLIMIT_NOFILE, ptr(buf)) !== 0) return now;
    buf[0] = BigInt(target);
    lib.symbols.setrlimit(RLIMIT_NOFILE, ptr(buf));
  } finally {
    lib.close();
  }
  return getFdLimit();
}

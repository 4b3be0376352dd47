/** Durations and sizes as written in config: numbers are milliseconds / bytes. */
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const SIZE = /^(\d+)(B|KiB|MiB|GiB)$/;
const MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const BYTES = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;

/** setTimeout holds at most 2^31-1 ms (~24.8 days); longer values fire at once, so refuse them. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

export function parseDuration(value: number | string): number | null {
  let ms: number;
  if (typeof value === "number") {
    ms = value;
  } else {
    const m = DURATION.exec(value.trim());
    if (!m) return null;
    ms = Math.round(Number(m[1]) * MS[m[2] as keyof typeof MS]);
  }
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_DURATION_MS ? ms : null;
}

export function parseSize(value: number | string): number | null {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : null;
  const m = SIZE.exec(value.trim());
  if (!m) return null;
  return Number(m[1]) * BYTES[m[2] as keyof typeof BYTES];
}

/** `host:port` or `[v6]:port`; port 0 lets the OS choose (tests). */
export function parseListen(value: string): { hostname: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(value.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { hostname: (m[1] ?? m[2])!, port };
}

/** Port lists: `443`, `"8000-8999"`. */
export function parsePortRange(value: number | string): [number, number] | null {
  if (typeof value === "number") return Number.isInteger(value) && value >= 1 && value <= 65535 ? [value, value] : null;
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(value.trim());
  if (!m) return null;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  return lo >= 1 && hi <= 65535 && lo <= hi ? [lo, hi] : null;
}

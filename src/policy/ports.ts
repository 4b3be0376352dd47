/** A set of allowed ports from `[lo, hi]` ranges; lookups are a scan of a handful of ranges. */
export interface PortSet {
  has(port: number): boolean;
  readonly text: string;
}

export function compilePortSet(ranges: readonly (readonly [number, number])[]): PortSet {
  const lo = Int32Array.from(ranges, (r) => r[0]);
  const hi = Int32Array.from(ranges, (r) => r[1]);
  return {
    has(port) {
      for (let i = 0; i < lo.length; i++) if (port >= lo[i]! && port <= hi[i]!) return true;
      return false;
    },
    text: ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(","),
  };
}

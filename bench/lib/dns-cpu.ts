/**
 * Whole-machine CPU use from /proc/stat (Linux): how many cores were busy over an interval, to
 * tell a server-bound run from one where the machine (2 cores: load generator, server and fake
 * upstream together) was the limit.
 */

export interface CpuSnapshot {
  readonly busy: number;
  readonly total: number;
  readonly at: number;
}

/** Aggregate "cpu" line of /proc/stat, in clock ticks (proc(5)). */
export async function hostCpu(): Promise<CpuSnapshot> {
  const stat = await Bun.file("/proc/stat").text();
  const line = stat.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) throw new Error("no aggregate cpu line in /proc/stat");
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy, total: busy + (idle ?? 0) + (iowait ?? 0), at: performance.now() };
}

/** Busy cores between two snapshots (busy share of all CPU time x online cores). */
export function busyCores(a: CpuSnapshot, b: CpuSnapshot, cores: number): number {
  const total = b.total - a.total;
  return total > 0 ? ((b.busy - a.busy) / total) * cores : 0;
}

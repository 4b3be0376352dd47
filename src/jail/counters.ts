/**
 * What a jail's nftables rules refused, read back from their named counters: the namespace's
 * own table (nftables/jail-ns.nft: IPv6, UDP other than DNS, DNS over TLS) and the root side's
 * (jail-host.nft: anything else from the veth that is not redirected to sluice). Those packets
 * never reach sluice, so these counters are how they get into the record.
 */

/** The refusals a jail's tables count, by counter name. */
export const REFUSALS = {
  refused_ipv6: { rule: "jail.ipv6", what: "IPv6 packets refused in the namespace" },
  refused_udp: { rule: "jail.udp", what: "UDP datagrams to ports other than 53 refused in the namespace (ICMP port unreachable)" },
  refused_dot: { rule: "jail.dns-over-tls", what: "TCP connections to port 853 (DNS over TLS) reset in the namespace" },
  dropped: { rule: "jail.dropped", what: "packets from the jail dropped on the host side (not TCP, not DNS)" },
} as const;

export type Refusal = keyof typeof REFUSALS;

/** Packet counts by counter name, from `nft -j list counters table inet TABLE` output. */
export function parseCounters(json: string): Partial<Record<Refusal, number>> {
  const out: Partial<Record<Refusal, number>> = {};
  const doc = JSON.parse(json) as { nftables?: { counter?: { name?: unknown; packets?: unknown } }[] };
  for (const item of doc.nftables ?? []) {
    const c = item.counter;
    if (c === undefined || typeof c.name !== "string" || typeof c.packets !== "number" || !(c.name in REFUSALS)) continue;
    out[c.name as Refusal] = c.packets;
  }
  return out;
}

/** Reads counters: (argv) => the command's stdout, or null when it failed (the table is gone). */
export type CounterReader = (argv: readonly string[]) => Promise<string | null>;

export const spawnReader: CounterReader = async (argv) => {
  const p = Bun.spawn([...argv], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  return code === 0 ? out : null;
};

/**
 * The counters' totals now, from the namespace's table and the root side's. A table that cannot
 * be read (gone, nft missing, no file descriptors left, output that is not JSON) counts nothing
 * and is reported to `onError`: it never takes the caller down.
 */
async function jailCounters(id: string, read: CounterReader, onError?: (error: string) => void): Promise<Partial<Record<Refusal, number>>> {
  const table = `sluice_${id}`;
  const totals: Partial<Record<Refusal, number>> = {};
  for (const argv of [
    ["ip", "netns", "exec", `sluice-${id}`, "nft", "-j", "list", "counters", "table", "inet", table],
    ["nft", "-j", "list", "counters", "table", "inet", table],
  ]) {
    try {
      const text = await read(argv);
      if (text !== null) Object.assign(totals, parseCounters(text));
    } catch (err) {
      onError?.(err instanceof Error ? err.message : String(err));
    }
  }
  return totals;
}

const JAIL_ID = /^[a-z0-9]{1,24}$/;

/** The counters that counted something, with their totals (what `sluice jail --attach` reports when the jail ends). */
export async function readJailRefusals(id: string, read: CounterReader = spawnReader): Promise<Partial<Record<Refusal, number>>> {
  if (!JAIL_ID.test(id)) throw new Error(`bad jail id ${JSON.stringify(id)}`);
  return Object.fromEntries(Object.entries(await jailCounters(id, read)).filter(([, n]) => n > 0));
}

/**
 * Polls jail `id`'s counters every `everyMs` and reports what grew since the last look (the first
 * look counts from zero: the tables are made just before sluice starts). `stop()` takes a last
 * look, so what was refused just before the jail ended is reported too.
 */
export function watchJailRefusals(o: { id: string; everyMs: number; read?: CounterReader; onRefused: (refusal: Refusal, packets: number) => void; onError?: (error: string) => void }): { stop(): Promise<void> } {
  if (!JAIL_ID.test(o.id)) throw new Error(`bad jail id ${JSON.stringify(o.id)}`);
  const read = o.read ?? spawnReader;
  const seen: Partial<Record<Refusal, number>> = {};
  let running: Promise<void> | null = null;
  const look = async () => {
    const totals = await jailCounters(o.id, read, o.onError);
    try {
      for (const [name, packets] of Object.entries(totals) as [Refusal, number][]) {
        const grown = packets - (seen[name] ?? 0);
        seen[name] = packets;
        if (grown > 0) o.onRefused(name, grown);
      }
    } catch (err) {
      // A record that cannot be made is said, and the watcher (and sluice's stop) goes on.
      o.onError?.(err instanceof Error ? err.message : String(err));
    }
  };
  const once = () => (running ??= look().finally(() => (running = null)));
  const timer = setInterval(() => void once(), o.everyMs);
  timer.unref?.();
  return {
    async stop() {
      clearInterval(timer);
      await running;
      await once();
    },
  };
}

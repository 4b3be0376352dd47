/**
 * Renders the nftables templates (nftables/*.nft) for one jail. Every value is checked before it
 * goes in (an interface name, an IPv4 address, a port, a table name): what reaches `nft -f` is
 * the template and nothing an outside string could bend.
 */
import hostTemplate from "../../nftables/jail-host.nft" with { type: "text" };
import nsTemplate from "../../nftables/jail-ns.nft" with { type: "text" };
import hostModeTemplate from "../../nftables/host.nft" with { type: "text" };
import attachTemplate from "../../nftables/jail-host-attach.nft" with { type: "text" };

export interface JailNftVars {
  /** nftables table name, `sluice_<id>`. */
  readonly table: string;
  /** The veth end in the root namespace. */
  readonly vethHost: string;
  readonly hostIp: string;
  readonly proxyPort: number;
  readonly transparentPort: number;
  readonly dnsPort: number;
}

const NAME = /^[a-z0-9_]{1,15}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function check(v: JailNftVars): void {
  if (!/^sluice_[a-z0-9]{1,24}$/.test(v.table)) throw new Error(`bad nftables table name ${JSON.stringify(v.table)}`);
  if (!NAME.test(v.vethHost)) throw new Error(`bad interface name ${JSON.stringify(v.vethHost)}`);
  if (!IPV4.test(v.hostIp)) throw new Error(`bad IPv4 address ${JSON.stringify(v.hostIp)}`);
  for (const p of [v.proxyPort, v.transparentPort, v.dnsPort]) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`bad port ${p}`);
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\$\{([A-Z_]+)\}/g, (_, k: string) => {
    const v = values[k];
    if (v === undefined) throw new Error(`template variable ${k} has no value`);
    return v;
  });
}

/** The root namespace's table for the jail: to its own sluice on the veth, or (`attach`) to one on 127.0.0.1. */
export function renderHostRules(v: JailNftVars, attach = false): string {
  check(v);
  return fill(attach ? attachTemplate : hostTemplate, { TABLE: v.table, VETH_HOST: v.vethHost, HOST_IP: v.hostIp, PROXY_PORT: String(v.proxyPort), TRANSPARENT_PORT: String(v.transparentPort), DNS_PORT: String(v.dnsPort) });
}

/** The jail namespace's own table. */
export function renderNamespaceRules(v: Pick<JailNftVars, "table">): string {
  if (!/^sluice_[a-z0-9]{1,24}$/.test(v.table)) throw new Error(`bad nftables table name ${JSON.stringify(v.table)}`);
  return fill(nsTemplate, { TABLE: v.table });
}

/** The table of host mode (`sluice nft render --host`): one user's traffic through sluice on 127.0.0.1. */
export const HOST_MODE_TABLE = "sluice_host";

/** Whose traffic host mode redirects: a user's sockets, or a cgroup v2's (path below the hierarchy's root). */
export type HostModeAgent = { readonly uid: number } | { readonly cgroup: string };

/** A cgroup v2 path as nft takes it: components of letters, digits and `_.@:-`, no `.`/`..`, no quotes. */
const CGROUP_PATH = /^[A-Za-z0-9_@:-][A-Za-z0-9_.@:-]*(?:\/[A-Za-z0-9_@:-][A-Za-z0-9_.@:-]*)*$/;

/** The cgroup path normalised (no leading `/sys/fs/cgroup/` or `/`), or null when it is not one. */
export function normaliseCgroupPath(path: string): string | null {
  const p = path.replace(/^\/sys\/fs\/cgroup(?:\/unified)?\//, "").replace(/^\/+/, "").replace(/\/+$/, "");
  return p.length > 0 && p.length <= 1024 && CGROUP_PATH.test(p) && p.split("/").length <= 32 ? p : null;
}

export function renderHostModeRules(v: HostModeAgent & { readonly proxyPort: number; readonly transparentPort: number; readonly dnsPort: number }): string {
  let agent: string;
  if ("uid" in v) {
    if (!Number.isInteger(v.uid) || v.uid <= 0 || v.uid > 4294967294) throw new Error(`bad uid ${v.uid} (host mode never redirects root)`);
    agent = `meta skuid ${v.uid}`;
  } else {
    const path = normaliseCgroupPath(v.cgroup);
    if (path === null) throw new Error(`bad cgroup path ${JSON.stringify(v.cgroup)}`);
    agent = `socket cgroupv2 level ${path.split("/").length} "${path}"`;
  }
  for (const p of [v.proxyPort, v.transparentPort, v.dnsPort]) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`bad port ${p}`);
  return fill(hostModeTemplate, { TABLE: HOST_MODE_TABLE, AGENT: agent, PROXY_PORT: String(v.proxyPort), TRANSPARENT_PORT: String(v.transparentPort), DNS_PORT: String(v.dnsPort) });
}

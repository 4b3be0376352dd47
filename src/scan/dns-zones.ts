/**
 * Zone lists and suffix matching for the DNS exfiltration detector.
 *
 * The principle behind both lists: a query name leaks data only to whoever answers for its zone.
 * DNS exfiltration therefore needs an authoritative server the attacker controls (iodine,
 * dnscat2 and DNSExfiltrator all run one), or a service that shows the attacker the queries it
 * receives (the OAST/DNS-logging services below).
 */

/**
 * Zones whose authoritative DNS is run by the provider and whose random-looking labels are ids
 * the provider assigned: a CloudFront distribution (`d1a2b3c4d5e6f7.cloudfront.net`), an Akamai
 * edge host (`e1234.a.akamaiedge.net`), an API Gateway id (`a1b2c3d4.execute-api.us-east-1.
 * amazonaws.com`), an EKS endpoint (32 hex digits), an Azure Log Analytics workspace (a UUID). No
 * customer can delegate a subzone of these or read the provider's query logs, so a name under them
 * carries nothing to an attacker, however random it looks: the detector lets them through (only
 * the length rule still applies). Many more (github.io, herokuapp.com, ngrok.io, supabase.co,
 * vercel.app, ...) need no entry because they are in the Public Suffix List's private section, so
 * the tenant's id is the registrable domain itself, which the detector never inspects.
 *
 * What a demanding operator would block instead, and where: tunnel and hosting front doors such as
 * `abc123def456.ngrok.io`, `*.trycloudflare.com`, `*.workers.dev` are not DNS channels (the query
 * reaches ngrok's or Cloudflare's servers, not the attacker's), but the HTTP that follows reaches
 * the attacker. That is the egress policy's job (`egress.deny`), not this detector's.
 */
export const PROVIDER_ZONES: readonly string[] = [
  // AWS
  "amazonaws.com", "cloudfront.net", "on.aws", "awsapprunner.com", "awsglobalaccelerator.com", "elasticbeanstalk.com",
  // Akamai
  "akamai.net", "akamaiedge.net", "akamaihd.net", "akamaized.net", "edgekey.net", "edgesuite.net", "akadns.net",
  // Google
  "googlevideo.com", "googleusercontent.com", "gvt1.com", "gvt2.com", "googlesyndication.com", "doubleclick.net", "1e100.net",
  // Microsoft
  "azure.com", "azure.net", "windows.net", "azurewebsites.net", "azureedge.net", "azurefd.net", "azure-automation.net", "azure-devices.net",
  "azmk8s.io", "azurecr.io", "azurestaticapps.net", "azurecontainerapps.io", "azuredatabricks.net", "trafficmanager.net", "cloudapp.net",
  "msedge.net", "msftauth.net",
  // Other CDNs and edge networks
  "fastly.net", "fastlylb.net", "cdn.cloudflare.net", "cfargotunnel.com", "edgecastcdn.net", "llnwd.net", "b-cdn.net",
  // Managed databases, identity and data platforms with per-tenant random host names
  "cloud.databricks.com", "snowflakecomputing.com", "mongodb.net", "neon.tech", "cloud.es.io", "elastic-cloud.com", "cloud.redislabs.com",
  "apps.astra.datastax.com", "auth0.com", "okta.com", "oktapreview.com",
  // Object storage and mail tracking addressed by account id
  "r2.cloudflarestorage.com", "awstrack.me",
];

/**
 * Special-use and private zones that no public authoritative server answers for: queries for
 * them end at a local resolver, the cluster DNS or, at worst, as NXDOMAIN at the root. Kubernetes
 * pod names (`api-7c9f8d6b5-q2x7z`) carry random suffixes and live here. Trusted with the
 * provider zones (same option), for the same reason: no attacker reads these queries.
 * RFC 6761 (localhost, test, invalid, example), RFC 6762 (local) and its Appendix G (lan, home,
 * corp, intranet, private), RFC 8375 (home.arpa), ICANN's 2024 reservation of `internal`.
 */
export const LOCAL_ZONES: readonly string[] = [
  "localhost", "local", "test", "invalid", "example", "home.arpa", "internal", "lan", "home", "corp", "intranet", "private",
];

/**
 * Out-of-band interaction (OAST) and DNS-logging services: their whole purpose is to show whoever
 * created a subdomain every query made under it, which is DNS exfiltration as a service (Burp
 * Collaborator, ProjectDiscovery interactsh, dnslog.cn, CEYE, requestrepo, Canarytokens). Any
 * subdomain query under them is a finding, `dns.exfil-oast-zone`, whatever it looks like.
 */
export const OAST_ZONES: readonly string[] = [
  "oast.fun", "oast.pro", "oast.live", "oast.site", "oast.online", "oast.me", "interact.sh", "interactsh.com",
  "oastify.com", "burpcollaborator.net", "dnslog.cn", "ceye.io", "requestrepo.com", "canarytokens.com",
];

/** Matches a lower-case name against a set of zones: the zone itself or any name under it. */
export interface ZoneSet {
  /** The zone that `name` is in or under, or null. */
  match(name: string): string | null;
  readonly size: number;
}

/**
 * Compiles zones (`example.com`, `.example.com` and `*.example.com` all mean the zone and every
 * name under it) into buckets keyed by their last two labels, so that a lookup costs one slice
 * and two map reads whatever the number of zones.
 */
export function compileZoneSet(zones: readonly string[]): ZoneSet {
  const buckets = new Map<string, string[]>();
  let size = 0;
  for (const raw of zones) {
    const zone = normaliseZone(raw);
    if (zone === null) throw new Error(`invalid DNS zone ${JSON.stringify(raw)}: expected a name such as example.com or *.example.com`);
    const key = lastLabels(zone, 2);
    const bucket = buckets.get(key);
    if (bucket === undefined) buckets.set(key, [zone]);
    else if (!bucket.includes(zone)) bucket.push(zone);
    else continue;
    size++;
  }
  if (size === 0) return { match: () => null, size: 0 };

  const within = (name: string, zone: string): boolean =>
    name === zone || (name.length > zone.length && name.endsWith(zone) && name.charCodeAt(name.length - zone.length - 1) === 46);
  const search = (name: string, key: string): string | null => {
    const bucket = buckets.get(key);
    if (bucket === undefined) return null;
    for (const zone of bucket) if (within(name, zone)) return zone;
    return null;
  };
  return {
    match(name) {
      const two = lastLabels(name, 2);
      const found = search(name, two);
      if (found !== null) return found;
      // Single-label zones (`internal`, `lan`) sit in a bucket keyed by that one label.
      const dot = two.indexOf(".");
      return dot < 0 ? null : search(name, two.slice(dot + 1));
    },
    size,
  };
}

function lastLabels(name: string, count: number): string {
  let at = name.length;
  for (let i = 0; i < count; i++) {
    at = name.lastIndexOf(".", at - 1);
    if (at < 0) return name;
  }
  return name.slice(at + 1);
}

function normaliseZone(raw: string): string | null {
  let zone = raw.trim().toLowerCase();
  if (zone.startsWith("*.")) zone = zone.slice(2);
  else if (zone.startsWith(".")) zone = zone.slice(1);
  if (zone.endsWith(".")) zone = zone.slice(0, -1);
  if (zone.length === 0 || zone.length > 253) return null;
  for (const label of zone.split(".")) {
    if (label.length === 0 || label.length > 63 || !/^[a-z0-9_-]+$/.test(label)) return null;
  }
  return zone;
}

/**
 * Reverse-DNS zones that every resolver answers itself (RFC 6303 §4, and the IANA Locally-Served
 * DNS Zones registry, which adds RFC 6598's shared address space per RFC 7793): RFC 1918 and
 * shared space, loopback, link-local, "this network", the IPv4 documentation ranges and the
 * broadcast address; IPv6 unspecified and loopback, ULA (fd00::/8), link-local (fe80::/10) and
 * documentation (2001:db8::/32). No public authoritative server (so no attacker) sees a query
 * under them, so a PTR sweep of the local subnet needs no budget. Trusted with LOCAL_ZONES.
 */
export const LOCAL_REVERSE_ZONES: readonly string[] = [
  "10.in-addr.arpa", "168.192.in-addr.arpa", "127.in-addr.arpa", "0.in-addr.arpa", "254.169.in-addr.arpa",
  "2.0.192.in-addr.arpa", "100.51.198.in-addr.arpa", "113.0.203.in-addr.arpa", "255.255.255.255.in-addr.arpa",
  ...Array.from({ length: 16 }, (_, i) => `${16 + i}.172.in-addr.arpa`),
  ...Array.from({ length: 64 }, (_, i) => `${64 + i}.100.in-addr.arpa`),
  `${"0.".repeat(32)}ip6.arpa`, `1.${"0.".repeat(31)}ip6.arpa`,
  "d.f.ip6.arpa", "8.e.f.ip6.arpa", "9.e.f.ip6.arpa", "a.e.f.ip6.arpa", "b.e.f.ip6.arpa", "8.b.d.0.1.0.0.2.ip6.arpa",
];

/** Where a well-formed reverse-DNS name is budgeted: see `reverseZoneOf`. */
export interface ReverseZone {
  /** The budget key: the /24 (`c.b.a.in-addr.arpa`) or /48 (12 nibbles + `.ip6.arpa`), or the name itself when it is that short or shorter. */
  readonly zone: string;
  /** Characters of the name before `zone` and its dot: the part a delegated zone's owner chooses freely. 0 when the name is the zone. */
  readonly subLength: number;
}

/** IPv4 octets kept in the budget key: a /24, the smallest block a network commonly gets delegated. */
const REVERSE_V4_KEY_LABELS = 3;
/** IPv6 nibbles kept in the budget key: a /48, what a site (or a free tunnel broker account) is delegated. */
const REVERSE_V6_KEY_LABELS = 12;

/**
 * Parses a well-formed reverse-DNS name, `d.c.b.a.in-addr.arpa` with decimal octets (RFC 1035
 * §3.5) or nibble labels under ip6.arpa (RFC 3596 §2.5), or a shorter prefix of either (zone
 * cuts). Returns null for anything else (inspected like any other name).
 *
 * Such a name carries an address, which the content rules cannot judge (a PTR of a random IPv6
 * address is 32 random hex digits). But whoever holds a reverse delegation receives these
 * queries, and the address bits below the delegation are theirs to choose: 80 bits per query
 * under a /48, 8 under a /24. So they are budgeted per delegation-sized block, the reverse
 * counterpart of the registrable domain.
 */
export function reverseZoneOf(name: string): ReverseZone | null {
  if (!name.endsWith(".arpa")) return null;
  if (name === "in-addr.arpa" || name === "ip6.arpa") return { zone: name, subLength: 0 };
  if (name.endsWith(".in-addr.arpa")) {
    const head = name.length - ".in-addr.arpa".length;
    const starts: number[] = [];
    for (let start = 0; start < head; ) {
      let end = name.indexOf(".", start);
      if (end < 0 || end > head) end = head;
      const len = end - start;
      if (len < 1 || len > 3 || starts.length === 4) return null;
      let value = 0;
      for (let i = start; i < end; i++) {
        const c = name.charCodeAt(i);
        if (c < 48 || c > 57) return null;
        value = value * 10 + (c - 48);
      }
      if (value > 255) return null;
      starts.push(start);
      start = end + 1;
    }
    if (starts.length <= REVERSE_V4_KEY_LABELS) return { zone: name, subLength: 0 };
    const at = starts[starts.length - REVERSE_V4_KEY_LABELS]!;
    return { zone: name.slice(at), subLength: at - 1 };
  }
  if (name.endsWith(".ip6.arpa")) {
    const head = name.length - ".ip6.arpa".length;
    // Nibble labels: one hex digit each, separated by dots: n nibbles are 2n-1 characters.
    if (head > 63 || head % 2 === 0) return null;
    for (let i = 0; i < head; i++) {
      const c = name.charCodeAt(i);
      const ok = i % 2 === 1 ? c === 46 : (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
      if (!ok) return null;
    }
    const nibbles = (head + 1) / 2;
    if (nibbles <= REVERSE_V6_KEY_LABELS) return { zone: name, subLength: 0 };
    const at = (nibbles - REVERSE_V6_KEY_LABELS) * 2;
    return { zone: name.slice(at), subLength: at - 1 };
  }
  return null;
}

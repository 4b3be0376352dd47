/**
 * DNS exfiltration detector: looks at every query name before sluice forwards it upstream, since
 * forwarding is what delivers the name (and whatever is encoded in it) to the zone's
 * authoritative server. Names are data; the rules below look for data that is not a host name.
 *
 * Rules (stable ids, ARCHITECTURE.md "Contracts"):
 * - `dns.exfil-long-name`: the name is longer than `maxNameLength`. Host names people and
 *   services use stay far below the 253-character limit; tunnels fill it.
 * - `dns.exfil-encoded-label`: a label that is hex, base32, base64url or tunnel-alphabet data
 *   (iodine, dnscat2, DNSExfiltrator), or a payload that decodes to text.
 * - `dns.exfil-entropy`: the subdomain as a whole is as random as random base32 of its length.
 * - `dns.exfil-subdomain-budget`: more than `subdomainsPerMinute` distinct subdomains of one base
 *   domain within a sliding minute (slow exfiltration with short, innocent-looking labels).
 * - `dns.exfil-oast-zone`: any subdomain of an OAST/DNS-logging service (see dns-zones).
 * - Findings of `extraScanners` (the DLP engine) keep their own rule ids.
 *
 * What is never inspected: the registrable domain itself (queries for it go to the TLD's servers,
 * and the parent of a private suffix such as github.io is run by its provider), well-formed
 * reverse-DNS names, `xn--` labels that are valid IDNA, DKIM selectors, names under provider zones
 * (dns-zones) and under `allowDomains`.
 *
 * Pure (ARCHITECTURE.md): no I/O, time is passed in; the only state is the per-base-domain budget,
 * bounded by `maxTrackedDomains`. A finding's detail never contains the inspected label (secrets
 * travel in these names and details go to the audit log): it gives lengths, entropy, the base
 * domain and a four-character preview.
 */
import { getDomain } from "tldts";
import { domainToUnicode } from "node:url";
import { createSubdomainBudget, hashRange } from "./dns-budget.ts";
import { bytesToText, decodeInto, printableShare, wordShare, type DnsEncoding } from "./dns-decode.ts";
import { EXPECTED_BASE32, MAX_ENTROPY_LENGTH, entropyOfCounts } from "./dns-entropy.ts";
import { SYMBOL_BUCKETS, createLabelShape, looksHex, measureLabel, randomnessPoints, type LabelShape } from "./dns-label.ts";
import { LOCAL_ZONES, OAST_ZONES, PROVIDER_ZONES, compileZoneSet } from "./dns-zones.ts";

export interface DnsExfilFinding {
  readonly rule: string;
  readonly detail: string;
}

/**
 * A scanner over text recovered from a query name (the DLP engine's entry point). It is called
 * with the subdomain as the client spelled it, with the labels joined, and with the decoded
 * payload when the name decodes to text. Its detail should not echo the match; the detector
 * redacts any run of 8+ letters and digits of the scanned text that it finds echoed anyway. An
 * exception propagates out of `check`: the caller fails closed (ARCHITECTURE.md, "The one flow").
 */
export type DnsTextScanner = (text: string) => { readonly rule: string; readonly detail: string } | null;

export interface DnsExfilOptions {
  /** Longest name allowed, in characters without the trailing dot. RFC 1035 §2.3.4 allows 253. */
  readonly maxNameLength: number;
  /**
   * An encoded-looking label longer than this is a finding: hex (counting hex digits, so a UUID
   * qualifies), or letters and digits mixed like base32/base36/base64url data. Characters outside
   * the host-name alphabet, and payloads that decode to text, are findings at any length.
   */
  readonly maxLabelLength: number;
  /** The entropy rule applies to subdomains with at least this many letters and digits. */
  readonly entropyMinLength: number;
  /**
   * Fraction of the entropy expected of random base32 text of the same length (dns-entropy) at or
   * above which a subdomain is a finding. Readable names stay under ~0.9.
   */
  readonly entropyThreshold: number;
  /** Distinct subdomains allowed per base domain in any 60-second window. */
  readonly subdomainsPerMinute: number;
  /** Base domains whose budget is tracked at once; the least recently queried is forgotten first. */
  readonly maxTrackedDomains: number;
  /** Zones exempt from every rule: `example.com` (or `*.example.com`) covers it and all names under it. */
  readonly allowDomains: readonly string[];
  /** Exempt names under PROVIDER_ZONES and LOCAL_ZONES from all rules but the length rule (dns-zones says why). */
  readonly trustProviderZones: boolean;
  /** OAST / DNS-logging zones: any subdomain under them is a finding. */
  readonly oastZones: readonly string[];
  /** Scanners for text recovered from names: see DnsTextScanner. */
  readonly extraScanners: readonly DnsTextScanner[];
}

export const DEFAULT_DNS_EXFIL_OPTIONS: DnsExfilOptions = Object.freeze({
  // Well over the longest real host names (cloud endpoints reach ~80, ip6.arpa names 72), well
  // under what a tunnel uses: iodine and dnscat2 pack names to ~250 for throughput.
  maxNameLength: 180,
  // 16 characters: 8 bytes as hex, 10 as base32, 12 as base64url. An AWS key id is 20.
  maxLabelLength: 15,
  // Below ~32 characters random and readable text overlap in measured entropy.
  entropyMinLength: 32,
  entropyThreshold: 0.95,
  // An agent browsing or calling APIs touches a handful of names per zone per minute; a tunnel
  // sends one distinct name per packet.
  subdomainsPerMinute: 30,
  // ~600 bytes each at the default budget: a few MB at most.
  maxTrackedDomains: 4096,
  allowDomains: Object.freeze([]) as readonly string[],
  trustProviderZones: true,
  oastZones: OAST_ZONES,
  extraScanners: Object.freeze([]) as readonly DnsTextScanner[],
});

export interface DnsExfilDetector {
  /** Inspects one query name (any case, trailing dot or not) at time `nowMs`; null when clean. */
  check(qname: string, nowMs: number): DnsExfilFinding | null;
  /** Base domains currently tracked by the budget rule (bounded by `maxTrackedDomains`). */
  readonly trackedDomains: number;
}

/** RFC 1035 §2.3.4: a name is at most 255 octets on the wire, 253 characters as text. */
const MAX_DNS_NAME = 253;
const WINDOW_MS = 60_000;
/** A payload shorter than this (letters and digits) is not decoded: too few bytes to judge. */
const MIN_DECODE_CHARS = 10;
/** Decoded text must be this long to count as text: 6 bytes is `whoami`, `passwd`. */
const MIN_DECODED_BYTES = 6;
/** Labels shorter than this before or after the payload are counters and markers (`0`, `init`, `dnscat`). */
const MIN_PAYLOAD_LABEL = 8;
/** Bytes decoded only to describe a payload in a finding's detail. */
const DETAIL_SAMPLE_BYTES = 48;
/** Decodings tried on a payload whose alphabet fits, in this order. */
const DECODE_ORDER: readonly DnsEncoding[] = ["hex", "base64url", "base32"];

export function createDnsExfilDetector(opts: Partial<DnsExfilOptions> = {}): DnsExfilDetector {
  const options: DnsExfilOptions = { ...DEFAULT_DNS_EXFIL_OPTIONS, ...opts };
  validate(options);
  const allow = compileZoneSet(options.allowDomains);
  const providers = compileZoneSet(options.trustProviderZones ? [...PROVIDER_ZONES, ...LOCAL_ZONES] : []);
  const oast = compileZoneSet(options.oastZones);
  const budget = createSubdomainBudget(options.subdomainsPerMinute, WINDOW_MS, options.maxTrackedDomains);
  const scanners = options.extraScanners;

  // Scratch space reused by every call: the hot path allocates only the lower-cased name.
  const shape: LabelShape = createLabelShape();
  const segment: LabelShape = createLabelShape();
  const counts = new Uint16Array(SYMBOL_BUCKETS);
  const decoded = new Uint8Array(192);

  function check(qname: string, nowMs: number): DnsExfilFinding | null {
    const original = qname.endsWith(".") ? qname.slice(0, -1) : qname;
    if (original.length === 0) return null;
    // Case-insensitive throughout (RFC 4343; 0x20 randomisation flips case at will).
    const name = original.toLowerCase();
    if (allow.size > 0 && allow.match(name) !== null) return null;
    if (isReverseName(name)) return null;

    const base = baseDomainOf(name);
    const subLength = base.length < name.length ? name.length - base.length - 1 : 0;
    const tooLong = name.length > options.maxNameLength;
    if (subLength <= 0 || (providers.size > 0 && providers.match(name) !== null)) {
      return tooLong ? longName(name, base, subLength) : null;
    }
    const oastZone = oast.size > 0 ? oast.match(name) : null;
    if (oastZone !== null) {
      return finding("dns.exfil-oast-zone", `query under ${oastZone}, a DNS-logging (OAST) service that shows every query to whoever made the subdomain; subdomain of ${subLength} characters, ${preview(name, 0, subLength)}`);
    }
    const distinct = budget.record(base, hashRange(name, 0, subLength), nowMs);

    const content = inspectSubdomain(original, name, subLength, base);
    if (content !== null) return content;
    if (tooLong) return longName(name, base, subLength);
    if (distinct > options.subdomainsPerMinute) {
      return finding(
        "dns.exfil-subdomain-budget",
        `more than ${options.subdomainsPerMinute} distinct subdomains of ${base} within 60 s (this one ${subLength} characters, ${preview(name, 0, subLength)})`,
      );
    }
    return null;
  }

  /** The content rules over the subdomain `name[0, subLength)`; `original` is the name as spelled. */
  function inspectSubdomain(original: string, name: string, subLength: number, base: string): DnsExfilFinding | null {
    counts.fill(0);
    let symbols = 0;
    let worst: { start: number; end: number; why: string; decoded?: true } | null = null;
    // The payload: from the first long label to the last one, skipping counters and markers.
    let payloadStart = -1;
    let payloadEnd = -1;
    let payloadHex = true;
    let payloadBase32 = true;
    let payloadBase64 = true;
    let payloadChars = 0;
    let payloadDigits = 0;
    let digits = 0;
    let letters = 0;
    let vowels = 0;

    for (let start = 0; start < subLength; ) {
      let end = name.indexOf(".", start);
      if (end < 0 || end > subLength) end = subLength;
      const labelStart = start;
      start = end + 1;
      if (end === labelStart) continue;
      const first = name.charCodeAt(labelStart);
      if (first === 42 /* * */ && end === labelStart + 1) continue;
      // A DKIM selector (RFC 6376 §3.6.2.1) is whatever the sender chose, often a random token
      // (Amazon SES uses 32 base32 characters): skip the label before `_domainkey`. It still
      // counts towards the budget, which is what bounds a channel hidden there.
      if (isLabelAt(name, end + 1, subLength, "_domainkey")) continue;
      // Punycode of non-Latin text looks random; valid IDNA is a name, not data (RFC 5891).
      if (first === 120 /* x */ && name.startsWith("xn--", labelStart) && domainToUnicode(name.slice(labelStart, end)) !== "") continue;
      // Underscore prefixes mark protocol labels (`_dmarc`, `_tcp`, RFC 8552): measure what follows.
      const from = first === 95 ? labelStart + 1 : labelStart;
      if (from === end) continue;
      measureLabel(name, from, end, shape, counts);

      if (worst === null) {
        if (shape.other > 0) {
          worst = { start: labelStart, end, why: `${shape.length}-character label with ${shape.other} character${shape.other === 1 ? "" : "s"} outside the host-name alphabet (tunnel encoding such as iodine's base128)` };
        } else if (looksHex(shape, options.maxLabelLength + 1)) {
          worst = { start: labelStart, end, why: `${shape.length}-character label of hex digits` };
        } else if (shape.length > options.maxLabelLength && looksRandom(name, from, end, shape)) {
          worst = { start: labelStart, end, why: `${shape.length}-character label that looks encoded (${encodingGuess(shape)})` };
        }
      }

      digits += shape.digits;
      letters += shape.letters;
      vowels += shape.vowels;
      symbols += shape.letters + shape.digits + shape.other;

      if (end - labelStart >= MIN_PAYLOAD_LABEL) {
        if (payloadStart < 0) payloadStart = labelStart;
        payloadEnd = end;
      }
      if (payloadStart >= 0 && payloadEnd === end) {
        payloadChars += shape.length;
        if (shape.nonHex > 0) payloadHex = false;
        if (shape.nonBase32 > 0) payloadBase32 = false;
        if (shape.other > 0) payloadBase64 = false;
        payloadDigits += shape.digits;
      }
    }

    // Decode the payload: a name that decodes to text is exfiltration whatever its length, and the
    // text is what the DLP scanners should see.
    let decodedText: string | null = null;
    let decodedAs: DnsEncoding | null = null;
    let decodedLength = 0;
    let printable = 0;
    if (payloadStart >= 0 && payloadChars >= MIN_DECODE_CHARS) {
      // Case tells base64url (mixed case as sent) from base32 (one case, or 0x20 noise); when both
      // fit, the decoding that yields more printable bytes wins.
      const mixed = payloadBase64 && original.length === name.length && hasMixedCase(original, payloadStart, payloadEnd);
      for (const encoding of DECODE_ORDER) {
        if (encoding === "hex" ? !payloadHex : encoding === "base32" ? !payloadBase32 : !mixed) continue;
        // Already decided and nobody to hand the text to: a sample is enough for the detail.
        const room = worst !== null && scanners.length === 0 ? DETAIL_SAMPLE_BYTES : decoded.length;
        const n = decodeInto(encoding === "base64url" ? original : name, payloadStart, payloadEnd, encoding, decoded, room);
        if (n <= 0) continue;
        const share = printableShare(decoded, n);
        if (decodedAs !== null && share <= printable) continue;
        decodedAs = encoding;
        decodedLength = n;
        printable = share;
        if (scanners.length > 0 && share >= 0.6) decodedText = bytesToText(decoded, n);
        // Text, not noise: nearly all printable, mostly letters and digits. Base32 of text nearly
        // always has digits (2-7 are a sixth of the alphabet); a plain word read as base32 has
        // none and now and then decodes to a few printable bytes, so without digits the bar is
        // higher: 8 bytes and up, every one printable, four in five letters, digits or spaces.
        const words = wordShare(decoded, n);
        const text = encoding === "base32" && payloadDigits === 0 ? n >= 8 && share === 1 && words >= 0.8 : n >= MIN_DECODED_BYTES && share >= 0.9 && words >= 0.6;
        if (worst === null && text) {
          worst = { start: payloadStart, end: payloadEnd, why: `${payloadChars}-character payload that decodes from ${encoding} to ${n} bytes of text`, decoded: true };
        }
      }
    }

    if (scanners.length > 0 && symbols >= MIN_PAYLOAD_LABEL) {
      const scanned = runScanners(original.slice(0, subLength), decodedText);
      if (scanned !== null) {
        const how = decodedText !== null && scanned.fromDecoded ? `, decoded from ${decodedAs}` : "";
        return finding(scanned.rule, `${scanned.detail} (in a DNS query name under ${base}${how}; ${preview(name, 0, subLength)})`);
      }
    }

    if (worst !== null) {
      const decodedNote = decodedAs !== null && worst.decoded !== true ? `; decodes from ${decodedAs} to ${decodedLength} bytes, ${Math.round(printable * 100)}% printable` : "";
      return finding("dns.exfil-encoded-label", `${worst.why} under ${base}${decodedNote}; ${preview(name, worst.start, worst.end)}`);
    }

    // Entropy alone cannot tell a long name of many different words from random text (both reach
    // ~0.95 of random base32 at 40+ characters); encoded data also has digits, or fewer vowels
    // than words (under a quarter of the letters: random letters have 6 in 26).
    if (symbols >= options.entropyMinLength && (digits >= 2 || vowels * 4 < letters)) {
      const h = entropyOfCounts(counts, SYMBOL_BUCKETS, symbols);
      const threshold = options.entropyThreshold * EXPECTED_BASE32[Math.min(symbols, MAX_ENTROPY_LENGTH)]!;
      if (h >= threshold) {
        return finding(
          "dns.exfil-entropy",
          `subdomain of ${symbols} letters and digits under ${base} has entropy ${h.toFixed(2)} bits/char (threshold ${threshold.toFixed(2)} for that length); ${preview(name, 0, subLength)}`,
        );
      }
    }
    return null;
  }

  /**
   * Whether `name[from, end)` (measured into `whole`) holds a random-looking run longer than
   * maxLabelLength. Hyphens and underscores split the label into runs that are judged one by one:
   * `collector-pxu6b0qd2s`, `my-bucket-k2j4h5g6` or a Kubernetes pod name put a short id after
   * words, and judged whole, the words would lend the id their length.
   */
  function looksRandom(name: string, from: number, end: number, whole: LabelShape): boolean {
    if (whole.hyphens + whole.underscores === 0) return randomnessPoints(whole) >= 3;
    for (let start = from; start < end; ) {
      let stop = start;
      while (stop < end) {
        const c = name.charCodeAt(stop);
        if (c === 45 || c === 95) break;
        stop++;
      }
      if (stop - start > options.maxLabelLength) {
        measureLabel(name, start, stop, segment);
        if (randomnessPoints(segment) >= 3 || looksHex(segment, options.maxLabelLength + 1)) return true;
      }
      start = stop + 1;
    }
    return false;
  }

  function runScanners(subdomain: string, decodedText: string | null): { rule: string; detail: string; fromDecoded: boolean } | null {
    const texts: string[] = [subdomain];
    if (subdomain.includes(".")) texts.push(subdomain.replaceAll(".", ""));
    if (decodedText !== null) texts.push(decodedText);
    for (const scan of scanners) {
      for (let i = 0; i < texts.length; i++) {
        const hit = scan(texts[i]!);
        if (hit !== null) return { rule: hit.rule, detail: redactEchoes(hit.detail, texts), fromDecoded: decodedText !== null && i === texts.length - 1 };
      }
    }
    return null;
  }

  function longName(name: string, base: string, subLength: number): DnsExfilFinding {
    return finding(
      "dns.exfil-long-name",
      `name of ${name.length} characters (limit ${options.maxNameLength}) under ${base}, subdomain of ${subLength} characters; ${preview(name, 0, Math.max(subLength, 0))}`,
    );
  }

  return {
    check,
    get trackedDomains() {
      return budget.size;
    },
  };
}

function finding(rule: string, detail: string): DnsExfilFinding {
  return { rule, detail };
}

function validate(o: DnsExfilOptions): void {
  const positive = (key: keyof DnsExfilOptions, value: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`dns exfil option ${key} must be an integer from 1 to ${max}, got ${value}`);
  };
  positive("maxNameLength", o.maxNameLength, MAX_DNS_NAME);
  positive("maxLabelLength", o.maxLabelLength, 63);
  positive("entropyMinLength", o.entropyMinLength, MAX_DNS_NAME);
  positive("subdomainsPerMinute", o.subdomainsPerMinute, 10_000);
  positive("maxTrackedDomains", o.maxTrackedDomains, 1_000_000);
  if (!(o.entropyThreshold > 0 && o.entropyThreshold <= 2)) throw new Error(`dns exfil option entropyThreshold must be in (0, 2], got ${o.entropyThreshold}`);
}

/**
 * The registrable domain (eTLD+1) per the Public Suffix List, private section included, so that
 * `<tenant>.github.io` and `<id>.cloudfront.net` are domains of their own. Names under no known
 * suffix (`host.internal`, `svc.cluster.local`) fall back to their last two labels.
 */
function baseDomainOf(name: string): string {
  const domain = getDomain(name, { allowPrivateDomains: true, extractHostname: false, validateHostname: false });
  if (domain !== null && domain.length > 0 && name.endsWith(domain)) return domain;
  const last = name.lastIndexOf(".");
  if (last <= 0) return name;
  const second = name.lastIndexOf(".", last - 1);
  return second < 0 ? name : name.slice(second + 1);
}

/**
 * Well-formed reverse-DNS names carry an address, 4 or 16 bytes the client chose to look up:
 * `d.c.b.a.in-addr.arpa` with decimal octets (RFC 1035 §3.5) or 32 hex nibbles under ip6.arpa
 * (RFC 3596 §2.5), or a shorter prefix of either (zone cuts). A PTR sweep of a subnet would
 * otherwise trip the budget. Anything else under .arpa is inspected like any other name.
 */
function isReverseName(name: string): boolean {
  if (!name.endsWith(".arpa")) return false;
  if (name.endsWith(".in-addr.arpa")) {
    const head = name.length - ".in-addr.arpa".length;
    let labels = 0;
    for (let start = 0; start < head; ) {
      let end = name.indexOf(".", start);
      if (end < 0 || end > head) end = head;
      const len = end - start;
      if (len < 1 || len > 3 || ++labels > 4) return false;
      let value = 0;
      for (let i = start; i < end; i++) {
        const c = name.charCodeAt(i);
        if (c < 48 || c > 57) return false;
        value = value * 10 + (c - 48);
      }
      if (value > 255) return false;
      start = end + 1;
    }
    return true;
  }
  if (name.endsWith(".ip6.arpa")) {
    const head = name.length - ".ip6.arpa".length;
    // Nibble labels: one hex digit each, separated by dots: "x.x.x" is 2n-1 characters.
    if (head > 63 || head % 2 === 0) return false;
    for (let i = 0; i < head; i++) {
      const c = name.charCodeAt(i);
      const ok = i % 2 === 1 ? c === 46 : (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
      if (!ok) return false;
    }
    return true;
  }
  return name === "in-addr.arpa" || name === "ip6.arpa";
}

function isLabelAt(name: string, at: number, limit: number, label: string): boolean {
  return at < limit && name.startsWith(label, at) && (at + label.length === limit || name.charCodeAt(at + label.length) === 46);
}

function hasMixedCase(text: string, start: number, end: number): boolean {
  let upper = false;
  let lower = false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 65 && c <= 90) upper = true;
    else if (c >= 97 && c <= 122) lower = true;
    if (upper && lower) return true;
  }
  return false;
}

function encodingGuess(s: LabelShape): string {
  if (s.nonBase32 === 0) return "base32 alphabet";
  if (s.underscores > 0 || s.hyphens > 0) return "base64url alphabet";
  return "letters and digits";
}

/** First four characters of `text[start, end)`, printable ASCII only, then an ellipsis. */
function preview(text: string, start: number, end: number): string {
  let s = "";
  for (let i = start; i < Math.min(end, start + 4); i++) {
    const c = text.charCodeAt(i);
    s += c >= 0x21 && c < 0x7f && c !== 0x22 && c !== 0x5c ? text[i] : "?";
  }
  return `starts "${s}…"`;
}

/**
 * Replaces, in a scanner's detail, every run of 8+ letters and digits that also occurs in a text
 * the scanner was given: a scanner that quotes its match must not carry the secret into the log.
 */
function redactEchoes(detail: string, texts: readonly string[]): string {
  return detail.replace(/[A-Za-z0-9_-]{8,}/g, (run) => (texts.some((t) => t.includes(run)) ? `${run.slice(0, 4)}…` : run));
}

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
 * - `dns.exfil-subdomain-budget`: more than `subdomainsPerMinute` distinct (subdomain, query type)
 *   pairs under one base domain within a sliding minute (slow exfiltration with short,
 *   innocent-looking labels; one name asked under many query types). The registrable domain itself
 *   counts as a subdomain of length 0. A, AAAA and SVCB/HTTPS count as one type (dns-budget).
 *   Well-formed reverse names are budgeted per /24 (in-addr.arpa) or /48 (ip6.arpa): whoever holds
 *   that delegation receives the queries and chooses the address bits below it.
 * - `dns.exfil-oast-zone`: any subdomain of an OAST/DNS-logging service (see dns-zones).
 * - Findings of `extraScanners` (the DLP engine) keep their own rule ids.
 *
 * Special labels, judged for what they are:
 * - `xn--` labels that decode (IDNA, RFC 5891) are judged on what they decode to (dns-label
 *   `measureIdnLabel`): their ASCII part by the label rules above, the rest by script mixing,
 *   symbols, and how many bits its code points could carry (`IDN_MAX_BITS` per name).
 * - A DKIM selector (`<selector>._domainkey.<domain>`, RFC 6376 §3.6.2.1) is often a random token
 *   (Amazon SES: 32 base32 characters). For TXT, the only type a DKIM key is asked under, and for
 *   an unknown type, a selector of up to `DKIM_SELECTOR_MAX` characters is not judged (the budget
 *   still counts it); a longer one, or one asked under another type, is judged like any label.
 *
 * What is never inspected: the content of the registrable domain itself (the parent of a private
 * suffix such as github.io is run by its provider), the content of well-formed reverse-DNS names
 * (only their budget), names under provider and local zones (dns-zones) and under `allowDomains`.
 *
 * Pure (ARCHITECTURE.md): no I/O, time is passed in; the only state is the per-base-domain budget,
 * bounded by `maxTrackedDomains`. A finding's detail never contains the inspected label (secrets
 * travel in these names and details go to the audit log): it gives lengths, entropy, the base
 * domain and a four-character preview. `redactName` gives a loggable form of a query name.
 */
import { getDomain } from "tldts";
import { domainToUnicode } from "node:url";
import { createSubdomainBudget, hashRange, queryTypeKey, queryTypeNumber } from "./dns-budget.ts";
import { bytesToText, decodeInto, printableShare, wordShare, type DnsEncoding } from "./dns-decode.ts";
import { EXPECTED_BASE32, MAX_ENTROPY_LENGTH, entropyOfCounts } from "./dns-entropy.ts";
import { SYMBOL_BUCKETS, createLabelShape, looksHex, measureIdnLabel, measureLabel, randomnessPoints, type LabelShape } from "./dns-label.ts";
import { LOCAL_REVERSE_ZONES, LOCAL_ZONES, OAST_ZONES, PROVIDER_ZONES, compileZoneSet, reverseZoneOf, type ReverseZone } from "./dns-zones.ts";

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
  /** Distinct (subdomain, query type) pairs allowed per base domain (or reverse /24, /48) in any 60-second window. */
  readonly subdomainsPerMinute: number;
  /** Base domains whose budget is tracked at once; the least recently queried is forgotten first. */
  readonly maxTrackedDomains: number;
  /** Zones exempt from every rule: `example.com` (or `*.example.com`) covers it and all names under it. */
  readonly allowDomains: readonly string[];
  /** Exempt names under PROVIDER_ZONES and LOCAL_ZONES from all rules but the length rule, and LOCAL_REVERSE_ZONES from the budget (dns-zones says why). */
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
  /**
   * Inspects one query name (any case, trailing dot or not) at time `nowMs`; null when clean.
   * `qtype` is the query type as a mnemonic (`A`, `TXT`), `TYPEn` (RFC 3597), dns-packet's
   * `UNKNOWN_n` or a number as text. Without it the name is judged as if asked for its address,
   * except that a DKIM selector is given the benefit of TXT.
   */
  check(qname: string, nowMs: number, qtype?: string): DnsExfilFinding | null;
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
/**
 * Longest DKIM selector left unjudged under TXT: Amazon SES's Easy DKIM tokens are 32 base32
 * characters, the longest random selectors in common use; the rest are words and dates
 * (`google`, `selector1`, `s1`, `20230601`). Longer selectors are judged like any label.
 */
const DKIM_SELECTOR_MAX = 32;
/**
 * Most bits the non-ASCII code points of a name's IDN labels may be able to carry (dns-label
 * `IdnShape.bits`): 20 bytes, about what the ASCII rules let one name carry (31 random base36
 * characters stay under the entropy rule's 32). Real IDN labels are words: a 10-character Han
 * label is 140, a 29-letter Cyrillic one 145; 84 bytes of random CJK is ~670.
 */
const IDN_MAX_BITS = 160;
/** RFC 1035 §3.2.2: TXT. */
const TYPE_TXT = 16;

export function createDnsExfilDetector(opts: Partial<DnsExfilOptions> = {}): DnsExfilDetector {
  const options: DnsExfilOptions = { ...DEFAULT_DNS_EXFIL_OPTIONS, ...opts };
  validate(options);
  const allow = compileZoneSet(options.allowDomains);
  const providers = compileZoneSet(options.trustProviderZones ? [...PROVIDER_ZONES, ...LOCAL_ZONES] : []);
  const localReverse = compileZoneSet(options.trustProviderZones ? LOCAL_REVERSE_ZONES : []);
  const oast = compileZoneSet(options.oastZones);
  const budget = createSubdomainBudget(options.subdomainsPerMinute, WINDOW_MS, options.maxTrackedDomains);
  const scanners = options.extraScanners;

  // Scratch space reused by every call: the hot path allocates only the lower-cased name.
  const shape: LabelShape = createLabelShape();
  const segment: LabelShape = createLabelShape();
  const counts = new Uint16Array(SYMBOL_BUCKETS);
  const decoded = new Uint8Array(192);

  function check(qname: string, nowMs: number, qtype?: string): DnsExfilFinding | null {
    const original = qname.endsWith(".") ? qname.slice(0, -1) : qname;
    if (original.length === 0) return null;
    // Case-insensitive throughout (RFC 4343; 0x20 randomisation flips case at will).
    const name = original.toLowerCase();
    if (allow.size > 0 && allow.match(name) !== null) return null;
    const typeKey = queryTypeKey(qtype);

    const reverse = reverseZoneOf(name);
    if (reverse !== null) return checkReverse(name, reverse, typeKey, qtype, nowMs);

    const base = baseDomainOf(name);
    const subLength = base.length < name.length ? name.length - base.length - 1 : 0;
    const tooLong = name.length > options.maxNameLength;
    if (providers.size > 0 && providers.match(name) !== null) return tooLong ? longName(name, base, subLength) : null;
    if (subLength <= 0) {
      // The registrable domain's own name is the zone's, not data; but its queries reach the
      // zone's servers, so the types it is asked under are a channel like its subdomains.
      const distinct = budget.record(base, hashRange(name, 0, 0, typeKey), nowMs);
      if (tooLong) return longName(name, base, subLength);
      return distinct > options.subdomainsPerMinute ? overBudget(base, name, 0, qtype) : null;
    }
    const oastZone = oast.size > 0 ? oast.match(name) : null;
    if (oastZone !== null) {
      return finding("dns.exfil-oast-zone", `query under ${oastZone}, a DNS-logging (OAST) service that shows every query to whoever made the subdomain; subdomain of ${subLength} characters, ${preview(name, 0, subLength)}`);
    }
    const distinct = budget.record(base, hashRange(name, 0, subLength, typeKey), nowMs);

    // A DKIM key is only ever asked for as TXT; without a type, give the selector that benefit.
    const dkimLenient = qtype === undefined || queryTypeNumber(qtype) === TYPE_TXT;
    const content = inspectSubdomain(original, name, subLength, base, dkimLenient);
    if (content !== null) return content;
    if (tooLong) return longName(name, base, subLength);
    if (distinct > options.subdomainsPerMinute) return overBudget(base, name, subLength, qtype);
    return null;
  }

  /**
   * A well-formed reverse name: its content is an address (no content rule can judge it), but the
   * holder of the /24 or /48 delegation chooses the bits below it, so it spends that block's budget.
   */
  function checkReverse(name: string, reverse: ReverseZone, typeKey: number, qtype: string | undefined, nowMs: number): DnsExfilFinding | null {
    if (localReverse.size > 0 && localReverse.match(name) !== null) return null;
    const distinct = budget.record(reverse.zone, hashRange(name, 0, reverse.subLength, typeKey), nowMs);
    return distinct > options.subdomainsPerMinute ? overBudget(reverse.zone, name, reverse.subLength, qtype) : null;
  }

  function overBudget(base: string, name: string, subLength: number, qtype: string | undefined): DnsExfilFinding {
    const what = subLength > 0 ? `this one ${subLength} characters, ${preview(name, 0, subLength)}` : "this one the zone's own name";
    const type = qtype === undefined ? "" : `, type ${safeType(qtype)}`;
    return finding(
      "dns.exfil-subdomain-budget",
      `more than ${options.subdomainsPerMinute} distinct subdomains and query types of ${base} within 60 s (${what}${type})`,
    );
  }

  /** The content rules over the subdomain `name[0, subLength)`; `original` is the name as spelled. */
  function inspectSubdomain(original: string, name: string, subLength: number, base: string, dkimLenient: boolean): DnsExfilFinding | null {
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
    // IDN labels of this name: the bits their code points could carry, and where the first one is.
    let idnBits = 0;
    let idnCodePoints = 0;
    let idnWide = 0;
    let idnLabels = 0;
    let idnStart = -1;
    let idnEnd = -1;

    for (let start = 0; start < subLength; ) {
      let end = name.indexOf(".", start);
      if (end < 0 || end > subLength) end = subLength;
      const labelStart = start;
      start = end + 1;
      if (end === labelStart) continue;
      const first = name.charCodeAt(labelStart);
      if (first === 42 /* * */ && end === labelStart + 1) continue;
      // A DKIM selector (RFC 6376 §3.6.2.1) is whatever the sender chose, often a random token
      // (Amazon SES uses 32 base32 characters): under TXT, a selector up to DKIM_SELECTOR_MAX
      // is not judged. Only the first label: a selector before a `_domainkey` deeper in the name
      // is not where a DKIM lookup puts it. It still counts towards the budget.
      if (dkimLenient && labelStart === 0 && end - labelStart <= DKIM_SELECTOR_MAX && isLabelAt(name, end + 1, subLength, "_domainkey")) continue;
      // Punycode (RFC 3492) turns any code points into an `xn--` label: judge what it decodes to.
      if (first === 120 /* x */ && name.startsWith("xn--", labelStart)) {
        const unicode = domainToUnicode(name.slice(labelStart, end));
        if (unicode !== "") {
          const idn = measureIdnLabel(unicode);
          idnLabels++;
          idnBits += idn.bits;
          idnCodePoints += idn.nonAscii;
          idnWide += idn.wide;
          if (idnStart < 0) {
            idnStart = labelStart;
            idnEnd = end;
          }
          if (worst === null && idn.symbols > 0) {
            worst = { start: labelStart, end, why: `IDN label that decodes to ${idn.codePoints} code points, ${idn.symbols} of them symbols or unassigned (IDNA2008 allows letters, marks and digits)` };
          } else if (worst === null && !idn.scriptsAllowed) {
            worst = { start: labelStart, end, why: `IDN label that decodes to ${idn.codePoints} code points mixing ${idn.scripts.length} scripts (${idn.scripts.slice(0, 4).join(", ")}), which no registry's IDN table allows (UTS #39 §5.2)` };
          }
          // Its ASCII reading is judged like any label: basic code points carry ASCII data as is.
          if (idn.ascii.length > 0) {
            measureLabel(idn.ascii, 0, idn.ascii.length, shape, counts);
            if (worst === null) {
              const why = labelProblem(idn.ascii, 0, idn.ascii.length, shape);
              if (why !== null) worst = { start: labelStart, end, why: `IDN label whose ASCII part is a ${why}` };
            }
            digits += shape.digits;
            letters += shape.letters;
            vowels += shape.vowels;
            symbols += shape.letters + shape.digits + shape.other;
          }
          continue;
        }
      }
      // Underscore prefixes mark protocol labels (`_dmarc`, `_tcp`, RFC 8552): measure what follows.
      const from = first === 95 ? labelStart + 1 : labelStart;
      if (from === end) continue;
      measureLabel(name, from, end, shape, counts);

      if (worst === null) {
        const why = labelProblem(name, from, end, shape);
        if (why !== null) worst = { start: labelStart, end, why };
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

    if (worst === null && idnBits > IDN_MAX_BITS) {
      worst = {
        start: idnStart,
        end: idnEnd,
        why: `${idnLabels} IDN label${idnLabels === 1 ? "" : "s"} decoding to ${idnCodePoints} non-ASCII code points (${idnWide} from scripts of thousands of characters) that could carry ${idnBits} bits (limit ${IDN_MAX_BITS}); IDN labels of real names are short words`,
      };
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

  /** What makes the label `text[from, end)` (measured into `s`) look like data, or null: the per-label rules. */
  function labelProblem(text: string, from: number, end: number, s: LabelShape): string | null {
    if (s.other > 0) return `${s.length}-character label with ${s.other} character${s.other === 1 ? "" : "s"} outside the host-name alphabet (tunnel encoding such as iodine's base128)`;
    if (looksHex(s, options.maxLabelLength + 1)) return `${s.length}-character label of hex digits`;
    if (s.length > options.maxLabelLength && looksRandom(text, from, end, s)) return `${s.length}-character label that looks encoded (${encodingGuess(s)})`;
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

/**
 * A form of a query name that is safe to log: the zone that receives it (the registrable domain
 * as the detector's budget sees it, or the /24 or /48 of a reverse name) with the labels under it
 * replaced by their count, `<2 labels redacted>.attacker.com`; the zone alone when there are none.
 * Lower-case, trailing dot dropped, anything outside printable ASCII shown as `?`. Audit records
 * carry this instead of the name, so a secret smuggled in a label never reaches the log.
 */
export function redactName(qname: string): string {
  let name = qname.endsWith(".") ? qname.slice(0, -1) : qname;
  if (name.length === 0) return ".";
  name = name.toLowerCase();
  const reverse = reverseZoneOf(name);
  const zone = reverse !== null ? reverse.zone : baseDomainOf(name);
  const subLength = reverse !== null ? reverse.subLength : zone.length < name.length ? name.length - zone.length - 1 : 0;
  const shown = zone.replace(/[^\x21-\x7e]/g, "?");
  if (subLength <= 0) return shown;
  let labels = 1;
  for (let i = 0; i < subLength; i++) if (name.charCodeAt(i) === 46) labels++;
  return `<${labels} label${labels === 1 ? "" : "s"} redacted>.${shown}`;
}

/** A query type as it may appear in a detail: what the caller passed, if it looks like a type name. */
function safeType(qtype: string): string {
  const t = qtype.trim().toUpperCase();
  return /^[A-Z0-9_]{1,16}$/.test(t) ? t : "(unrecognised)";
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

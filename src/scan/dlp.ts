/**
 * The DLP engine: the built-in rule pack, the operator's custom rules and the known secrets,
 * run over fragments, each finding paired with the action its rule is configured for. Pure;
 * compiled once per policy (ARCHITECTURE.md, "Compile once, run many").
 */
import type { Finding, Fragment } from "../core/types.ts";
import type { DecodeLimits } from "./decode/index.ts";
import type { KnownSecretScanner } from "./known-secrets.ts";
import { previewOf, type CompiledRules, type Finding as RuleFinding } from "./rules/compile.ts";
import { scanText } from "./text-scan.ts";

export type DlpAction = "block" | "redact" | "warn";

export interface DlpOptions {
  readonly rules: CompiledRules;
  readonly known?: KnownSecretScanner | null;
  /** Action when no entry of `actions` applies. Default block. */
  readonly defaultAction?: DlpAction;
  /**
   * Per rule id (`dlp.card-number`) or family prefix ending in `*` (`dlp.github-*`, `dlp.*`);
   * the longest matching key wins.
   */
  readonly actions?: Readonly<Record<string, DlpAction>>;
  /** Rule ids not run at all. */
  readonly disabled?: readonly string[];
  readonly decodeLimits?: DecodeLimits;
}

export interface DlpHit {
  readonly finding: Finding;
  readonly action: DlpAction;
  /**
   * The text as it stands in the fragment when it was found as written (no decoder), for
   * redaction; kept in memory for the length of one request, never logged or recorded.
   */
  readonly literal: string | null;
}

export interface DlpEngine {
  /** Rule ids the engine runs (built-in and custom, minus disabled), and `dlp.known-secret` when it has secrets. */
  readonly ruleIds: readonly string[];
  scan(fragments: readonly Fragment[]): DlpHit[];
  /**
   * scan(build()) unless the same `key` (all the text the fragments are made of) was found clean
   * before: an agent repeats its requests (polling, the same API call), and a request head costs
   * microseconds to scan. Only SHA-256 digests of clean keys are kept, never the text.
   */
  scanOnce(key: string, build: () => Fragment[]): DlpHit[];
  actionFor(rule: string): DlpAction;
  /** A known secret whose beginning ends `text` (KnownSecretScanner.partialAtEnd); null without known secrets. */
  partialKnownSecret(text: string): string | null;
}

/** Both packs as one: findings of `a` then of `b`. */
export function joinRules(a: CompiledRules, b: CompiledRules | null): CompiledRules {
  if (b === null || b.rules.length === 0) return a;
  return { rules: [...a.rules, ...b.rules], scan: (text: string): RuleFinding[] => [...a.scan(text), ...b.scan(text)] };
}

function withoutDisabled(rules: CompiledRules, disabled: ReadonlySet<string>): CompiledRules {
  if (disabled.size === 0) return rules;
  return { rules: rules.rules.filter((r) => !disabled.has(r.id)), scan: (text) => rules.scan(text).filter((f) => !disabled.has(f.rule)) };
}

/**
 * Locations carry keys (`url.query.<key>`, JSON paths), and a key can itself be the secret:
 * a long token-like run in a location is cut to its first characters before it is shown.
 */
export function safeLocation(location: string): string {
  return location.replace(/[A-Za-z0-9_+/=-]{24,}/g, (run) => `${run.slice(0, 4)}…`);
}

/** Headers whose values repeat from request to request and never hold a credential by design. */
const CACHED_LOCATION = /^(?:url\.host|header\.(?:host|user-agent|accept|accept-encoding|accept-language|content-type|cache-control|pragma|connection|te|dnt|sec-fetch-[a-z]+|sec-ch-[a-z-]+|upgrade-insecure-requests|x-stainless-[a-z-]+|anthropic-version|openai-beta))$/;
const CACHE_MAX_TEXT = 256;
/** A short value at one of CACHED_LOCATION's places (the first-letter test spares body fragments the regex). */
const cacheable = (f: Fragment): boolean => f.text.length <= CACHE_MAX_TEXT && (f.location.charCodeAt(0) === 104 || f.location === "url.host") && CACHED_LOCATION.test(f.location);
/** Digests of clean request heads kept per engine (scanOnce). */
const CLEAN_KEYS_MAX = 8192;
const CACHE_MAX_ENTRIES = 4096;
const FORM_ENCODED = /^(?:url\.query|body\.form|joined\((?:url\.query|body\.form))/;
/**
 * Fragments at least this long are remembered one by one when found clean (their SHA-256
 * digest, per engine): an agent sends its whole conversation again with every turn, so most of a
 * request body is text the engine read a moment ago. Shorter ones (keys, roles, numbers) are
 * remembered together, one digest for all of a request's.
 */
export const REMEMBER_MIN_LENGTH = 64;
/** Digests of clean fragment texts kept per engine (about 100 bytes each); cleared when full. */
const CLEAN_TEXTS_MAX = 32768;

export function createDlpEngine(options: DlpOptions): DlpEngine {
  const disabled = new Set(options.disabled ?? []);
  const rules = withoutDisabled(options.rules, disabled);
  const known = options.known && options.known.size > 0 && !disabled.has("dlp.known-secret") ? options.known : null;
  const fallback = options.defaultAction ?? "block";
  const exact = new Map<string, DlpAction>();
  const prefixes: [string, DlpAction][] = [];
  for (const [key, action] of Object.entries(options.actions ?? {})) {
    if (key.endsWith("*")) prefixes.push([key.slice(0, -1), action]);
    else exact.set(key, action);
  }
  prefixes.sort((a, b) => b[0].length - a[0].length);
  const actionFor = (rule: string): DlpAction => exact.get(rule) ?? prefixes.find(([p]) => rule.startsWith(p))?.[1] ?? fallback;

  // Texts of common headers found clean before (the same User-Agent, Accept, Content-Type on
  // every request of an agent): exact text only, bounded, and per engine, so a reload (new rules,
  // new known secrets) starts afresh. Credentials and cookies are never kept. Only heads
  // (scanOnce) use it: a body's fragments are never headers, and reading their locations would
  // only cost time.
  const cleanCache = new Set<string>();
  function remember(fragments: readonly Fragment[]): void {
    for (const f of fragments) {
      if (!cacheable(f)) continue;
      if (cleanCache.size >= CACHE_MAX_ENTRIES) cleanCache.clear();
      cleanCache.add(f.text);
    }
  }

  /** A fragment as the fast path reads it: its text, and its `+`-as-space reading in a form (see scan). */
  function linesOf(f: Fragment, out: string[]): void {
    out.push(f.text);
    if (f.text.includes("+") && FORM_ENCODED.test(f.location)) out.push(f.text.replaceAll("+", " "));
  }

  function anyFinding(lines: readonly string[]): boolean {
    const text = lines.join("\n");
    // The decoding budget of the fragments taken one by one, not of one text of their length.
    const limits = { ...options.decodeLimits, maxBytes: options.decodeLimits?.maxBytes ?? Math.max(64 * 1024, 4 * text.length) };
    // Decoys in some fragments can use up the view search of the one text; then each fragment
    // is scanned on its own, with its own search.
    const report = { truncated: false };
    return scanText(rules, text, limits, report).length > 0 || report.truncated || (known !== null && known.scan(text).length > 0);
  }

  /** One long text scanned as the slow path would (the `+` reading is never needed: see textDigest), and found clean with its search complete. */
  function cleanAlone(text: string): boolean {
    const report = { truncated: false };
    return scanText(rules, text, options.decodeLimits, report).length === 0 && !report.truncated && (known === null || known.scan(text).length === 0);
  }

  // Digests of texts the fast path found clean: long fragments one by one (each scanned on its
  // own), and the short ones of a request as one block (keys, roles, numbers: the same from
  // turn to turn; remembered only as that exact block). Exact text
  // only (SHA-256), per engine, so a reload (new rules, new known secrets) starts afresh. A
  // form-encoded fragment with `+` is read a second way, so a long one is never taken as read
  // (short ones are, with both readings in the block).
  const cleanTexts = new Set<string>();
  const textDigest = (f: Fragment): string | null => (f.text.includes("+") && FORM_ENCODED.test(f.location) ? null : Bun.SHA256.hash(f.text, "base64"));
  const blockDigest = (lines: readonly string[]): string => Bun.SHA256.hash(`short\n${lines.join("\n")}`, "base64");

  const cleanKeys = new Set<string>();
  const scanOnce = (key: string, build: () => Fragment[]): DlpHit[] => {
    const digest = Bun.SHA256.hash(key, "base64");
    if (cleanKeys.has(digest)) return [];
    const hits = scan(build(), true);
    if (hits.length === 0) {
      if (cleanKeys.size >= CLEAN_KEYS_MAX) cleanKeys.clear();
      cleanKeys.add(digest);
    }
    return hits;
  };

  return {
    scanOnce,
    ruleIds: [...rules.rules.map((r) => r.id), ...(known ? ["dlp.known-secret"] : [])],
    actionFor,
    scan: (fragments) => scan(fragments, false),
    partialKnownSecret: (text) => (known === null ? null : known.partialAtEnd(text)),
  };

  /** `head`: the fragments are a request head's (scanOnce), whose common headers are remembered. */
  function scan(fragments: readonly Fragment[], head: boolean): DlpHit[] {
    // Fast path: most requests hold nothing. Their fragments are scanned once, as one text,
    // one per line (no rule is anchored, and a match in a fragment is a match there: only
    // quoted-printable's soft break reads across a line, and it only adds views); when that
    // finds something, or its view search was cut short, they are scanned one by one. A
    // request is 20-odd short fragments: per-fragment setup (decoder passes, the keyword
    // automaton) would cost more than the matching. Fragments read clean before (common
    // headers, long texts by digest) are left out of the fast path.
    const fresh: Fragment[] = [];
    const short: string[] = [];
    const other: string[] = [];
    const long: { text: string; digest: string }[] = [];
    for (const f of fragments) {
      if (head && cleanCache.size > 0 && cacheable(f) && cleanCache.has(f.text)) continue;
      fresh.push(f);
      if (f.text.length < REMEMBER_MIN_LENGTH) linesOf(f, short);
      else {
        const digest = textDigest(f);
        if (digest === null) linesOf(f, other);
        else if (cleanTexts.has(digest)) fresh.pop();
        else long.push({ text: f.text, digest });
      }
    }
    if (fresh.length === 0) return [];
    if (fragments.length > 1) {
      let block: string | null = null;
      if (short.length > 0) {
        block = blockDigest(short);
        if (cleanTexts.has(block)) {
          short.length = 0;
          block = null;
        }
      }
      const lines = other.length === 0 ? short : [...short, ...other];
      // A long text is remembered on its own, so it is judged on its own: clean next to its
      // neighbours in one text is not the same as clean anywhere.
      if ((lines.length === 0 || !anyFinding(lines)) && long.every((l) => cleanAlone(l.text))) {
        if (head) remember(fresh);
        if (cleanTexts.size + long.length + 1 > CLEAN_TEXTS_MAX) cleanTexts.clear();
        for (const l of long) cleanTexts.add(l.digest);
        if (block !== null) cleanTexts.add(block);
        return [];
      }
    }
    const hits: DlpHit[] = [];
    const seen = new Set<string>();
    const add = (rule: string, location: string, preview: string, via: readonly string[], literal: string | null) => {
      const key = `${rule}\u0000${location}\u0000${preview}`;
      if (seen.has(key)) return;
      seen.add(key);
      hits.push({ finding: { rule, location: safeLocation(location), preview, via }, action: actionFor(rule), literal });
    };
    for (const fragment of fragments) {
      const text = fragment.text;
      if (text.length === 0) continue;
      for (const f of scanText(rules, text, options.decodeLimits)) {
        add(f.rule, fragment.location, f.preview, f.via, f.via.length === 0 ? text.slice(f.start, f.end) : null);
      }
      // In a query string or a form body `+` is a space (WHATWG URL, application/x-www-form-
      // urlencoded): a seed phrase or a PEM header arrives as `word+word`. Fragments stay raw
      // (`+` is also base64), so the spaced reading is scanned as well.
      if (text.includes("+") && FORM_ENCODED.test(fragment.location)) {
        for (const f of scanText(rules, text.replaceAll("+", " "), options.decodeLimits)) add(f.rule, fragment.location, f.preview, ["form", ...f.via], null);
      }
      if (known) {
        for (const m of known.scan(text)) add(m.rule, fragment.location, m.preview, m.form === "raw" ? [] : [m.form], text.slice(m.start, m.end));
      }
    }
    return maskLiteralsInLocations(hits);
  }
}

/** Rounds of redactSecrets before a text that still holds a finding is withheld whole. */
const REDACT_ROUNDS = 8;

/**
 * `text` with every secret the engine finds in it replaced by a preview, whatever the rule's
 * action (for text that goes into records whole: an agent's label, a jail's command line). Every
 * place a found secret is written is cut, overlapping ones as one, and the result is scanned
 * again until nothing is found (a second secret with the same preview as the first is reported
 * once per scan). A secret seen only after decoding cannot be cut out as written, and a text
 * still not clean after REDACT_ROUNDS scans is withheld whole.
 */
export function redactSecrets(text: string, engine: DlpEngine, location: string): string {
  let out = text;
  for (let round = 0; round < REDACT_ROUNDS; round++) {
    const hits = engine.scan([{ location, text: out }]);
    if (hits.length === 0) return out;
    const spans: [number, number][] = [];
    for (const hit of hits) {
      if (hit.literal === null || hit.literal.length === 0) return `[withheld: ${hit.finding.rule} found in it]`;
      for (let at = out.indexOf(hit.literal); at >= 0; at = out.indexOf(hit.literal, at + 1)) spans.push([at, at + hit.literal.length]);
    }
    spans.sort((a, b) => a[0] - b[0]);
    let cut = "";
    let from = 0;
    for (let i = 0; i < spans.length; ) {
      let [start, end] = spans[i]!;
      for (i++; i < spans.length && spans[i]![0] <= end; i++) end = Math.max(end, spans[i]![1]);
      cut += out.slice(from, start) + previewOf(out.slice(start, end));
      from = end;
    }
    out = cut + out.slice(from);
  }
  return `[withheld: still holds a secret after ${REDACT_ROUNDS} rounds of redaction]`;
}

/** A text that goes into records whole, cut to `max` characters (after redactSecrets): a cut inside a word drops the word. */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  const space = text.lastIndexOf(" ", max - 1);
  return `${text.slice(0, space > 0 ? space : 0)}…`;
}

/**
 * A key can be a secret too (`{"<token>": ...}`, a cookie named by a token): it is then part of
 * the location of every value under it. Each value found as written is replaced by its preview
 * in every location, whatever its length (safeLocation only cuts long runs).
 */
function maskLiteralsInLocations(hits: DlpHit[]): DlpHit[] {
  const literals = hits.filter((h) => h.literal !== null && h.literal.length >= 4).map((h) => [h.literal!, h.finding.preview] as const);
  if (literals.length === 0) return hits;
  return hits.map((h) => {
    let location = h.finding.location;
    for (const [literal, preview] of literals) if (location.includes(literal)) location = location.split(literal).join(preview);
    return location === h.finding.location ? h : { ...h, finding: { ...h.finding, location } };
  });
}

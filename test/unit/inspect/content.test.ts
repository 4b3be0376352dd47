/**
 * The DLP engine (scan/dlp.ts) and content decisions (inspect/content.ts): actions per rule and
 * family, disabled rules, known secrets, the form reading of `+`, locations that could carry a
 * secret, redaction (and that a Redactor never serialises its values), streaming with overlap.
 */
import { describe, expect, test } from "bun:test";
import { builtinRules } from "../../../src/config/load.ts";
import type { HttpRequestAction } from "../../../src/core/types.ts";
import { BodyStreamScanner, decideFindings, inspectBody, inspectHead, mergeVerdicts, Redactor } from "../../../src/inspect/content.ts";
import { createDlpEngine, safeLocation } from "../../../src/scan/dlp.ts";
import { compileKnownSecrets } from "../../../src/scan/known-secrets.ts";
import { sampleSecret } from "../../helpers/dlp-samples.ts";
import { httpRequest } from "../../helpers/actions.ts";

const RULES = await builtinRules();
const GITHUB = sampleSecret("dlp.github-token");
const STRIPE = sampleSecret("dlp.stripe-secret-key");
const engine = (opts: Partial<Parameters<typeof createDlpEngine>[0]> = {}) => createDlpEngine({ rules: RULES, ...opts });
const text = (t: string) => [{ location: "body.text", text: t }];

/** A GET to api.example.com accepting anything. */
const request = (over: Partial<HttpRequestAction> = {}) => httpRequest({ method: "GET", scheme: "http", host: "api.example.com", port: 80, path: "/", headers: [["Accept", "*/*"]], ...over });

describe("DLP engine: actions", () => {
  test("block by default; an exact rule id beats a family prefix, the longest prefix wins", () => {
    const e = engine({ actions: { "dlp.*": "warn", "dlp.github-*": "redact", "dlp.github-token": "block" } });
    expect(e.actionFor("dlp.github-token")).toBe("block");
    expect(e.actionFor("dlp.github-oauth-token")).toBe("redact");
    expect(e.actionFor("dlp.stripe-secret-key")).toBe("warn");
    expect(engine().actionFor("dlp.stripe-secret-key")).toBe("block");
    expect(engine({ defaultAction: "warn" }).actionFor("dlp.stripe-secret-key")).toBe("warn");
  });

  test("a disabled rule neither runs nor is listed", () => {
    const e = engine({ disabled: ["dlp.github-token"] });
    expect(e.scan(text(`t ${GITHUB} `))).toEqual([]);
    expect(e.ruleIds).not.toContain("dlp.github-token");
    expect(engine().scan(text(`t ${GITHUB} `)).map((h) => h.finding.rule)).toEqual(["dlp.github-token"]);
  });

  test("known secrets join the scan under dlp.known-secret, named by source, never shown", () => {
    const known = compileKnownSecrets([{ name: "env:DB_PASSWORD", value: "hunter2-but-longer-Q7" }]);
    const e = engine({ known });
    const hits = e.scan(text(`pw=${Buffer.from("hunter2-but-longer-Q7").toString("base64")}`));
    expect(hits.map((h) => [h.finding.rule, h.finding.preview])).toEqual([["dlp.known-secret", "known:env:DB_PASSWORD"]]);
    expect(JSON.stringify(hits.map((h) => h.finding))).not.toContain("hunter2");
  });

  test("in a query or form value `+` is also read as a space", () => {
    const phrase = "-----BEGIN+OPENSSH+PRIVATE+KEY-----";
    const form = [{ location: "body.form.k", text: `${phrase}\n${"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW".repeat(3)}\n-----END+OPENSSH+PRIVATE+KEY-----` }];
    const hits = engine().scan(form);
    expect(hits.some((h) => h.finding.via[0] === "form")).toBe(true);
    expect(engine().scan([{ location: "body.text", text: form[0]!.text }]).some((h) => h.finding.via[0] === "form")).toBe(false);
  });

  test("a location that could itself be a secret (a key) is cut short", () => {
    expect(safeLocation(`url.query.${GITHUB}`)).toBe("url.query.ghp_…");
    expect(safeLocation("body.json.messages[0].content")).toBe("body.json.messages[0].content");
    const hits = engine().scan([{ location: `body.json-key.${GITHUB}`, text: `x ${GITHUB} y` }]);
    expect(JSON.stringify(hits.map((h) => h.finding))).not.toContain(GITHUB);
  });
});

describe("content decisions", () => {
  test("block wins over redact wins over warn; every finding is listed, no value in any reason", () => {
    const e = engine({ actions: { "dlp.github-token": "redact", "dlp.stripe-secret-key": "warn" } });
    const v = decideFindings(e.scan(text(`a ${GITHUB} b ${STRIPE} c`)))!;
    expect(v.decision.verdict).toBe("redact");
    expect(v.decision.findings!.map((f) => f.rule).sort()).toEqual(["dlp.github-token", "dlp.stripe-secret-key"]);
    expect(JSON.stringify(v)).not.toContain(GITHUB);
    expect(JSON.stringify(v)).not.toContain(STRIPE);
    expect(v.redactor!.apply(`a ${GITHUB} b`)).toBe("a [REDACTED:dlp.github-token] b");
    const blocked = decideFindings(engine({ actions: { "dlp.github-token": "redact" } }).scan(text(`${GITHUB} ${STRIPE}`)))!;
    expect(blocked.decision.verdict).toBe("block");
    expect(blocked.decision.reasons[0]!.rule).toBe("dlp.stripe-secret-key");
    expect(decideFindings([])).toBeNull();
  });

  test("redact of a secret seen only through a decoder blocks: it cannot be cut out of the bytes", () => {
    const e = engine({ actions: { "dlp.github-token": "redact" } });
    const v = decideFindings(e.scan(text(Buffer.from(`token ${GITHUB}`).toString("base64"))))!;
    expect(v.decision.verdict).toBe("block");
    expect(v.decision.reasons[0]!.detail).toContain("cannot be cut out");
  });

  test("a Redactor serialises to {} and replaces on bytes, leaving other bytes as they were", () => {
    const r = new Redactor();
    r.add(GITHUB, "dlp.github-token");
    expect(JSON.stringify({ r })).toBe('{"r":{}}');
    const bytes = Buffer.concat([Buffer.from([0xff, 0x00]), Buffer.from(` ${GITHUB} `), Buffer.from([0xfe])]);
    const out = Buffer.from(r.applyBytes(bytes));
    expect(out.subarray(0, 2)).toEqual(Buffer.from([0xff, 0x00]));
    expect(out.at(-1)).toBe(0xfe);
    expect(out.toString("latin1")).toContain("[REDACTED:dlp.github-token]");
  });

  test("the head: query values, headers and cookies; mergeVerdicts keeps the stricter verdict and both redactors", () => {
    const e = engine({ actions: { "dlp.github-token": "redact" } });
    const head = inspectHead(request({ query: `a=1&tok=${GITHUB}`, headers: [["Cookie", `sid=abc; gh=${GITHUB}`]] }), e)!;
    expect(head.decision.findings!.map((f) => f.location).sort()).toEqual(["header.cookie", "header.cookie.gh", "url.query.tok"]);
    const body = inspectBody("application/json", Buffer.from(JSON.stringify({ k: STRIPE })), e).verdict!;
    expect(mergeVerdicts(head, body)!.decision.verdict).toBe("block");
    const both = mergeVerdicts(head, decideFindings(engine({ actions: { "dlp.*": "redact" } }).scan(text(` ${STRIPE} `))))!;
    expect(both.decision.verdict).toBe("redact");
    expect(both.redactor!.apply(`${GITHUB} ${STRIPE}`)).toBe("[REDACTED:dlp.github-token] [REDACTED:dlp.stripe-secret-key]");
    expect(inspectHead(request({ query: "page=2&q=hello" }), e)).toBeNull();
  });
});

describe("streamed bodies", () => {
  test("a secret cut by a chunk boundary is found once; the window stays bounded", () => {
    const s = new BodyStreamScanner(engine(), 256);
    const body = `${"lorem ipsum ".repeat(100)}${GITHUB} ${"dolor sit amet ".repeat(100)}`;
    const cut = body.indexOf(GITHUB) + 10;
    const first = s.push(body.slice(0, cut));
    const second = s.push(body.slice(cut));
    expect(first).toEqual([]);
    expect(second.map((h) => h.finding.rule)).toEqual(["dlp.github-token"]);
    expect(s.push(" more clean text ")).toEqual([]);
  });
});

describe("streamed bodies: encoded runs across reads", () => {
  test("a token inside a long base64 run sent in small reads is decoded from the run's start", () => {
    const s = new BodyStreamScanner(engine(), 256);
    const blob = Buffer.from(`${"padding text to make the run long. ".repeat(40)} ${GITHUB} ${"and more text after it. ".repeat(40)}`).toString("base64");
    const body = `data=${blob}&end=1`;
    const found: string[] = [];
    for (let i = 0; i < body.length; i += 513) for (const h of s.push(body.slice(i, i + 513))) found.push(h.finding.rule);
    expect(found).toContain("dlp.github-token");
  });
});

describe("clean-request memory", () => {
  test("a head found clean is not scanned again; one with findings always is", () => {
    const e = engine();
    let builds = 0;
    const clean = () => {
      builds++;
      return [{ location: "url.path", text: "/v1/models" }, { location: "header.accept", text: "application/json" }];
    };
    expect(e.scanOnce("k1", clean)).toEqual([]);
    expect(e.scanOnce("k1", clean)).toEqual([]);
    expect(builds).toBe(1);
    let dirtyBuilds = 0;
    const dirty = () => {
      dirtyBuilds++;
      return [{ location: "url.query.t", text: GITHUB }, { location: "header.accept", text: "*/*" }];
    };
    expect(e.scanOnce("k2", dirty)).toHaveLength(1);
    expect(e.scanOnce("k2", dirty)).toHaveLength(1);
    expect(dirtyBuilds).toBe(2);
    // inspectHead keys on everything the fragments are made of: a new query value is a new key.
    expect(inspectHead(request({ query: "a=1" }), e)).toBeNull();
    expect(inspectHead(request({ query: `a=${GITHUB}` }), e)?.decision.verdict).toBe("block");
  });
});

describe("clean-text memory", () => {
  /** The built-in rules, recording every text they are asked to scan. */
  const spying = () => {
    const scanned: string[] = [];
    const rules = { rules: RULES.rules, scan: (t: string) => (scanned.push(t), RULES.scan(t)) };
    return { e: createDlpEngine({ rules }), scanned, saw: (piece: string) => scanned.some((t) => t.includes(piece)) };
  };
  const history = "The retry helper below sometimes waits far longer than the configured ceiling. Why is that?";
  const turn = (n: number) => [
    { location: "body.json.messages[0].content", text: history },
    { location: "body.json.messages[0].role", text: "user" },
    { location: "body.json.messages[1].content", text: `Turn ${n}: and how would jitter change the total wait over five attempts?` },
  ];

  test("a long fragment read clean is not read again, a new one is; short ones are remembered as one block", () => {
    const { e, scanned, saw } = spying();
    expect(e.scan(turn(1))).toEqual([]);
    expect(saw(history)).toBe(true);
    scanned.length = 0;
    expect(e.scan(turn(2))).toEqual([]);
    expect(saw(history)).toBe(false);
    expect(saw("Turn 2:")).toBe(true);
    expect(saw("user")).toBe(false);
    // One short value changed: the short ones are read again, all of them.
    scanned.length = 0;
    const other = [...turn(2).slice(0, 1), { location: "body.json.messages[0].role", text: "tool" }, ...turn(2).slice(2), { location: "body.json.n", text: "42" }];
    expect(e.scan(other)).toEqual([]);
    expect(saw("tool") && saw("42")).toBe(true);
    expect(saw(history)).toBe(false);
  });

  test("a short secret is found whatever short block was remembered before", () => {
    const { e } = spying();
    const shorts = (v: string) => [{ location: "body.json.a", text: "alpha" }, { location: "body.json.b", text: v }, { location: "body.json.c", text: "gamma" }];
    expect(e.scan(shorts("beta"))).toEqual([]);
    const aws = sampleSecret("dlp.aws-access-key-id");
    expect(aws.length).toBeLessThan(64);
    expect(e.scan(shorts(aws)).map((h) => h.finding.rule)).toContain("dlp.aws-access-key-id");
    expect(e.scan(shorts("beta"))).toEqual([]);
  });

  test("memory never hides a secret: the same place with one character changed, or a secret next to remembered text", () => {
    const { e } = spying();
    expect(e.scan(turn(1))).toEqual([]);
    const changed = [{ location: "body.json.messages[0].content", text: `${history} ${GITHUB}` }, ...turn(1).slice(1)];
    expect(e.scan(changed).map((h) => h.finding.rule)).toEqual(["dlp.github-token"]);
    const beside = [...turn(1), { location: "body.json.messages[2].content", text: `use ${STRIPE} for this` }];
    expect(e.scan(beside).map((h) => h.finding.rule)).toEqual(["dlp.stripe-secret-key"]);
  });

  test("a request with a finding teaches nothing; form-encoded text with `+` and short text are never taken as read", () => {
    const { e, saw, scanned } = spying();
    const dirty = [...turn(1), { location: "body.json.messages[2].content", text: GITHUB }];
    expect(e.scan(dirty)).toHaveLength(1);
    scanned.length = 0;
    expect(e.scan(turn(1))).toEqual([]);
    expect(saw(history)).toBe(true);
    const form = [{ location: "body.form.q", text: `${"word+".repeat(20)}end` }, { location: "body.form.r", text: "x" }];
    expect(e.scan(form)).toEqual([]);
    scanned.length = 0;
    expect(e.scan(form)).toEqual([]);
    expect(saw("word+word")).toBe(true);
  });

  test("each engine remembers on its own (a reload starts afresh)", () => {
    const a = spying();
    const b = spying();
    expect(a.e.scan(turn(1))).toEqual([]);
    expect(b.e.scan(turn(1))).toEqual([]);
    expect(b.saw(history)).toBe(true);
  });
});

describe("third security review: regressions", () => {
  const tokenText = (pad = 0) => `token ${GITHUB}.`.padEnd(pad, ".");
  const rulesOf = (hits: readonly { finding: { rule: string } }[]) => hits.map((h) => h.finding.rule);

  test("a token across the wrap of a base64 block that does not decode whole (a zero tail glued on) is found", () => {
    let t = `here is the deploy config, token ${GITHUB} please keep it`;
    while (Buffer.from(t).toString("base64").match(/[+/=]/) || t.length % 3 !== 0) t += ".";
    const blob = `${Buffer.from(t).toString("base64")}/${"A".repeat(60)}`;
    const lines = blob.match(/.{1,76}/g)!.join("\n");
    expect(rulesOf(engine().scan([{ location: "body.json.content", text: lines }]))).toContain("dlp.github-token");
  });

  test("two long base64 values next to each other (object or array) keep their own decodings", () => {
    const A = Buffer.from("The quarterly summary follows in the attached note; the figures are final and were checked twice by us.".slice(0, 98)).toString("base64");
    const B = Buffer.from(tokenText(48)).toString("base64");
    let minutes = "Minutes of the weekly sync. Nothing confidential here, just plans and dates for the next release. ".repeat(5);
    while (minutes.length % 3) minutes += ".";
    const M = Buffer.from(minutes).toString("base64");
    const slashed = `/${Buffer.from(tokenText()).toString("base64").replace(/=+$/, "")}`;
    for (const body of [{ summary: A, note: B }, [A, B], { minutes: M, attachment: slashed }, [M, slashed]]) {
      const v = inspectBody("application/json", new TextEncoder().encode(JSON.stringify(body)), engine());
      expect({ body: Object.keys(body), verdict: v.verdict?.decision.verdict }).toEqual({ body: Object.keys(body), verdict: "block" });
    }
    expect(rulesOf(engine().scan([{ location: "body.text", text: `${A}\n${B}` }]))).toContain("dlp.github-token");
  });

  test("decoys that use up the decode budget make the fast path read each fragment on its own, and teach the memory nothing", () => {
    const X = Buffer.from(`token ${GITHUB} ok`).toString("base64");
    const fragments = [
      { location: "body.json.messages[0].content", text: "The meeting notes are attached below and nothing in them is secret at all. ".repeat(270) },
      { location: "body.json.a", text: "100%41" },
      { location: "body.json.b", text: "caf\\u00e9" },
      { location: "body.json.c", text: "fish &amp; chips" },
      { location: "body.json.d", text: "x=3Dy" },
      { location: "body.json.e", text: X },
    ];
    const e = engine();
    expect(rulesOf(e.scan(fragments))).toContain("dlp.github-token");
    expect(rulesOf(e.scan([fragments[5]!]))).toContain("dlp.github-token");
  });
});

describe("second security review: regressions", () => {
  const b64 = (x: string) => Buffer.from(x).toString("base64");
  const hex = (x: string) => Buffer.from(x).toString("hex");
  const rules = (fragments: { location: string; text: string }[]) => engine().scan(fragments).map((h) => h.finding.rule);

  test("base64 and hex of mostly non-ASCII text around a token are still decoded", () => {
    for (const text of [b64(`Пароль от сервера: ${GITHUB} не потеряй`), hex(`Пароль от сервера: ${GITHUB} не потеряй`), b64(`${"ж".repeat(15)} ${GITHUB}`), hex(`${"é".repeat(25)} ${GITHUB}`)]) {
      expect(rules([{ location: "body.text", text }])).toContain("dlp.github-token");
    }
  });

  test("decoys and a line ending in = do not break a base64 chain (layered views, with and without quoted-printable)", () => {
    const decoys = ["%41%42%43", "&amp;&lt;x", "\\u0041\\u0042", "=41=42=43", "0123456789abcdef0123456789abcdef0123", "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZ", "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGk"];
    const text = `${decoys.join("\n")}\na=\n${b64(b64(` ${GITHUB} `))}`;
    expect(rules([{ location: "body.text", text }])).toContain("dlp.github-token");
  });

  test("UTF-16 text after an ASCII prefix is read as UTF-16, held or streamed", async () => {
    const { bodyFragments } = await import("../../../src/inspect/fragments.ts");
    const body = Buffer.concat([Buffer.from("x".repeat(200)), Buffer.from(`token ${GITHUB}`, "utf16le")]);
    expect(rules(bodyFragments("text/plain", body).fragments)).toContain("dlp.github-token");
  });

  test("a string or UTF-16 token cut by a read boundary in a streamed binary body is found", async () => {
    const { StreamedBody } = await import("../../../src/proxy/request-scan.ts");
    const settings = { engine: engine(), maxBufferBytes: 16384, overlapBytes: 1024, maxHeldTotalBytes: 1 << 20, inflate: { maxOutputBytes: 1 << 20, maxRatio: 100 } };
    const junk = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37) % 31));
    for (const token of [Buffer.from(GITHUB), Buffer.from(GITHUB, "utf16le")]) {
      for (const cut of [3, 6, 20, 41]) {
        const s = new StreamedBody(settings, false);
        const first = s.push(Buffer.concat([junk(20000), token.subarray(0, cut)]));
        const second = s.push(Buffer.concat([token.subarray(cut), junk(20000)]));
        expect({ cut, stopped: Boolean(first.stop ?? second.stop) }).toEqual({ cut, stopped: true });
      }
    }
  });
});

describe("sensitive headers", () => {
  test("a finding in a credential header says so in its reason; elsewhere it does not", () => {
    const v = inspectHead(request({ headers: [["Authorization", `Bearer ${GITHUB}`], ["X-Debug", GITHUB]] }), engine())!;
    const details = v.decision.reasons.map((r) => r.detail);
    expect(details.find((d) => d.includes("header.authorization"))).toContain("(a credential header)");
    expect(details.find((d) => d.includes("header.x-debug"))).not.toContain("(a credential header)");
  });
});

/**
 * Credential injection through dist/sluice: the agent holds a placeholder, sluice puts the real
 * value in the entry's header on intercepted HTTPS to the entry's hosts. A placeholder sent to
 * another host, or in plain HTTP, is refused; the real value sent by the agent is a known
 * secret; the value is never in any line sluice prints. Origins on 127.0.0.1 (app.test and
 * plain.test through a fake DNS server).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCa } from "../../src/proxy/tls-ca.ts";
import { startFakeDns, type FakeDns } from "../helpers/fake-dns.ts";
import { stopSluices } from "../helpers/origins.ts";
import { BIN, startSluice, tempDir, type Running } from "../helpers/sluice.ts";

const T = 60_000;
const REAL = "real-api-key-7f3a9c1e5b2d8f4a6c0e";
const REAL_FILE = "file-held-key-2b7e151628aed2a6abf7";
/** A value that needs escaping in a URL and in JSON. */
const REAL_QUERY = 'q-key 5e0d"91+/a7c4&b2=';

let dns: FakeDns;
let tlsOrigin: ReturnType<typeof Bun.serve>;
let plainOrigin: ReturnType<typeof Bun.serve>;
let sl: Running;
/** The same policy in audit mode. */
let auditing: Running;
let dir = "";
/** What the origins were sent: path, Authorization and X-Api-Key. */
const seen: { path: string; method: string; auth: string | null; key: string | null; underscored: string | null; token: string | null; body: string }[] = [];
let placeholders: Record<string, string> = {};

const handler = async (req: Request) => {
  const url = new URL(req.url);
  const body = await req.text();
  seen.push({ path: url.pathname + url.search, method: req.method, auth: req.headers.get("authorization"), key: req.headers.get("x-api-key"), underscored: req.headers.get("x_api_key"), token: req.headers.get("x-token"), body });
  const auth = req.headers.get("authorization") ?? "";
  // Origins that echo what they were sent (an echo endpoint, an error quoting the request).
  switch (url.pathname) {
    case "/echo":
      return Response.json({ headers: { authorization: auth } }, { headers: { "x-seen-auth": auth } });
    case "/echo-gzip":
      return new Response(Bun.gzipSync(Buffer.from(`you sent ${auth}`)), { headers: { "content-type": "text/plain", "content-encoding": "gzip" } });
    case "/echo-binary":
      return new Response(Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(auth), Buffer.from([255])]), { headers: { "content-type": "application/octet-stream" } });
    case "/echo-split": {
      // The value cut across two chunks of a chunked body, sent apart.
      const cut = auth.length - 9;
      return new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(Buffer.from(`first ${auth.slice(0, cut)}`));
            await Bun.sleep(50);
            c.enqueue(Buffer.from(`${auth.slice(cut)} last`));
            c.close();
          },
        }),
        { headers: { "content-type": "application/octet-stream" } },
      );
    }
    case "/echo-sse":
      return new Response(`data: {"echo":"${auth}"}\n\n`, { headers: { "content-type": "text/event-stream" } });
  }
  return new Response(`ok ${url.pathname}`);
};

const config = `version: 1
proxy: { listen: "127.0.0.1:0", require_agent: false }
admin: { listen: "127.0.0.1:0" }
dns: { listen: "127.0.0.1:0", upstreams: ["DNS"], timeout: 1s, attempts: 1 }
egress:
  allow: ["127.0.0.1", "app.test", "plain.test"]
  ports: { connect: ["1-65535"], http: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
tls:
  intercept: true
  extra_ca_files: [origin-ca.pem]
credentials:
  - name: app
    hosts: ["app.test"]
    source: { env: SLUICE_TEST_CRED }
    header: { name: Authorization, value: "Bearer {secret}" }
  - name: legacy
    hosts: ["plain.test"]
    source: { file: legacy.key }
    header: { name: X-Api-Key, value: "{secret}" }
    allow_plaintext: true
  - name: query
    hosts: ["app.test"]
    source: { env: SLUICE_TEST_QUERY_CRED }
    replace: true
`;

beforeAll(async () => {
  dns = await startFakeDns({ names: { "app.test": { answers: [{ type: "A", data: "127.0.0.1" }] }, "plain.test": { answers: [{ type: "A", data: "127.0.0.1" }] } } });
  const ca = await createCa(() => Date.now(), { commonName: "test origin CA" });
  const leaf = await ca.mint("app.test");
  tlsOrigin = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: leaf.certPem, key: leaf.keyPem }, fetch: handler });
  plainOrigin = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler });
  dir = tempDir();
  writeFileSync(join(dir, "origin-ca.pem"), ca.certPem);
  writeFileSync(join(dir, "legacy.key"), `${REAL_FILE}\n`);
  chmodSync(join(dir, "legacy.key"), 0o600);
  sl = await startSluice(config.replace("DNS", dns.address), { dir, env: { SLUICE_TEST_CRED: REAL, SLUICE_TEST_QUERY_CRED: REAL_QUERY } });
  const auditDir = tempDir();
  writeFileSync(join(auditDir, "origin-ca.pem"), ca.certPem);
  writeFileSync(join(auditDir, "legacy.key"), `${REAL_FILE}\n`);
  chmodSync(join(auditDir, "legacy.key"), 0o600);
  auditing = await startSluice(`mode: audit\n${config.replace("DNS", dns.address)}`, { dir: auditDir, env: { SLUICE_TEST_CRED: REAL, SLUICE_TEST_QUERY_CRED: REAL_QUERY } });
  const listed = (await (await fetch(`${sl.adminUrl}/v1/credentials`, { headers: { authorization: `Bearer ${sl.adminToken}` } })).json()) as { credentials: { name: string; placeholder: string }[] };
  placeholders = Object.fromEntries(listed.credentials.map((c) => [c.name, c.placeholder]));
}, T);

afterAll(async () => {
  await stopSluices(sl, auditing);
  tlsOrigin?.stop(true);
  plainOrigin?.stop(true);
  await dns?.stop();
});

const curl = async (url: string, headers: string[] = [], via = sl, extra: string[] = []) => {
  const args = ["curl", "-sS", "--max-time", "10", "-x", via.proxyUrl, "--cacert", join(via.home, "ca.pem"), "-w", "\n%{http_code}", ...extra];
  for (const h of headers) args.push("-H", h);
  const p = Bun.spawn([...args, url], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const i = out.lastIndexOf("\n");
  return { body: out.slice(0, i), status: Number(out.slice(i + 1)) };
};
const recordFor = (pred: (l: Record<string, unknown>) => boolean) => sl.waitForLine((l) => l.kind === "http" && pred(l), 10_000);
const app = (path: string) => `https://app.test:${tlsOrigin.port}${path}`;

describe("credential injection", () => {
  test("the admin API lists each entry's placeholder, behind the token, never the value", async () => {
    expect((await fetch(`${sl.adminUrl}/v1/credentials`)).status).toBe(401);
    const res = await fetch(`${sl.adminUrl}/v1/credentials`, { headers: { authorization: `Bearer ${sl.adminToken}` } });
    const text = await res.text();
    expect(text).not.toContain(REAL);
    expect(text).not.toContain(REAL_FILE);
    expect(JSON.parse(text).credentials).toEqual([
      { name: "app", hosts: ["app.test"], header: "Authorization", placeholder: expect.stringMatching(/^sluice-cred-app-[0-9a-f]{24}$/), allow_plaintext: false },
      { name: "legacy", hosts: ["plain.test"], header: "X-Api-Key", placeholder: expect.stringMatching(/^sluice-cred-legacy-[0-9a-f]{24}$/), allow_plaintext: true },
      { name: "query", hosts: ["app.test"], header: null, placeholder: expect.stringMatching(/^sluice-cred-query-[0-9a-f]{24}$/), allow_plaintext: false },
    ]);
  });

  test(
    "over intercepted HTTPS the origin gets the real value in place of the placeholder; the record names the credential",
    async () => {
      const r = await curl(app("/with-placeholder"), [`Authorization: Bearer ${placeholders.app}`]);
      expect(r).toEqual({ status: 200, body: "ok /with-placeholder" });
      expect(seen.find((s) => s.path === "/with-placeholder")?.auth).toBe(`Bearer ${REAL}`);
      const rec = await recordFor((l) => l.path === "/with-placeholder");
      expect(rec).toMatchObject({ verdict: "allow", status: 200 });
      expect(String(rec.detail)).toContain("credential app injected");
      // Whatever the client sends under the header's name is replaced, and with nothing sent it is added.
      await curl(app("/other-auth"), ["Authorization: Basic dXNlcjpwYXNz"]);
      expect(seen.find((s) => s.path === "/other-auth")?.auth).toBe(`Bearer ${REAL}`);
      await curl(app("/no-auth"));
      expect(seen.find((s) => s.path === "/no-auth")?.auth).toBe(`Bearer ${REAL}`);
    },
    T,
  );

  test(
    "a placeholder sent to another host is refused as laundering, in a header or in the URL",
    async () => {
      const inHeader = await curl(`http://127.0.0.1:${plainOrigin.port}/launder-h`, [`Authorization: Bearer ${placeholders.app}`]);
      expect(inHeader.status).toBe(403);
      expect(JSON.parse(inHeader.body)).toMatchObject({ rule: "cred.wrong-host", reason: "credential_misuse" });
      const inUrl = await curl(`http://127.0.0.1:${plainOrigin.port}/launder-q?k=${placeholders.legacy}`);
      expect(inUrl.status).toBe(403);
      expect(seen.some((s) => s.path.startsWith("/launder"))).toBe(false);
      expect(await recordFor((l) => l.path === "/launder-h")).toMatchObject({ verdict: "block", rule: "cred.wrong-host" });
    },
    T,
  );

  test(
    "in plain HTTP the value is not injected: a placeholder there is refused, unless the entry allows plaintext",
    async () => {
      const refused = await curl(`http://app.test:${plainOrigin.port}/plain-placeholder`, [`Authorization: Bearer ${placeholders.app}`]);
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body)).toMatchObject({ rule: "cred.plaintext" });
      const bare = await curl(`http://app.test:${plainOrigin.port}/plain-bare`);
      expect(bare.status).toBe(200);
      expect(seen.find((s) => s.path === "/plain-bare")?.auth).toBeNull();
      const allowed = await curl(`http://plain.test:${plainOrigin.port}/legacy`, [`X-Api-Key: ${placeholders.legacy}`]);
      expect(allowed.status).toBe(200);
      expect(seen.find((s) => s.path === "/legacy")?.key).toBe(REAL_FILE);
    },
    T,
  );

  test(
    "the real value sent by the agent itself is caught as a known secret, and no line sluice printed holds a value",
    async () => {
      const leak = await curl(`http://127.0.0.1:${plainOrigin.port}/leak?q=${REAL}`);
      expect(leak.status).toBe(403);
      expect(JSON.parse(leak.body)).toMatchObject({ reason: "dlp_finding" });
      expect(seen.some((s) => s.path.startsWith("/leak"))).toBe(false);
      await recordFor((l) => l.path === "/leak");
      const printed = JSON.stringify(sl.lines);
      expect(printed).not.toContain(REAL);
      expect(printed).not.toContain(REAL_FILE);
    },
    T,
  );

  test(
    "an origin that echoes the value back: the agent gets the placeholder instead, in headers and bodies of every kind",
    async () => {
      const h = [`Authorization: Bearer ${placeholders.app}`];
      const json = await curl(app("/echo"), h, sl, ["-D", "-"]);
      expect(json.status).toBe(200);
      expect(json.body).not.toContain(REAL);
      expect(json.body).toContain(`"authorization":"Bearer ${placeholders.app}"`);
      expect(json.body.toLowerCase()).toContain(`x-seen-auth: bearer ${placeholders.app}`);
      for (const path of ["/echo-gzip", "/echo-binary", "/echo-split", "/echo-sse"]) {
        const r = await curl(app(path), h, sl, ["--compressed"]);
        expect(r.status).toBe(200);
        expect(r.body).not.toContain(REAL);
        expect(r.body).toContain(`Bearer ${placeholders.app}`);
      }
      // The origin did get the real value each time.
      expect(seen.filter((s) => s.path.startsWith("/echo")).every((s) => s.auth === `Bearer ${REAL}`)).toBe(true);
      const rec = await recordFor((l) => l.path === "/echo-split");
      expect(String(rec.detail)).toContain("credential app injected; the response echoed a value 1 time(s), replaced by the placeholder");
    },
    T,
  );

  test(
    "replace: true puts the value where the placeholder is, in the query, a header and a JSON body, each written as it needs",
    async () => {
      const ph = placeholders.query!;
      const r = await curl(app(`/replaced?key=${ph}`), [`X-Token: ${ph}`, "Content-Type: application/json"], sl, ["-d", JSON.stringify({ token: ph, note: "kept" })]);
      expect(r.status).toBe(200);
      const got = seen.find((s) => s.path.startsWith("/replaced"))!;
      expect(new URL(`http://x${got.path}`).searchParams.get("key")).toBe(REAL_QUERY);
      expect(got.token).toBe(REAL_QUERY);
      expect(JSON.parse(got.body)).toEqual({ token: REAL_QUERY, note: "kept" });
      // The header entry for the same host still sets its header.
      expect(got.auth).toBe(`Bearer ${REAL}`);
      const rec = await recordFor((l) => l.path === "/replaced");
      expect(String(rec.detail)).toContain("credential app, credential query injected");
      // Its placeholder in a body bound for another host is laundering.
      const launder = await curl(`http://127.0.0.1:${plainOrigin.port}/launder-body`, ["Content-Type: application/json"], sl, ["-d", JSON.stringify({ k: ph })]);
      expect(launder.status).toBe(403);
      expect(JSON.parse(launder.body)).toMatchObject({ rule: "cred.wrong-host" });
      expect(seen.some((s) => s.path === "/launder-body")).toBe(false);
      expect(JSON.stringify(sl.lines)).not.toContain(REAL_QUERY);
    },
    T,
  );

  test("a missing value, a file others can read, and a reserved header stop the config, naming what is wrong", () => {
    const check = (yaml: string, env: Record<string, string> = {}) => {
      const d = tempDir();
      writeFileSync(join(d, "c.yaml"), yaml);
      writeFileSync(join(d, "open.key"), "some-key-value-123456");
      chmodSync(join(d, "open.key"), 0o644);
      const r = Bun.spawnSync([BIN, "check-config", join(d, "c.yaml")], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } });
      return { code: r.exitCode, err: r.stderr.toString() + r.stdout.toString() };
    };
    const entry = (source: string, header = "Authorization") => `version: 1\ncredentials:\n  - name: x\n    hosts: [a.example]\n    source: ${source}\n    header: { name: ${header}, value: "Bearer {secret}" }\n`;
    const missing = check(entry("{ env: SLUICE_NOT_SET_ANYWHERE }"));
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("SLUICE_NOT_SET_ANYWHERE");
    const open = check(entry("{ file: open.key }"));
    expect(open.code).toBe(1);
    expect(open.err).toContain("readable by group or others");
    expect(open.err).not.toContain("some-key-value-123456");
    const reserved = check(entry("{ env: K }", "Host"), { K: "a-value-of-some-length" });
    expect(reserved.code).toBe(1);
    expect(reserved.err).toContain("credentials.0.header.name");
  });
});

describe("credential injection, what must never carry it", () => {
  test(
    "audit mode lets a TRACE through, but without the credential (its response would echo it); other requests still get it",
    async () => {
      const r = await curl(app("/traced"), [`Authorization: Bearer ${placeholders.app}`], auditing, ["-X", "TRACE"]);
      expect(r.body).not.toContain(REAL);
      const traced = seen.find((s) => s.path === "/traced");
      expect(traced?.method).toBe("TRACE");
      expect(traced?.auth).toBe(`Bearer ${placeholders.app}`);
      await curl(app("/audited"), [], auditing);
      expect(seen.find((s) => s.path === "/audited")?.auth).toBe(`Bearer ${REAL}`);
    },
    T,
  );

  test(
    "the client's header under another spelling (X_Api_Key for X-Api-Key) is dropped with it",
    async () => {
      await curl(`http://plain.test:${plainOrigin.port}/spelled`, ["X_Api_Key: agent-chosen"]);
      const got = seen.find((s) => s.path === "/spelled");
      expect(got?.key).toBe(REAL_FILE);
      expect(got?.underscored).toBe(null);
    },
    T,
  );
});

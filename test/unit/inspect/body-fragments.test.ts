import { describe, expect, test } from "bun:test";
import type { Fragment } from "../../../src/core/types.ts";
import { binaryText, bodyFragments, bodyKind, headerParams, keySegment, stringifyIteratively } from "../../../src/inspect/body-fragments.ts";

const enc = (s: string) => new TextEncoder().encode(s);
/** Location and text only (the JSON walker also tells each value's sibling group, tested in split-fragments.test.ts). */
const plain = (fragments: readonly Fragment[]) => fragments.map(({ location, text }) => ({ location, text }));
const texts = (fragments: readonly Fragment[], location: string) => fragments.filter((f) => f.location === location).map((f) => f.text);
const concat = (...parts: (string | Uint8Array)[]) => {
  const bytes = parts.map((p) => (typeof p === "string" ? enc(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of bytes) {
    out.set(b, at);
    at += b.length;
  }
  return out;
};

/** A real 1x1 PNG (signature, IHDR, IDAT, IEND). */
const PNG = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="), (c) => c.charCodeAt(0));
const GZIP = Uint8Array.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x86, 0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00]);

describe("bodyKind", () => {
  test("structured kinds come from the content type, parameters and case ignored", () => {
    const empty = new Uint8Array();
    expect(bodyKind("application/json; charset=utf-8", empty)).toBe("json");
    expect(bodyKind("Application/Vnd.Api+JSON", empty)).toBe("json");
    expect(bodyKind("application/x-ndjson", empty)).toBe("ndjson");
    expect(bodyKind("application/jsonl", empty)).toBe("ndjson");
    expect(bodyKind("application/json-seq", empty)).toBe("ndjson");
    expect(bodyKind("application/x-www-form-urlencoded", empty)).toBe("form");
    expect(bodyKind("multipart/form-data; boundary=x", empty)).toBe("multipart");
    expect(bodyKind("multipart/mixed; boundary=x", empty)).toBe("multipart");
    expect(bodyKind("application/soap+xml", empty)).toBe("xml");
    expect(bodyKind("text/html", empty)).toBe("xml");
  });

  test("binary by signature, whatever the label", () => {
    expect(bodyKind("image/png", PNG)).toBe("binary");
    expect(bodyKind(undefined, PNG)).toBe("binary");
    expect(bodyKind("text/plain", PNG)).toBe("binary");
    expect(bodyKind("application/octet-stream", GZIP)).toBe("binary");
    expect(bodyKind(undefined, Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46]))).toBe("binary");
    expect(bodyKind(undefined, Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]))).toBe("binary");
    expect(bodyKind(undefined, Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]))).toBe("binary");
    expect(bodyKind(undefined, concat(Uint8Array.from([0, 0, 0, 0x20]), "ftypisom", Uint8Array.from([0, 0, 2, 0])))).toBe("binary");
    expect(bodyKind(undefined, concat("%PDF-1.7\n%", Uint8Array.from([0xe2, 0xe3, 0xcf, 0xd3]), "\n1 0 obj"))).toBe("binary");
    expect(bodyKind(undefined, concat("GIF89a", Uint8Array.from([1, 0, 1, 0, 0x80, 0, 0])))).toBe("binary");
  });

  test("clean text is text whatever the label: an image/png label or an ASCII signature does not skip it", () => {
    expect(bodyKind("image/png", enc("AKIAIOSFODNN7EXAMPLE"))).toBe("text");
    expect(bodyKind("application/octet-stream", enc("ghp_token"))).toBe("text");
    expect(bodyKind(undefined, enc("%PDF-1.4 but really ghp_token"))).toBe("text");
    expect(bodyKind(undefined, enc("GIF89a ghp_token"))).toBe("text");
    expect(bodyKind("text/plain", enc("héllo wörld ✓"))).toBe("text");
  });

  test("unknown types: mostly-text Latin-1 is text, random bytes and NULs are binary", () => {
    const latin1 = Uint8Array.from("Caf\u00e9 cr\u00e8me, token=ghp_abc", (c) => c.charCodeAt(0));
    expect(bodyKind(undefined, latin1)).toBe("text");
    expect(bodyKind(undefined, Uint8Array.from({ length: 256 }, (_, i) => (i * 151 + 7) & 0xff))).toBe("binary");
    expect(bodyKind(undefined, enc("abc\u0000def"))).toBe("binary");
  });

  test("a UTF-8 sequence cut by the end of the sniffed head does not make text binary", () => {
    const text = enc("a".repeat(1023) + "é and more");
    expect(bodyKind(undefined, text)).toBe("text");
  });
});

describe("bodyFragments: JSON", () => {
  test("OpenAI-style chat request: every string and number value, keys at their object's path", () => {
    const body = {
      model: "gpt-4o-mini",
      temperature: 0.2,
      stream: false,
      messages: [
        { role: "system", content: "You are helpful." },
        { role: "user", content: "Deploy with key AKIAIOSFODNN7EXAMPLE" },
      ],
      metadata: { "user.id": "u-42", "": "blank key", n: null },
    };
    const { fragments, kind, error } = bodyFragments("application/json", enc(JSON.stringify(body)));
    expect(kind).toBe("json");
    expect(error).toBeUndefined();
    expect(plain(fragments)).toEqual([
      { location: "body.json-key", text: "model" },
      { location: "body.json.model", text: "gpt-4o-mini" },
      { location: "body.json-key", text: "temperature" },
      { location: "body.json.temperature", text: "0.2" },
      { location: "body.json-key", text: "stream" },
      { location: "body.json-key", text: "messages" },
      { location: "body.json-key.messages[0]", text: "role" },
      { location: "body.json.messages[0].role", text: "system" },
      { location: "body.json-key.messages[0]", text: "content" },
      { location: "body.json.messages[0].content", text: "You are helpful." },
      { location: "body.json-key.messages[1]", text: "role" },
      { location: "body.json.messages[1].role", text: "user" },
      { location: "body.json-key.messages[1]", text: "content" },
      { location: "body.json.messages[1].content", text: "Deploy with key AKIAIOSFODNN7EXAMPLE" },
      { location: "body.json-key", text: "metadata" },
      { location: "body.json-key.metadata", text: "user.id" },
      { location: 'body.json.metadata["user.id"]', text: "u-42" },
      { location: 'body.json.metadata[""]', text: "blank key" },
      { location: "body.json-key.metadata", text: "n" },
    ]);
  });

  test("card numbers sent as JSON numbers keep every digit, also past 2^53", () => {
    const { fragments } = bodyFragments("application/json", enc('{"card":6011000990139424123,"small":4111111111111111,"f":1e3}'));
    expect(texts(fragments, "body.json.card")).toEqual(["6011000990139424123"]);
    expect(texts(fragments, "body.json.small")).toEqual(["4111111111111111"]);
    expect(texts(fragments, "body.json.f")).toEqual(["1e3"]);
  });

  test("top-level string and array, escapes decoded by JSON itself", () => {
    expect(plain(bodyFragments("application/json", enc('"\\u0067hp_abc"')).fragments)).toEqual([{ location: "body.json", text: "ghp_abc" }]);
    expect(plain(bodyFragments("application/json", enc('["a",["b"]]')).fragments)).toEqual([
      { location: "body.json[0]", text: "a" },
      { location: "body.json[1][0]", text: "b" },
    ]);
  });

  test("keySegment: plain keys dotted, others bracketed as JSON strings", () => {
    expect(keySegment("content")).toBe(".content");
    expect(keySegment("x-api-key")).toBe(".x-api-key");
    expect(keySegment("we.ird")).toBe('["we.ird"]');
    expect(keySegment("0")).toBe('["0"]');
    expect(keySegment('a"]b')).toBe('["a\\"]b"]');
  });

  test("invalid JSON falls back to the whole body as text, with an error", () => {
    const raw = '{"messages": [{"content": "token ghp_abc"}';
    const out = bodyFragments("application/json", enc(raw));
    expect(out.error).toBe("invalid JSON");
    expect(plain(out.fragments)).toEqual([{ location: "body.text", text: raw }]);
  });

  test("invalid UTF-8 is decoded lossily: the rest of the value is still there", () => {
    const body = concat('{"a":"pre', Uint8Array.from([0xff, 0xfe]), 'ghp_secret"}');
    const out = bodyFragments("application/json", body);
    expect(out.error).toBeUndefined();
    expect(texts(out.fragments, "body.json.a")).toEqual(["pre\ufffd\ufffdghp_secret"]);
  });

  test("nesting past maxDepth: the subtree is one fragment, nothing lost", () => {
    let value: unknown = { secret: "ghp_deep" };
    for (let i = 0; i < 10; i++) value = { k: value };
    const out = bodyFragments("application/json", enc(JSON.stringify(value)), { maxDepth: 3 });
    expect(out.error).toBeUndefined();
    const deep = out.fragments.find((f) => f.location === "body.json.k.k.k");
    expect(deep?.text).toContain('"secret":"ghp_deep"');
    expect(out.fragments.filter((f) => f.location.startsWith("body.json.")).length).toBe(1);
  });

  test("absurd nesting (200k levels) is not parsed (it would stall the proxy): the body is scanned as text", () => {
    const raw = `${"[".repeat(200_000)}"ghp_x"${"]".repeat(200_000)}`;
    const out = bodyFragments("application/json", enc(raw));
    expect(out.error).toBe("JSON nested too deep");
    expect(plain(out.fragments)).toEqual([{ location: "body.text", text: raw }]);
  });

  test("nesting up to 512 levels is parsed, the subtree past maxDepth one fragment", () => {
    const raw = `${"[".repeat(500)}"ghp_x"${"]".repeat(500)}`;
    const out = bodyFragments("application/json", enc(raw));
    expect(out.error).toBeUndefined();
    expect(out.fragments).toHaveLength(1);
    expect(out.fragments[0]?.location).toBe(`body.json${"[0]".repeat(64)}`);
    expect(out.fragments[0]?.text).toBe(`${"[".repeat(500 - 64)}"ghp_x"${"]".repeat(500 - 64)}`);
  });

  test("duplicate keys: JSON.parse keeps the last, so the raw text is scanned too", () => {
    const raw = '{"a":"ghp_first","b":{"c":1,"c":2},"a":"x"}';
    const out = bodyFragments("application/json", enc(raw));
    expect(out.error).toBe("duplicate JSON keys");
    expect(out.fragments.at(-1)).toEqual({ location: "body.text", text: raw });
    expect(bodyFragments("application/json", enc('{"a":"x","b":{"a":"y"},"s":"k\\":","t":"\\"q\\":"}')).error).toBeUndefined();
  });

  test("absurd nesting around a long number: digits may be lost in the walk, so the raw text is added", () => {
    const raw = `${"[".repeat(200_000)}6011000990139424123${"]".repeat(200_000)}`;
    const out = bodyFragments("application/json", enc(raw));
    expect(out.error).toBe("JSON nested too deep");
    expect(out.fragments.at(-1)).toEqual({ location: "body.text", text: raw });
  });

  test("the subtree past maxDepth is written exactly as JSON.stringify would", () => {
    const value = { a: [1, "two", null, true, { "we.ird": "q\"uote", e: [] }], b: {}, c: -0.5e-7 };
    const out = bodyFragments("application/json", enc(JSON.stringify(value)), { maxDepth: 0 });
    expect(plain(out.fragments)).toEqual([{ location: "body.json", text: JSON.stringify(value) }]);
    expect(stringifyIteratively([])).toBe("[]");
    expect(stringifyIteratively("s")).toBe('"s"');
  });

  test("a huge number of fields stops at maxFragments, keeps the whole body, and says so", () => {
    const obj: Record<string, string> = {};
    for (let i = 0; i < 100_000; i++) obj[`f${i}`] = `v${i}`;
    const raw = JSON.stringify(obj);
    const out = bodyFragments("application/json", enc(raw), { maxFragments: 100 });
    expect(out.error).toBe("too many fragments");
    expect(out.fragments.length).toBe(100);
    expect(out.fragments.at(-1)).toEqual({ location: "body.text", text: raw });
  });

  test("default bound is 4096 fragments", () => {
    const raw = JSON.stringify(Array.from({ length: 10_000 }, (_, i) => `v${i}`));
    const out = bodyFragments("application/json", enc(raw));
    expect(out.fragments.length).toBe(4096);
    expect(out.error).toBe("too many fragments");
  });
});

describe("bodyFragments: NDJSON", () => {
  test("log lines: per line paths, blank lines skipped, a bad line kept as text with an error", () => {
    const raw = [
      '{"level":"info","msg":"started","pid":4242}',
      "",
      '{"level":"error","msg":"auth failed","token":"xoxb-123"}',
      "not json ghp_abc",
      '\u001e"json-seq record"',
    ].join("\n");
    const out = bodyFragments("application/x-ndjson", enc(raw));
    expect(out.kind).toBe("ndjson");
    expect(texts(out.fragments, "body.ndjson[0].msg")).toEqual(["started"]);
    expect(texts(out.fragments, "body.ndjson[0].pid")).toEqual(["4242"]);
    expect(texts(out.fragments, "body.ndjson-key[0]")).toEqual(["level", "msg", "pid"]);
    expect(texts(out.fragments, "body.ndjson[2].token")).toEqual(["xoxb-123"]);
    expect(texts(out.fragments, "body.ndjson[3]")).toEqual(["not json ghp_abc"]);
    expect(texts(out.fragments, "body.ndjson[4]")).toEqual(["json-seq record"]);
    expect(out.error).toBe("invalid JSON");
    expect(texts(out.fragments, "body.text")).toEqual([raw]);
  });
});

describe("bodyFragments: form", () => {
  test("a form post: values raw at body.form.<field>, keys at body.form-key", () => {
    const raw = "grant_type=client_credentials&client_id=app-42&client_secret=s3cr%2Ft+x&scope=";
    const out = bodyFragments("application/x-www-form-urlencoded", enc(raw));
    expect(out.kind).toBe("form");
    expect(plain(out.fragments)).toEqual([
      { location: "body.form-key", text: "grant_type" },
      { location: "body.form.grant_type", text: "client_credentials" },
      { location: "body.form-key", text: "client_id" },
      { location: "body.form.client_id", text: "app-42" },
      { location: "body.form-key", text: "client_secret" },
      { location: "body.form.client_secret", text: "s3cr%2Ft+x" },
      { location: "body.form-key", text: "scope" },
    ]);
  });
});

describe("bodyFragments: multipart", () => {
  const boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
  const upload = concat(
    "This is the preamble: ghp_preamble\r\n",
    `--${boundary}\r\n`,
    'Content-Disposition: form-data; name="description"\r\n\r\n',
    "Quarterly report, key sk-live-123\r\n",
    `--${boundary}\r\n`,
    'Content-Disposition: form-data; name="meta"\r\nContent-Type: application/json\r\n\r\n',
    '{"owner":"alice","token":"ghp_meta"}\r\n',
    `--${boundary}\r\n`,
    'Content-Disposition: form-data; name="file"; filename="chart.png"\r\nContent-Type: image/png\r\n\r\n',
    PNG,
    "\r\n",
    `--${boundary}\r\n`,
    "Content-Type: text/plain\r\n\r\n",
    "unnamed part",
    `\r\n--${boundary}--\r\n`,
    "epilogue text",
  );

  test("text parts, JSON parts walked, binary parts as their printable runs, preamble and epilogue kept", () => {
    const out = bodyFragments(`multipart/form-data; boundary=${boundary}`, upload);
    expect(out.kind).toBe("multipart");
    expect(out.error).toBeUndefined();
    expect(plain(out.fragments)).toEqual([
      { location: "body.multipart-preamble", text: "This is the preamble: ghp_preamble" },
      { location: "body.multipart-key", text: "description" },
      { location: "body.multipart.description", text: "Quarterly report, key sk-live-123" },
      { location: "body.multipart-key", text: "meta" },
      { location: "body.multipart-key.meta", text: "owner" },
      { location: "body.multipart.meta.owner", text: "alice" },
      { location: "body.multipart-key.meta", text: "token" },
      { location: "body.multipart.meta.token", text: "ghp_meta" },
      { location: "body.multipart-key", text: "file" },
      { location: "body.multipart-filename.file", text: "chart.png" },
      ...(binaryText(PNG) === "" ? [] : [{ location: "body.multipart.file", text: binaryText(PNG) }]),
      { location: "body.multipart[3]", text: "unnamed part" },
      { location: "body.multipart-epilogue", text: "epilogue text" },
    ]);
  });

  test("a part labelled binary whose content is text is still scanned", () => {
    const body = enc(`--b\r\nContent-Disposition: form-data; name="f"; filename="x.png"\r\nContent-Type: image/png\r\n\r\nAKIAIOSFODNN7EXAMPLE\r\n--b--`);
    const out = bodyFragments('multipart/form-data; boundary="b"', body);
    expect(texts(out.fragments, "body.multipart.f")).toEqual(["AKIAIOSFODNN7EXAMPLE"]);
  });

  test("nested multipart/mixed parts are parsed", () => {
    const body = enc(
      '--outer\r\nContent-Disposition: form-data; name="files"\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n' +
        "--inner\r\nContent-Disposition: file; filename=\"a.txt\"\r\n\r\nfirst file\r\n--inner--\r\n--outer--\r\n",
    );
    const out = bodyFragments("multipart/form-data; boundary=outer", body);
    expect(out.error).toBeUndefined();
    expect(texts(out.fragments, "body.multipart.files[0]")).toEqual(["first file"]);
    expect(texts(out.fragments, "body.multipart.files-filename[0]")).toEqual(["a.txt"]);
  });

  test("a boundary that is not in the body: the whole body as text, with an error", () => {
    const out = bodyFragments("multipart/form-data; boundary=nothere", upload);
    expect(out.error).toBe("malformed multipart");
    expect(out.fragments).toHaveLength(1);
    expect(out.fragments[0]?.location).toBe("body.text");
    expect(out.fragments[0]?.text).toContain("sk-live-123");
  });

  test("missing or invalid boundary parameter, missing closing delimiter: malformed, content kept", () => {
    for (const [ct, body] of [
      ["multipart/form-data", upload],
      [`multipart/form-data; boundary=${"x".repeat(71)}`, upload],
      ["multipart/form-data; boundary=b", enc('--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nghp_unterminated')],
      ["multipart/form-data; boundary=b", enc("--b\r\nno blank line ghp_x\r\n--b--")],
    ] as const) {
      const out = bodyFragments(ct, body);
      expect(out.error).toBe("malformed multipart");
      expect(out.fragments.at(-1)?.location).toBe("body.text");
    }
  });

  test("headerParams: quoted values with escapes and semicolons, valueless parameters skipped", () => {
    const p = headerParams('form-data; foo; name="a;b \\"c\\""; filename=plain.txt');
    expect(p.get("name")).toBe('a;b "c"');
    expect(p.get("filename")).toBe("plain.txt");
    expect(p.has("foo")).toBe(false);
  });
});

describe("bodyFragments: XML, text, binary", () => {
  test("SOAP envelope: one body.xml fragment with the raw text", () => {
    const soap = `<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">
  <soap:Header><auth token="ghp_attr"/></soap:Header>
  <soap:Body><GetPrice><Item>Apples &amp; pears</Item></GetPrice></soap:Body>
</soap:Envelope>`;
    const out = bodyFragments("application/soap+xml; charset=utf-8", enc(soap));
    expect(out).toEqual({ fragments: [{ location: "body.xml", text: soap }], kind: "xml" });
  });

  test("text/plain and unlabelled text are body.text", () => {
    expect(bodyFragments("text/plain", enc("AWS_SECRET=abc")).fragments).toEqual([{ location: "body.text", text: "AWS_SECRET=abc" }]);
    expect(bodyFragments(undefined, enc("export TOKEN=x")).fragments).toEqual([{ location: "body.text", text: "export TOKEN=x" }]);
  });

  test("binary bodies are scanned as the text inside them: printable runs, UTF-16", () => {
    const png = bodyFragments("image/png", PNG);
    expect(png.kind).toBe("binary");
    expect(png.fragments.map((f) => f.location)).toEqual(binaryText(PNG) === "" ? [] : ["body.binary"]);
    expect(bodyFragments(undefined, GZIP)).toEqual({ fragments: [], kind: "binary" });
    // A NUL glued to a secret, a PNG signature in front of one, UTF-16LE text: the secret is there.
    const secret = "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";
    for (const body of [
      Uint8Array.from([0, ...enc(secret)]),
      Uint8Array.from([...PNG.subarray(0, 8), ...enc(`x ${secret}`), 0, 0xff]),
      Uint8Array.from(Buffer.from(`token ${secret}`, "utf16le")),
    ]) {
      const out = bodyFragments("text/plain", body);
      expect(out.fragments.map((f) => f.text).join("\n")).toContain(secret);
    }
  });

  test("empty body: no fragments, no error", () => {
    expect(bodyFragments("application/json", new Uint8Array())).toEqual({ fragments: [], kind: "json" });
  });
});

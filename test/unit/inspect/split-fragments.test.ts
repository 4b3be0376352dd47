import { describe, expect, test } from "bun:test";
import type { Fragment } from "../../../src/core/types.ts";
import { bodyFragments } from "../../../src/inspect/body-fragments.ts";
import { headerFragments, urlFragments } from "../../../src/inspect/fragments.ts";
import { joinedFragments, siblingKey } from "../../../src/inspect/split-fragments.ts";
import { mulberry32 } from "../../helpers/mulberry32.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const f = (location: string, text: string): Fragment => ({ location, text });
const joinedTexts = (fragments: readonly Fragment[]) => joinedFragments(fragments).map((j) => j.text);
/** A fake token with a realistic shape, split into three pieces. */
const TOKEN = "ghp_R8tq2ZkX9vLmN4pW7sYd3bHc6jFa1eUo5iGx";
const PIECES: [string, string, string] = [TOKEN.slice(0, 14), TOKEN.slice(14, 28), TOKEN.slice(28)];

describe("joinedFragments", () => {
  test("a token split across three JSON fields of one object is rebuilt", () => {
    const body = JSON.stringify({ model: "gpt-4o", a: PIECES[0], b: PIECES[1], c: PIECES[2] });
    const out = joinedFragments(bodyFragments("application/json", enc(body)).fragments);
    expect(out).toContainEqual(f("joined(body.json.a..body.json.c)", TOKEN));
  });

  test("a token split across array elements, with a number and a nested object in between", () => {
    const body = JSON.stringify({ parts: [PIECES[0], 7, { x: "other" }, PIECES[1], PIECES[2]] });
    const out = joinedFragments(bodyFragments("application/json", enc(body)).fragments);
    expect(out.map((j) => j.text)).toContain(`${PIECES[0]}7${PIECES[1]}${PIECES[2]}`);
    expect(out).toContainEqual(f("joined(body.json.parts[3]..body.json.parts[4])", PIECES[1] + PIECES[2]));
    // The nested object's value is not a sibling of the array's elements.
    expect(out.some((j) => j.text.includes("other"))).toBe(false);
  });

  test("query parameters ?a=ghp_abc&b=def... are siblings", () => {
    const out = joinedFragments(urlFragments("x.example", "/", `a=${PIECES[0]}&b=${PIECES[1]}&c=${PIECES[2]}`));
    expect(out).toContainEqual(f("joined(url.query.a..url.query.c)", TOKEN));
    expect(out).toContainEqual(f("joined(url.query.a..url.query.b)", PIECES[0] + PIECES[1]));
  });

  test("values of one header are siblings even when other headers sit between them; cookies too", () => {
    const out = joinedFragments(
      headerFragments([
        ["X-Trace", PIECES[0]],
        ["Accept", "*/*"],
        ["x-trace", PIECES[1]],
        ["Cookie", `p1=${PIECES[1]}; p2=${PIECES[2]}`],
      ]),
    );
    expect(out).toContainEqual(f("joined(header.x-trace..header.x-trace)", PIECES[0] + PIECES[1]));
    expect(out).toContainEqual(f("joined(header.cookie.p1..header.cookie.p2)", PIECES[1] + PIECES[2]));
    // Different headers are not siblings.
    expect(out.some((j) => j.text.includes("*/*"))).toBe(false);
  });

  test("form fields and NDJSON values of one line are siblings; different lines' objects are not", () => {
    const form = joinedTexts(bodyFragments("application/x-www-form-urlencoded", enc(`x=${PIECES[0]}&y=${PIECES[1]}`)).fragments);
    expect(form).toContain(PIECES[0] + PIECES[1]);
    const nd = joinedTexts(bodyFragments("application/x-ndjson", enc(`{"a":"${PIECES[0]}"}\n{"a":"${PIECES[1]}"}`)).fragments);
    expect(nd).not.toContain(PIECES[0] + PIECES[1]);
  });

  test("windows are 2..4 values; five pieces give no 5-way join", () => {
    const frags = ["aa", "bb", "cc", "dd", "ee"].map((t, i) => f(`body.json[${i}]`, t));
    expect(joinedTexts(frags)).toEqual(["aabb", "aabbcc", "aabbccdd", "bbcc", "bbccdd", "bbccddee", "ccdd", "ccddee", "ddee"]);
  });

  test("long values are not pieces, the joined length is bounded, and maxJoined caps the output", () => {
    const long = "x".repeat(129);
    expect(joinedFragments([f("url.query.a", long), f("url.query.b", "short")])).toEqual([]);
    const pieces = Array.from({ length: 4 }, (_, i) => f(`url.query.k${i}`, String(i).repeat(100)));
    expect(joinedFragments(pieces, { maxJoinedLength: 250 }).every((j) => j.text.length <= 250)).toBe(true);
    expect(joinedFragments(pieces, { maxJoinedLength: 250 })).toHaveLength(3);
    const many = Array.from({ length: 10_000 }, (_, i) => f(`body.json[${i}]`, `v${i}`));
    expect(joinedFragments(many)).toHaveLength(256);
    expect(joinedFragments(many, { maxJoined: 10 })).toHaveLength(10);
  });

  test("no joined fragment repeats a single fragment's text or another join", () => {
    const frags = [f("body.json.a", "ab"), f("body.json.b", "c"), f("body.json.c", "abc"), f("body.json.d", "ab"), f("body.json.e", "c")];
    const out = joinedFragments(frags);
    const texts = out.map((j) => j.text);
    expect(texts).not.toContain("abc");
    expect(new Set(texts).size).toBe(texts.length);
  });

  test("keys, whole-URL and whole-body fragments and joins are never joined", () => {
    const frags = [f("url.host", "a"), f("url.path", "/b"), f("url.query-key", "c"), f("url.query-key", "d"), f("body.text", "e"), f("body.xml", "g"), f("body.json-key", "h"), f("body.json-key", "i")];
    expect(joinedFragments(frags)).toEqual([]);
  });

  test("siblingKey reads quoted keys containing dots and brackets", () => {
    expect(siblingKey('body.json.a["x.y]z"].b')).toBe('body.json.a["x.y]z"]');
    expect(siblingKey('body.json.a["x.y]z"]')).toBe("body.json.a");
    expect(siblingKey('body.json["q\\"].c"]')).toBe("body.json");
    expect(siblingKey("body.ndjson[3].k")).toBe("body.ndjson[3]");
    expect(siblingKey("body.multipart.meta.messages[0]")).toBe("body.multipart.meta.messages");
    expect(siblingKey("body.multipart.description")).toBe("body.multipart");
    expect(siblingKey("body.json")).toBeNull();
    expect(siblingKey('body.json["unterminated')).toBeNull();
    expect(siblingKey("url.query.a.b")).toBe("query:");
    expect(siblingKey("url.path[2]")).toBe("url-path:");
    expect(siblingKey("joined(url.query.a..url.query.b)")).toBeNull();
  });

  test("path segments are siblings: a token split as /ghp_abc/def... is rebuilt", () => {
    const out = joinedFragments(urlFragments("x.example", `/${PIECES[0]}/${PIECES[1]}/${PIECES[2]}`, ""));
    expect(out).toContainEqual(f("joined(url.path[0]..url.path[2])", TOKEN));
  });
});

describe("sibling groups from the JSON walker", () => {
  test("the group a JSON fragment carries is the one siblingKey reads from its location", () => {
    const rand = mulberry32(11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const keys = ["a", "b_c", "x.y", "we]ird", 'q"t', "0", "$k", "-d"];
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.4) return pick(["v", "w1", 7, 1.5, true, null]);
      if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: 1 + Math.floor(rand() * 4) }, () => [pick(keys), value(depth + 1)]));
    };
    let checked = 0;
    for (let round = 0; round < 300; round++) {
      for (const [type, body] of [
        ["application/json", JSON.stringify(value(0))],
        ["application/x-ndjson", `${JSON.stringify(value(0))}\n${JSON.stringify(value(0))}`],
      ] as const) {
        for (const f of bodyFragments(type, enc(body)).fragments) {
          if (f.parent === undefined) continue;
          expect({ location: f.location, parent: f.parent }).toEqual({ location: f.location, parent: siblingKey(f.location) });
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });
});

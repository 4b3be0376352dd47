import { describe, expect, test } from "bun:test";
import { parseDuration, parseListen, parsePortRange, parseSize } from "../../../src/config/units.ts";

describe("parseDuration", () => {
  const rows: [input: number | string, ms: number | null][] = [
    [0, 0],
    [250, 250],
    [1.5, 1.5],
    ["500ms", 500],
    ["10s", 10_000],
    ["1.5s", 1500],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["0s", 0],
    [" 10s ", 10_000],
    [-1, null],
    [Number.NaN, null],
    [Number.POSITIVE_INFINITY, null],
    ["10", null],
    ["10 s", null],
    ["10sec", null],
    ["-5s", null],
    ["5d", null],
    ["5S", null],
    [".5s", null],
    ["", null],
    ["s", null],
  ];
  test.each(rows)("%p -> %p", (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });
});

describe("parseSize", () => {
  const rows: [input: number | string, bytes: number | null][] = [
    [0, 0],
    [65536, 65536],
    ["512B", 512],
    ["64KiB", 65536],
    ["1MiB", 1048576],
    ["2GiB", 2 * 1024 ** 3],
    [" 1KiB ", 1024],
    [1.5, null],
    [-1, null],
    ["64kb", null],
    ["64KB", null],
    ["64kib", null],
    ["1.5MiB", null],
    ["64 KiB", null],
    ["-1KiB", null],
    ["65536", null],
    ["", null],
  ];
  test.each(rows)("%p -> %p", (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });
});

describe("parseListen", () => {
  const rows: [input: string, out: { hostname: string; port: number } | null][] = [
    ["127.0.0.1:8888", { hostname: "127.0.0.1", port: 8888 }],
    ["127.0.0.1:0", { hostname: "127.0.0.1", port: 0 }],
    ["0.0.0.0:65535", { hostname: "0.0.0.0", port: 65535 }],
    ["localhost:8080", { hostname: "localhost", port: 8080 }],
    ["[::1]:8888", { hostname: "::1", port: 8888 }],
    ["[::]:80", { hostname: "::", port: 80 }],
    ["[::ffff:127.0.0.1]:80", { hostname: "::ffff:127.0.0.1", port: 80 }],
    [" 127.0.0.1:1 ", { hostname: "127.0.0.1", port: 1 }],
    ["8888", null],
    ["127.0.0.1", null],
    [":8888", null],
    ["127.0.0.1:", null],
    ["127.0.0.1:65536", null],
    ["127.0.0.1:123456", null],
    ["127.0.0.1:-1", null],
    ["::1:8888", null],
    ["[::1]", null],
    ["[::1]8888", null],
    ["[not-v6]:80", null],
    ["host:port", null],
    ["a b:80", null],
    ["", null],
  ];
  test.each(rows)("%p -> %p", (input, out) => {
    expect(parseListen(input)).toEqual(out);
  });
});

describe("parsePortRange", () => {
  const rows: [input: number | string, out: [number, number] | null][] = [
    [443, [443, 443]],
    [1, [1, 1]],
    [65535, [65535, 65535]],
    ["443", [443, 443]],
    ["8000-8999", [8000, 8999]],
    ["80-80", [80, 80]],
    ["1-65535", [1, 65535]],
    [0, null],
    [65536, null],
    [-1, null],
    [1.5, null],
    ["0", null],
    ["0-10", null],
    ["10-5", null],
    ["80-65536", null],
    ["80-", null],
    ["-80", null],
    ["80 - 90", null],
    ["http", null],
    ["", null],
  ];
  test.each(rows)("%p -> %p", (input, out) => {
    expect(parsePortRange(input)).toEqual(out);
  });
});

/**
 * Timeouts are about inactivity, not age: a busy keep-alive connection or tunnel outlives
 * idle_timeout, an idle one does not; a silent upstream gets a 504; tunnel_max_duration ends a
 * tunnel however busy. Waits are on events (bytes, closes) with generous bounds, never on
 * fixed sleeps for correctness, and nothing asserts how long anything took.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { startEchoOrigin, startSilentOrigin, startUppercaseEcho, stopSluices, type EchoOrigin, type RawOrigin } from "../helpers/origins.ts";
import { startSluice, type Running } from "../helpers/sluice.ts";

const T = 60_000;

/** One client connection to the proxy with a byte buffer and event waits. */
class Conn {
  private buf = "";
  closed = false;
  private wake: (() => void) | null = null;
  private constructor(private socket: Socket<undefined> | null) {}

  static async open(port: number): Promise<Conn> {
    const conn = new Conn(null);
    conn.socket = await Bun.connect<undefined>({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, chunk) => {
          conn.buf += Buffer.from(chunk).toString("latin1");
          conn.wake?.();
        },
        close: () => {
          conn.closed = true;
          conn.wake?.();
        },
        error() {},
      },
    });
    return conn;
  }

  write(text: string): void {
    this.socket?.write(text);
  }

  /** Waits until `pred(buffer)` or close or `ms`; returns whether pred held. */
  async until(pred: (b: string) => boolean, ms = 10_000): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (!pred(this.buf) && !this.closed && performance.now() < deadline) {
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 250);
      });
      this.wake = null;
    }
    return pred(this.buf);
  }

  take(): string {
    const b = this.buf;
    this.buf = "";
    return b;
  }

  async waitClosed(ms = 15_000): Promise<boolean> {
    await this.until(() => false, ms);
    return this.closed;
  }

  end(): void {
    this.socket?.end();
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

let sl: Running;
let maxTunnel: Running;
let echo: EchoOrigin;
let tcpEcho: RawOrigin;
let silent: RawOrigin;

beforeAll(async () => {
  echo = await startEchoOrigin();
  tcpEcho = startUppercaseEcho();
  silent = startSilentOrigin();
  const base = (extra: string) => `version: 1
proxy: { listen: "127.0.0.1:0", ${extra} }
admin: { listen: "127.0.0.1:0" }
egress:
  ports: { http: ["1-65535"], connect: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
`;
  sl = await startSluice(base("idle_timeout: 2s, upstream_timeout: 1s"));
  maxTunnel = await startSluice(base("tunnel_max_duration: 2s"));
});

afterAll(async () => {
  await stopSluices(sl, maxTunnel);
  await echo?.stop();
  tcpEcho?.stop();
  silent?.stop();
});

describe("timeouts", () => {
  test("a keep-alive connection in use outlives idle_timeout; an idle one is closed", async () => {
    const conn = await Conn.open(sl.proxyPort);
    // ~4.5 s of traffic, more than twice idle_timeout, on one connection.
    for (let i = 0; i < 12; i++) {
      conn.write(`GET ${echo.url}/busy/${i} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
      expect(await conn.until((b) => /\r\n\r\n[\s\S]*"bodyLength"/.test(b))).toBe(true);
      expect(conn.take()).toStartWith("HTTP/1.1 200");
      expect(conn.closed).toBe(false);
      await pause(400);
    }
    expect(await conn.waitClosed()).toBe(true);
  }, T);

  test("a tunnel carrying traffic outlives idle_timeout; an idle one is closed", async () => {
    const conn = await Conn.open(sl.proxyPort);
    conn.write(`CONNECT 127.0.0.1:${tcpEcho.port} HTTP/1.1\r\n\r\n`);
    expect(await conn.until((b) => b.includes("\r\n\r\n"))).toBe(true);
    expect(conn.take()).toStartWith("HTTP/1.1 200");
    for (let i = 0; i < 12; i++) {
      conn.write(`ping-${i};`);
      expect(await conn.until((b) => b.includes(`PING-${i};`))).toBe(true);
      conn.take();
      expect(conn.closed).toBe(false);
      await pause(400);
    }
    expect(await conn.waitClosed()).toBe(true);
    const rec = await sl.waitForLine((l) => l.kind === "connect" && l.port === tcpEcho.port);
    expect(rec).toMatchObject({ verdict: "allow", status: 200 });
  }, T);

  test("an upstream that does not answer within upstream_timeout gets a 504", async () => {
    const conn = await Conn.open(sl.proxyPort);
    conn.write(`GET ${silent.url}/never HTTP/1.1\r\nHost: 127.0.0.1:${silent.port}\r\n\r\n`);
    expect(await conn.until((b) => b.includes("\r\n\r\n"), 20_000)).toBe(true);
    const text = conn.take();
    expect(text).toStartWith("HTTP/1.1 504");
    expect(text.toLowerCase()).toContain("x-sluice-rule: proxy.upstream-timeout");
    conn.end();
  }, T);

  test("tunnel_max_duration ends a tunnel however busy it is", async () => {
    const conn = await Conn.open(maxTunnel.proxyPort);
    conn.write(`CONNECT 127.0.0.1:${tcpEcho.port} HTTP/1.1\r\n\r\n`);
    expect(await conn.until((b) => b.includes("\r\n\r\n"))).toBe(true);
    conn.take();
    let i = 0;
    // Keep it busy until sluice closes it; bounded so a regression fails instead of hanging.
    while (!conn.closed && i < 100) {
      conn.write(`x${i++};`);
      await conn.until((b) => b.includes(`X${i - 1};`), 1_000);
      conn.take();
      await pause(200);
    }
    expect(conn.closed).toBe(true);
    expect(await maxTunnel.waitForLine((l) => l.msg === "tunnel reached tunnel_max_duration")).toBeDefined();
  }, T);
});

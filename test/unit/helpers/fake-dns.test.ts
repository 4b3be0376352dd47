/**
 * The fake upstream DNS server (test/helpers/fake-dns.ts) checked with independent clients:
 * dns-packet over UDP and TCP (hand-framed), and dig. Only 127.0.0.1 is ever contacted.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import * as dnsPacket from "dns-packet";
import type { Answer, DecodedPacket, OptAnswer, RecordType } from "dns-packet";
import { decodeSvcbRdata, startFakeDns, type FakeDns } from "../../helpers/fake-dns.ts";

const HOST = "127.0.0.1";

// ---- clients ------------------------------------------------------------------------------

interface QueryOpts {
  id?: number;
  rd?: boolean;
  /** EDNS OPT to add; omitted: no OPT. */
  edns?: { udpSize?: number; version?: number; do?: boolean; options?: { code: number; data: Buffer }[] };
  opcode?: number;
}

/** A type name dns-packet knows, or "UNKNOWN_<n>" (its spelling for HTTPS = 65, SVCB = 64). */
function encodeQuery(name: string, type: string, o: QueryOpts = {}): Uint8Array {
  const additionals: Answer[] = [];
  if (o.edns) {
    const opt: OptAnswer = {
      type: "OPT",
      name: ".",
      udpPayloadSize: o.edns.udpSize ?? 1232,
      extendedRcode: 0,
      ednsVersion: o.edns.version ?? 0,
      flags: o.edns.do ? dnsPacket.DNSSEC_OK : 0,
      flag_do: o.edns.do ?? false,
      options: (o.edns.options ?? []) as unknown as OptAnswer["options"],
    };
    additionals.push(opt);
  }
  const buf = dnsPacket.encode({
    type: "query",
    id: o.id ?? 0x1234,
    flags: (o.rd ?? true ? dnsPacket.RECURSION_DESIRED : 0) | ((o.opcode ?? 0) << 11),
    questions: [{ name, type: type as RecordType, class: "IN" }],
    additionals,
  });
  return new Uint8Array(buf);
}

const decode = (bytes: Uint8Array): DecodedPacket => dnsPacket.decode(Buffer.from(bytes));
const rcodeOf = (p: DecodedPacket): number => (p.flags ?? 0) & 0xf;

/** Sends one datagram and resolves with the first reply, or null after `timeoutMs`. */
async function udpExchange(port: number, msg: Uint8Array, timeoutMs = 2000): Promise<Uint8Array | null> {
  let done: (v: Uint8Array | null) => void = () => {};
  const result = new Promise<Uint8Array | null>((r) => (done = r));
  const sock = await Bun.udpSocket({
    hostname: HOST,
    port: 0,
    binaryType: "uint8array",
    socket: {
      data(_s, data) {
        done(new Uint8Array(data));
      },
    },
  });
  const timer = setTimeout(() => done(null), timeoutMs);
  sock.send(msg, port, HOST);
  const reply = await result;
  clearTimeout(timer);
  sock.close();
  return reply;
}

async function udpQuery(port: number, name: string, type: string, o: QueryOpts = {}): Promise<DecodedPacket> {
  const reply = await udpExchange(port, encodeQuery(name, type, o));
  if (!reply) throw new Error(`no UDP reply for ${name} ${type}`);
  return decode(reply);
}

/** A TCP connection speaking RFC 7766 framing; `write` sends raw bytes (frames or parts of them). */
interface TcpClient {
  write(bytes: Uint8Array): void;
  send(msg: Uint8Array): void;
  /** Resolves with the next reply (in arrival order), or null after `timeoutMs`. */
  next(timeoutMs?: number): Promise<Uint8Array | null>;
  close(): void;
}

async function tcpClient(port: number): Promise<TcpClient> {
  const replies: Uint8Array[] = [];
  const waiting: ((v: Uint8Array | null) => void)[] = [];
  let buf = new Uint8Array(0);
  const sock = await Bun.connect({
    hostname: HOST,
    port,
    socket: {
      data(_s, chunk) {
        const merged = new Uint8Array(buf.length + chunk.length);
        merged.set(buf);
        merged.set(chunk, buf.length);
        buf = merged;
        while (buf.length >= 2) {
          const len = (buf[0]! << 8) | buf[1]!;
          if (buf.length < 2 + len) break;
          const msg = buf.slice(2, 2 + len);
          buf = buf.slice(2 + len);
          const w = waiting.shift();
          if (w) w(msg);
          else replies.push(msg);
        }
      },
    },
  });
  return {
    write: (bytes) => void sock.write(bytes),
    send: (msg) => void sock.write(frame(msg)),
    next(timeoutMs = 2000) {
      const ready = replies.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          const i = waiting.indexOf(cb);
          if (i >= 0) waiting.splice(i, 1);
          resolve(null);
        }, timeoutMs);
        const cb = (v: Uint8Array | null) => {
          clearTimeout(timer);
          resolve(v);
        };
        waiting.push(cb);
      });
    },
    close: () => sock.end(),
  };
}

function frame(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + msg.length);
  out[0] = msg.length >>> 8;
  out[1] = msg.length & 0xff;
  out.set(msg, 2);
  return out;
}

async function tcpQuery(port: number, name: string, type: string, o: QueryOpts = {}): Promise<DecodedPacket> {
  const c = await tcpClient(port);
  try {
    c.send(encodeQuery(name, type, o));
    const reply = await c.next();
    if (!reply) throw new Error(`no TCP reply for ${name} ${type}`);
    return decode(reply);
  } finally {
    c.close();
  }
}

async function dig(port: number, ...args: string[]): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(["dig", "+tries=1", "+time=2", `@${HOST}`, "-p", String(port), ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out + err };
}

/** Answer records as "name ttl type data" strings, for compact assertions. */
function rows(records: readonly Answer[] | undefined): string[] {
  return (records ?? []).map((a) => {
    if (a.type === "OPT") return "OPT";
    if (a.type === "TXT") return `${a.name} ${a.ttl} TXT ${JSON.stringify((Array.isArray(a.data) ? a.data : [a.data]).map(String))}`;
    const data = Buffer.isBuffer(a.data) ? `<${a.data.length} bytes>` : JSON.stringify(a.data);
    return `${a.name} ${a.ttl} ${a.type} ${data}`;
  });
}

function optOf(p: DecodedPacket): OptAnswer | undefined {
  return p.additionals?.find((a): a is OptAnswer => a.type === "OPT");
}

/** EDNS options as decoded (dns-packet's typings list only a few option codes). */
function optionsOf(p: DecodedPacket): { code: number; data: Buffer }[] {
  const raw = (optOf(p)?.options ?? []) as unknown as { code: number; data?: Buffer }[];
  return raw.map((o) => ({ code: o.code, data: Buffer.from(o.data ?? []) }));
}

// ---- tests ----------------------------------------------------------------------------------

let dns: FakeDns;
beforeAll(async () => {
  dns = await startFakeDns();
});
afterAll(async () => {
  await dns.stop();
});
afterEach(() => dns.resetQueries());

describe("fake DNS: answers", () => {
  test("listens on 127.0.0.1, UDP and TCP on the same port", async () => {
    expect(dns.address).toBe(`127.0.0.1:${dns.port}`);
    dns.set("same.test", { answers: [{ type: "A", data: "203.0.113.1" }] });
    expect(rows((await udpQuery(dns.port, "same.test", "A")).answers)).toEqual(['same.test 300 A "203.0.113.1"']);
    expect(rows((await tcpQuery(dns.port, "same.test", "A")).answers)).toEqual(['same.test 300 A "203.0.113.1"']);
  });

  test("echoes id, question (letter case kept) and RD; sets QR, AA, RA", async () => {
    dns.set("Echo.Test", { answers: [{ type: "A", data: "203.0.113.2", ttl: 7 }] });
    const p = await udpQuery(dns.port, "eCHo.TeST", "A", { id: 4242, rd: false });
    expect(p.id).toBe(4242);
    expect(p.type).toBe("response");
    expect(p.questions).toEqual([{ name: "eCHo.TeST", type: "A", class: "IN" }]);
    expect(p.flag_qr && p.flag_aa && p.flag_ra).toBe(true);
    expect(p.flag_rd).toBe(false);
    expect(p.flag_tc).toBe(false);
    expect(rows(p.answers)).toEqual(['eCHo.TeST 7 A "203.0.113.2"']);
    expect((await udpQuery(dns.port, "echo.test.", "A", { rd: true })).flag_rd).toBe(true);
    expect(dns.queries().map((q) => [q.name, q.wireName, q.type, q.transport, q.id, q.rd])).toEqual([
      ["echo.test", "eCHo.TeST", "A", "udp", 4242, false],
      ["echo.test", "echo.test", "A", "udp", 0x1234, true],
    ]);
  });

  test("A, AAAA, CNAME, TXT, MX, SRV, CAA, PTR, NS records with their TTLs", async () => {
    dns.set("all.test", {
      ttl: 120,
      answers: [
        { type: "A", data: "203.0.113.3" },
        { type: "A", data: "203.0.113.4", ttl: 0 },
        { type: "AAAA", data: "2001:db8::3" },
        { type: "TXT", data: ["v=spf1 -all", "second"] },
        { type: "MX", data: { preference: 10, exchange: "mx.all.test" } },
        { type: "SRV", data: { priority: 1, weight: 5, port: 443, target: "svc.all.test" } },
        { type: "CAA", data: { tag: "issue", value: "ca.test" } },
        { type: "NS", data: "ns1.all.test" },
      ],
    });
    dns.set("4.113.0.203.in-addr.arpa", { answers: [{ type: "PTR", data: "all.test", ttl: 9 }] });
    expect(rows((await udpQuery(dns.port, "all.test", "A")).answers)).toEqual(['all.test 120 A "203.0.113.3"', 'all.test 0 A "203.0.113.4"']);
    expect(rows((await udpQuery(dns.port, "all.test", "AAAA")).answers)).toEqual(['all.test 120 AAAA "2001:db8::3"']);
    expect(rows((await udpQuery(dns.port, "all.test", "TXT")).answers)).toEqual(['all.test 120 TXT ["v=spf1 -all","second"]']);
    expect(rows((await udpQuery(dns.port, "all.test", "MX")).answers)).toEqual(['all.test 120 MX {"preference":10,"exchange":"mx.all.test"}']);
    expect(rows((await udpQuery(dns.port, "all.test", "SRV")).answers)).toEqual([
      'all.test 120 SRV {"priority":1,"weight":5,"port":443,"target":"svc.all.test"}',
    ]);
    const caa = (await udpQuery(dns.port, "all.test", "CAA")).answers?.[0];
    expect(caa?.type === "CAA" && caa.data.tag === "issue" && caa.data.value === "ca.test").toBe(true);
    expect(rows((await udpQuery(dns.port, "all.test", "NS")).answers)).toEqual(['all.test 120 NS "ns1.all.test"']);
    expect(rows((await udpQuery(dns.port, "4.113.0.203.in-addr.arpa", "PTR")).answers)).toEqual(['4.113.0.203.in-addr.arpa 9 PTR "all.test"']);
    expect((await udpQuery(dns.port, "all.test", "ANY")).answers).toHaveLength(8);
  });

  test("HTTPS and SVCB records (RFC 9460), and a raw record of any type", async () => {
    dns.set("svc.test", {
      answers: [
        {
          type: "HTTPS",
          ttl: 30,
          data: { priority: 1, target: ".", params: { alpn: ["h2", "h3"], port: 8443, ipv4hint: ["203.0.113.5"], ipv6hint: ["2001:db8::5"], ech: new Uint8Array([1, 2, 3]) } },
        },
        { type: "SVCB", data: { priority: 0, target: "alias.svc.test" } },
        { type: 99, data: new Uint8Array([4, 65, 66, 67, 68]) },
      ],
    });
    const https = await udpQuery(dns.port, "svc.test", "UNKNOWN_65");
    expect(https.answers).toHaveLength(1);
    const a = https.answers![0]!;
    expect(a.type).toBe("UNKNOWN_65" as RecordType);
    expect((a as { ttl?: number }).ttl).toBe(30);
    expect(decodeSvcbRdata((a as { data: Buffer }).data)).toEqual({
      priority: 1,
      target: ".",
      params: { alpn: ["h2", "h3"], port: 8443, ipv4hint: ["203.0.113.5"], ech: new Uint8Array([1, 2, 3]), ipv6hint: ["2001:db8:0:0:0:0:0:5"] },
    });
    const svcb = (await udpQuery(dns.port, "svc.test", "UNKNOWN_64")).answers![0]!;
    expect(decodeSvcbRdata((svcb as { data: Buffer }).data)).toEqual({ priority: 0, target: "alias.svc.test", params: {} });
    const raw = (await udpQuery(dns.port, "svc.test", "SPF")).answers![0]!;
    expect(raw.type).toBe("SPF" as RecordType);
    expect([...(raw as { data: Buffer }).data]).toEqual([4, 65, 66, 67, 68]);
    expect(dns.queries().map((q) => q.type)).toEqual(["HTTPS", "SVCB", "TYPE99"]);
  });

  test("answers are filtered by query type; CNAME chains come along; NODATA carries an SOA", async () => {
    dns.set("www.chain.test", {
      answers: [
        { type: "CNAME", data: "edge.chain.test", ttl: 50 },
        { type: "A", name: "edge.chain.test", data: "203.0.113.6", ttl: 20 },
      ],
    });
    const a = await udpQuery(dns.port, "www.chain.test", "A");
    expect(rows(a.answers)).toEqual(['www.chain.test 50 CNAME "edge.chain.test"', 'edge.chain.test 20 A "203.0.113.6"']);
    const aaaa = await udpQuery(dns.port, "www.chain.test", "AAAA");
    expect(rows(aaaa.answers)).toEqual(['www.chain.test 50 CNAME "edge.chain.test"']);

    dns.set("v4only.test", { answers: [{ type: "A", data: "203.0.113.7" }] });
    const nodata = await udpQuery(dns.port, "v4only.test", "AAAA");
    expect(rcodeOf(nodata)).toBe(0);
    expect(nodata.answers).toEqual([]);
    expect(nodata.authorities?.map((r) => `${r.name} ${r.type}`)).toEqual(["test SOA"]);

    dns.set("raw.test", { unfiltered: true, answers: [{ type: "AAAA", data: "2001:db8::7" }] });
    expect(rows((await udpQuery(dns.port, "raw.test", "A")).answers)).toEqual(['raw.test 300 AAAA "2001:db8::7"']);
  });

  test("per-type entries override the name's own fields", async () => {
    dns.set("dual.test", {
      answers: [{ type: "TXT", data: "fallback" }],
      types: {
        A: { answers: [{ type: "A", data: "203.0.113.8" }] },
        aaaa: { rcode: "SERVFAIL" },
        HTTPS: { silent: true },
      },
    });
    expect(rows((await udpQuery(dns.port, "dual.test", "A")).answers)).toEqual(['dual.test 300 A "203.0.113.8"']);
    expect(rcodeOf(await udpQuery(dns.port, "dual.test", "AAAA"))).toBe(2);
    expect(rows((await udpQuery(dns.port, "dual.test", "TXT")).answers)).toEqual(['dual.test 300 TXT ["fallback"]']);
    expect(await udpExchange(dns.port, encodeQuery("dual.test", "UNKNOWN_65"), 200)).toBeNull();
  });

  test("wildcards, and a bare '*' for every name", async () => {
    dns.set("*.wild.test", { answers: [{ type: "A", data: "203.0.113.9" }] });
    dns.set("exact.wild.test", { answers: [{ type: "A", data: "203.0.113.10" }] });
    expect(rows((await udpQuery(dns.port, "a.b.wild.test", "A")).answers)).toEqual(['a.b.wild.test 300 A "203.0.113.9"']);
    expect(rows((await udpQuery(dns.port, "exact.wild.test", "A")).answers)).toEqual(['exact.wild.test 300 A "203.0.113.10"']);
    expect(rcodeOf(await udpQuery(dns.port, "wild.test", "A"))).toBe(3);
    const other = await startFakeDns({ names: { "*": { rcode: "REFUSED" } } });
    try {
      expect(rcodeOf(await udpQuery(other.port, "anything.example", "A"))).toBe(5);
    } finally {
      await other.stop();
    }
  });

  test("set() checks records at once and unset() forgets a name", () => {
    expect(() => dns.set("bad.test", { answers: [{ type: "A", data: "300.1.2.3" }] })).toThrow(/cannot encode A record/);
    expect(() => dns.set("bad.test", { answers: [{ type: "AAAA", data: "2001:db8::zz" }] })).toThrow(/not an IPv6 address/);
    expect(() => dns.set("bad.test", { answers: [{ type: "HTTPS", data: { priority: 1, target: ".", params: { ipv4hint: ["1.2.3"] } } }] })).toThrow(/not an IPv4/);
    expect(() => dns.set("bad.test", { answers: [{ type: "TXT", data: "x".repeat(256) }] })).toThrow(/TXT string length/);
    expect(() => dns.set("bad.test", { types: { NOPE: {} } })).toThrow(/unknown record type/);
    expect(() => dns.set("bad.test", { sequence: [] })).toThrow(/empty sequence/);
    dns.set("gone.test", { answers: [{ type: "A", data: "203.0.113.11" }] });
    dns.unset("GONE.test.");
    return udpQuery(dns.port, "gone.test", "A").then((p) => expect(rcodeOf(p)).toBe(3));
  });
});

describe("fake DNS: sequences (rebinding)", () => {
  test("first public then private, TTL 0; the last step repeats", async () => {
    dns.set("rebind.test", {
      ttl: 0,
      sequence: [{ answers: [{ type: "A", data: "203.0.113.12" }] }, { answers: [{ type: "A", data: "127.0.0.1" }] }],
    });
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push(...rows((await udpQuery(dns.port, "rebind.test", "A")).answers));
    expect(got).toEqual(['rebind.test 0 A "203.0.113.12"', 'rebind.test 0 A "127.0.0.1"', 'rebind.test 0 A "127.0.0.1"', 'rebind.test 0 A "127.0.0.1"']);
  });

  test("positions are per query type and per name (wildcards too); cycle starts over; set() restarts", async () => {
    dns.set("*.seq.test", {
      cycle: true,
      sequence: [{ answers: [{ type: "A", data: "203.0.113.13" }, { type: "AAAA", data: "2001:db8::13" }] }, { rcode: "SERVFAIL" }],
    });
    const step = async (name: string, type: string) => {
      const p = await udpQuery(dns.port, name, type);
      return rcodeOf(p) === 2 ? "SERVFAIL" : rows(p.answers).join();
    };
    expect(await step("a.seq.test", "A")).toBe('a.seq.test 300 A "203.0.113.13"');
    expect(await step("a.seq.test", "AAAA")).toBe('a.seq.test 300 AAAA "2001:db8::13"');
    expect(await step("b.seq.test", "A")).toBe('b.seq.test 300 A "203.0.113.13"');
    expect(await step("a.seq.test", "A")).toBe("SERVFAIL");
    expect(await step("a.seq.test", "A")).toBe('a.seq.test 300 A "203.0.113.13"');
    dns.set("*.seq.test", { sequence: [{ rcode: "REFUSED" }, { answers: [{ type: "A", data: "203.0.113.14" }] }] });
    expect(rcodeOf(await udpQuery(dns.port, "a.seq.test", "A"))).toBe(5);
  });

  test("a truncated UDP reply does not use up a step: the TCP retry gets it", async () => {
    dns.set("tcseq.test", {
      sequence: [{ truncate: true, answers: [{ type: "A", data: "203.0.113.15" }] }, { answers: [{ type: "A", data: "203.0.113.16" }] }],
    });
    expect((await udpQuery(dns.port, "tcseq.test", "A")).flag_tc).toBe(true);
    expect((await udpQuery(dns.port, "tcseq.test", "A")).flag_tc).toBe(true);
    expect(rows((await tcpQuery(dns.port, "tcseq.test", "A")).answers)).toEqual(['tcseq.test 300 A "203.0.113.15"']);
    expect(rows((await udpQuery(dns.port, "tcseq.test", "A")).answers)).toEqual(['tcseq.test 300 A "203.0.113.16"']);
  });
});

describe("fake DNS: negative answers and failures", () => {
  test("unknown names: NXDOMAIN with an SOA for the parent (RFC 2308)", async () => {
    const p = await udpQuery(dns.port, "nothing.here.test", "A");
    expect(rcodeOf(p)).toBe(3);
    expect(p.flag_aa).toBe(true);
    expect(p.answers).toEqual([]);
    const soa = p.authorities?.[0];
    expect(soa?.type).toBe("SOA");
    expect(soa?.name).toBe("here.test");
    expect(soa?.type === "SOA" && [soa.ttl, soa.data.minimum]).toEqual([300, 60]);
    const root = await udpQuery(dns.port, "single", "A");
    expect(root.authorities?.[0]?.name).toBe(".");
  });

  test("NXDOMAIN with a configurable SOA (minimum, TTL, zone) or none", async () => {
    dns.set("neg.test", { rcode: "NXDOMAIN", soa: { minimum: 5, ttl: 900, zone: "zone.test", mname: "ns.zone.test" } });
    const p = await udpQuery(dns.port, "neg.test", "AAAA");
    expect(rcodeOf(p)).toBe(3);
    const soa = p.authorities?.[0];
    expect(soa?.type === "SOA" && [soa.name, soa.ttl, soa.data.minimum, soa.data.mname]).toEqual(["zone.test", 900, 5, "ns.zone.test"]);
    dns.set("bare.test", { rcode: "NXDOMAIN", soa: false });
    expect((await udpQuery(dns.port, "bare.test", "A")).authorities).toEqual([]);
    const other = await startFakeDns({ soa: { minimum: 1, ttl: 2 } });
    try {
      const q = await udpQuery(other.port, "x.test", "A");
      expect(q.authorities?.[0]?.type === "SOA" && [q.authorities[0].ttl, q.authorities[0].data.minimum]).toEqual([2, 1]);
    } finally {
      await other.stop();
    }
  });

  test("SERVFAIL, REFUSED and numeric rcodes", async () => {
    dns.set("fail.test", { rcode: "SERVFAIL" });
    dns.set("refused.test", { rcode: "REFUSED" });
    dns.set("num.test", { rcode: 9 });
    const fail = await udpQuery(dns.port, "fail.test", "A");
    expect(rcodeOf(fail)).toBe(2);
    expect(fail.authorities).toEqual([]);
    expect(rcodeOf(await tcpQuery(dns.port, "refused.test", "A"))).toBe(5);
    expect(rcodeOf(await udpQuery(dns.port, "num.test", "A"))).toBe(9);
  });

  test("truncate: UDP gets TC=1 and no records, TCP the full answer", async () => {
    dns.set("tc.test", { truncate: true, answers: [{ type: "A", data: "203.0.113.17" }] });
    const udp = await udpQuery(dns.port, "tc.test", "A");
    expect(udp.flag_tc).toBe(true);
    expect(udp.answers).toEqual([]);
    expect(udp.questions?.[0]?.name).toBe("tc.test");
    const tcp = await tcpQuery(dns.port, "tc.test", "A");
    expect(tcp.flag_tc).toBe(false);
    expect(rows(tcp.answers)).toEqual(['tc.test 300 A "203.0.113.17"']);
  });

  test("a UDP reply over the client's size limit is truncated (512 without EDNS, else its payload size)", async () => {
    const answers = Array.from({ length: 40 }, (_, i) => ({ type: "TXT" as const, data: `record ${i} ${"x".repeat(20)}` }));
    dns.set("large.test", { answers });
    const plain = await udpQuery(dns.port, "large.test", "TXT");
    expect(plain.flag_tc).toBe(true);
    expect(plain.answers).toEqual([]);
    const edns = await udpQuery(dns.port, "large.test", "TXT", { edns: { udpSize: 4096 } });
    expect(edns.flag_tc).toBe(false);
    expect(edns.answers).toHaveLength(40);
    expect((await tcpQuery(dns.port, "large.test", "TXT")).answers).toHaveLength(40);
  });

  test("silent: never answers (UDP and TCP), but the query is counted", async () => {
    dns.set("dead.test", { silent: true });
    expect(await udpExchange(dns.port, encodeQuery("dead.test", "A"), 300)).toBeNull();
    const c = await tcpClient(dns.port);
    try {
      c.send(encodeQuery("dead.test", "A", { id: 1 }));
      c.send(encodeQuery("alive.test", "A", { id: 2 }));
      const first = await c.next();
      expect(first && decode(first).id).toBe(2);
      expect(await c.next(300)).toBeNull();
    } finally {
      c.close();
    }
    expect(dns.count("dead.test")).toBe(2);
  });

  test("delayMs holds the reply back; other queries are not held behind it", async () => {
    dns.set("slow.test", { delayMs: 250, answers: [{ type: "A", data: "203.0.113.18" }] });
    dns.set("fast.test", { answers: [{ type: "A", data: "203.0.113.19" }] });
    const t0 = performance.now();
    const p = await udpQuery(dns.port, "slow.test", "A");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(240);
    expect(rows(p.answers)).toEqual(['slow.test 300 A "203.0.113.18"']);
    const c = await tcpClient(dns.port);
    try {
      c.send(encodeQuery("slow.test", "A", { id: 1 }));
      c.send(encodeQuery("fast.test", "A", { id: 2 }));
      expect(decode((await c.next())!).id).toBe(2);
      expect(decode((await c.next())!).id).toBe(1);
    } finally {
      c.close();
    }
  });
});

describe("fake DNS: EDNS, opcodes, malformed input", () => {
  test("no OPT in, no OPT out; an OPT in is echoed with its DO bit and options", async () => {
    dns.set("edns.test", { answers: [{ type: "A", data: "203.0.113.20" }] });
    expect(optOf(await udpQuery(dns.port, "edns.test", "A"))).toBeUndefined();
    const cookie = Buffer.from("0102030405060708", "hex");
    const p = await udpQuery(dns.port, "edns.test", "A", { edns: { udpSize: 4096, do: true, options: [{ code: 10, data: cookie }] } });
    const opt = optOf(p);
    expect(opt?.flag_do).toBe(true);
    expect(opt?.udpPayloadSize).toBe(1232);
    expect(optionsOf(p).map((o) => [o.code, o.data.toString("hex")])).toEqual([[10, "0102030405060708"]]);
    const q = dns.queries().at(-1)!;
    expect(q.edns?.udpSize).toBe(4096);
    expect(q.edns?.do).toBe(true);
    expect(q.edns?.options.map((o) => o.code)).toEqual([10]);
  });

  test("EDNS version > 0 gets BADVERS; an Extended DNS Error is added when asked for", async () => {
    const bad = await udpQuery(dns.port, "edns.test", "A", { edns: { version: 1 } });
    expect(rcodeOf(bad)).toBe(0); // low bits of 16
    expect(optOf(bad)?.extendedRcode).toBe(1);
    dns.set("ede.test", { rcode: "SERVFAIL", ede: { code: 22, text: "No Reachable Authority" } });
    const p = await udpQuery(dns.port, "ede.test", "A", { edns: {} });
    const ede = optionsOf(p).find((o) => o.code === 15);
    expect(ede).toBeDefined();
    const data = ede!.data;
    expect(data.readUInt16BE(0)).toBe(22);
    expect(data.subarray(2).toString()).toBe("No Reachable Authority");
  });

  test("an opcode other than QUERY gets NOTIMP", async () => {
    const p = await udpQuery(dns.port, "edns.test", "A", { opcode: 2 });
    expect(rcodeOf(p)).toBe(4);
    expect(p.answers).toEqual([]);
  });

  test("malformed packets are counted and ignored; the server keeps answering", async () => {
    const good = encodeQuery("edns.test", "A");
    const response = good.slice();
    response[2]! |= 0x80; // QR=1
    const twoQuestions = good.slice();
    twoQuestions[5] = 2;
    const longLabel = good.slice();
    longLabel[12] = 64;
    for (const bad of [new Uint8Array([1, 2, 3]), good.subarray(0, good.length - 2), response, twoQuestions, longLabel, new Uint8Array(12)]) {
      expect(await udpExchange(dns.port, bad, 150)).toBeNull();
    }
    expect(dns.malformed()).toBe(6);
    const c = await tcpClient(dns.port);
    try {
      c.send(new Uint8Array([0xde, 0xad]));
      c.send(good);
      expect(decode((await c.next())!).answers).toHaveLength(1);
    } finally {
      c.close();
    }
    expect(dns.malformed()).toBe(7);
    expect(dns.count()).toBe(1);
  });
});

describe("fake DNS: clients that go away", () => {
  test("replies to closed UDP sockets and TCP connections are dropped; the server keeps answering", async () => {
    dns.set("late.test", { delayMs: 30, answers: [{ type: "A", data: "203.0.113.29" }] });
    for (let i = 0; i < 3; i++) {
      // The port is closed before the reply comes: ICMP port unreachable, then ECONNREFUSED on a later send.
      expect(await udpExchange(dns.port, encodeQuery("late.test", "A"), 1)).toBeNull();
      const c = await tcpClient(dns.port);
      c.send(encodeQuery("late.test", "A"));
      c.close();
    }
    await Bun.sleep(100);
    expect(rows((await udpQuery(dns.port, "late.test", "A")).answers)).toEqual(['late.test 300 A "203.0.113.29"']);
    expect(rows((await tcpQuery(dns.port, "late.test", "A")).answers)).toEqual(['late.test 300 A "203.0.113.29"']);
  });
});

describe("fake DNS: TCP framing", () => {
  test("several queries on one connection, all in one write, replies in order", async () => {
    dns.set("t1.test", { answers: [{ type: "A", data: "203.0.113.21" }] });
    dns.set("t2.test", { answers: [{ type: "A", data: "203.0.113.22" }] });
    const before = dns.tcpConnections();
    const c = await tcpClient(dns.port);
    try {
      const frames = [1, 2, 3, 4].map((i) => frame(encodeQuery(`t${(i % 2) + 1}.test`, "A", { id: i })));
      c.write(new Uint8Array(Buffer.concat(frames)));
      const ids: number[] = [];
      for (let i = 0; i < 4; i++) ids.push(decode((await c.next())!).id!);
      expect(ids).toEqual([1, 2, 3, 4]);
    } finally {
      c.close();
    }
    expect(dns.tcpConnections()).toBe(before + 1);
    expect(dns.queries().every((q) => q.transport === "tcp")).toBe(true);
  });

  test("a query split into single bytes, and frames split across writes", async () => {
    const c = await tcpClient(dns.port);
    try {
      const one = frame(encodeQuery("t1.test", "A", { id: 7 }));
      for (const b of one) {
        c.write(new Uint8Array([b]));
        await Bun.sleep(1);
      }
      expect(decode((await c.next())!).id).toBe(7);
      const two = Buffer.concat([frame(encodeQuery("t1.test", "A", { id: 8 })), frame(encodeQuery("t2.test", "A", { id: 9 }))]);
      c.write(new Uint8Array(two.subarray(0, 5)));
      await Bun.sleep(5);
      c.write(new Uint8Array(two.subarray(5, 40)));
      await Bun.sleep(5);
      c.write(new Uint8Array(two.subarray(40)));
      expect(decode((await c.next())!).id).toBe(8);
      expect(rows(decode((await c.next())!).answers)).toEqual(['t2.test 300 A "203.0.113.22"']);
    } finally {
      c.close();
    }
  });
});

describe("fake DNS: bookkeeping", () => {
  test("queries(), count(name), resetQueries()", async () => {
    dns.set("c.test", { answers: [{ type: "A", data: "203.0.113.23" }] });
    await udpQuery(dns.port, "c.test", "A");
    await tcpQuery(dns.port, "C.TEST", "AAAA");
    await udpQuery(dns.port, "other.test", "A");
    expect(dns.count()).toBe(3);
    expect(dns.count("c.test")).toBe(2);
    expect(dns.count("C.Test.")).toBe(2);
    expect(dns.count("nobody.test")).toBe(0);
    expect(dns.queries().map((q) => `${q.name} ${q.type} ${q.transport}`)).toEqual(["c.test A udp", "c.test AAAA tcp", "other.test A udp"]);
    dns.resetQueries();
    expect(dns.count()).toBe(0);
    expect(dns.queries()).toEqual([]);
  });

  test("log: false keeps only the total", async () => {
    const quiet = await startFakeDns({ log: false, names: { "q.test": { answers: [{ type: "A", data: "203.0.113.24" }] } } });
    try {
      await udpQuery(quiet.port, "q.test", "A");
      expect(quiet.count()).toBe(1);
      expect(quiet.queries()).toEqual([]);
      expect(() => quiet.count("q.test")).toThrow(/log: true/);
    } finally {
      await quiet.stop();
    }
  });

  test("stop() closes both UDP and TCP, and cancels delayed replies", async () => {
    const s = await startFakeDns({ names: { "later.test": { delayMs: 100, answers: [{ type: "A", data: "203.0.113.25" }] } } });
    const pending = udpExchange(s.port, encodeQuery("later.test", "A"), 400);
    await Bun.sleep(20);
    await s.stop();
    expect(await pending).toBeNull();
    await expect(tcpClient(s.port)).rejects.toThrow();
  });
});

describe("fake DNS: dig", () => {
  test("A, AAAA, TXT, MX, SRV and HTTPS as dig prints them", async () => {
    dns.set("dig.test", {
      answers: [
        { type: "A", data: "203.0.113.26", ttl: 60 },
        { type: "AAAA", data: "2001:db8::26", ttl: 61 },
        { type: "TXT", data: "hello dig" },
        { type: "MX", data: { preference: 5, exchange: "mx.dig.test" } },
        { type: "SRV", data: { priority: 0, weight: 1, port: 5060, target: "sip.dig.test" } },
        { type: "HTTPS", data: { priority: 1, target: ".", params: { alpn: ["h2"], ipv4hint: ["203.0.113.26"] } } },
      ],
    });
    const a = await dig(dns.port, "dig.test", "A", "+noall", "+answer");
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/^dig\.test\.\s+60\s+IN\s+A\s+203\.0\.113\.26$/m);
    expect((await dig(dns.port, "dig.test", "AAAA", "+noall", "+answer")).out).toMatch(/^dig\.test\.\s+61\s+IN\s+AAAA\s+2001:db8::26$/m);
    expect((await dig(dns.port, "dig.test", "TXT", "+short")).out.trim()).toBe('"hello dig"');
    expect((await dig(dns.port, "dig.test", "MX", "+short")).out.trim()).toBe("5 mx.dig.test.");
    expect((await dig(dns.port, "dig.test", "SRV", "+short", "+tcp")).out.trim()).toBe("0 1 5060 sip.dig.test.");
    expect((await dig(dns.port, "dig.test", "HTTPS", "+short")).out.trim()).toBe('1 . alpn="h2" ipv4hint=203.0.113.26');
  });

  test("NXDOMAIN with SOA, SERVFAIL, and EDNS echo", async () => {
    dns.set("digneg.test", { rcode: "NXDOMAIN", soa: { minimum: 7 } });
    const nx = await dig(dns.port, "digneg.test", "A");
    expect(nx.out).toContain("status: NXDOMAIN");
    expect(nx.out).toMatch(/flags: qr aa rd ra;/);
    expect(nx.out).toMatch(/AUTHORITY SECTION:\ntest\.\s+300\s+IN\s+SOA\s+ns\.fake\.test\. hostmaster\.fake\.test\. 1 3600 600 86400 7/);
    expect(nx.out).toContain("udp: 1232");
    dns.set("digfail.test", { rcode: "SERVFAIL" });
    expect((await dig(dns.port, "digfail.test", "A")).out).toContain("status: SERVFAIL");
    expect((await dig(dns.port, "digfail.test", "A", "+noedns")).out).not.toContain("OPT PSEUDOSECTION");
  });

  test("truncate makes dig retry over TCP; the sequence gives the rebinding pair", async () => {
    dns.set("digtc.test", { truncate: true, answers: [{ type: "A", data: "203.0.113.27" }] });
    const tc = await dig(dns.port, "digtc.test", "A");
    expect(tc.out).toContain("Truncated, retrying in TCP mode");
    expect(tc.out).toMatch(/^digtc\.test\.\s+300\s+IN\s+A\s+203\.0\.113\.27$/m);
    expect(dns.queries().map((q) => q.transport)).toEqual(["udp", "tcp"]);
    dns.set("digrebind.test", { ttl: 0, sequence: [{ answers: [{ type: "A", data: "203.0.113.28" }] }, { answers: [{ type: "A", data: "127.0.0.1" }] }] });
    expect((await dig(dns.port, "digrebind.test", "+short")).out.trim()).toBe("203.0.113.28");
    expect((await dig(dns.port, "digrebind.test", "+short")).out.trim()).toBe("127.0.0.1");
  });

  test("silent: dig times out", async () => {
    dns.set("digdead.test", { silent: true });
    const r = await dig(dns.port, "digdead.test", "A", "+time=1");
    expect(r.code).toBe(9); // dig: no reply from server
    expect(r.out).toMatch(/timed out/);
  });
});

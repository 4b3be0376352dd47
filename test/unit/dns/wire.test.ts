import { describe, expect, test } from "bun:test";
import * as dnsPacket from "dns-packet";
import { EDE_BLOCKED, encodeError, encodeReply, parseQuery, RCODE, type Answer } from "../../../src/dns/wire.ts";

const query = (name: string, type: dnsPacket.RecordType = "A", edns = true) =>
  dnsPacket.encode({
    type: "query",
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
    additionals: edns ? [{ type: "OPT", name: ".", udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as dnsPacket.OptAnswer] : [],
  });

describe("parseQuery", () => {
  test("a normal query", () => {
    const p = parseQuery(query("Example.COM", "AAAA"));
    expect(p).toMatchObject({ ok: true, query: { id: 4242, question: { name: "Example.COM", type: "AAAA" }, rd: true, edns: true, udpSize: 1232 } });
  });

  const header = (id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0) => {
    const b = Buffer.alloc(12);
    [id, flags, qd, an, ns, ar].forEach((v, i) => b.writeUInt16BE(v, i * 2));
    return b;
  };
  const bad: [string, Buffer, number | null][] = [
    ["empty", Buffer.alloc(0), null],
    ["short header", Buffer.from([1, 2, 3]), null],
    ["a response", header(7, 0x8000, 1), null],
    ["two questions", header(7, 0, 2), 7],
    ["no question", header(7, 0, 0), 7],
    ["answer records in a query", header(7, 0, 1, 1), 7],
    ["absurd additional count", header(7, 0, 1, 0, 0, 500), 7],
    ["truncated question", Buffer.concat([header(7, 0, 1), Buffer.from([5, 0x61, 0x62])]), 7],
    ["label length past the end", Buffer.concat([header(7, 0, 1), Buffer.from([63, 0x61, 0, 0, 1, 0, 1])]), 7],
    ["compression pointer loop", Buffer.concat([header(7, 0, 1), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), 7],
  ];
  test.each(bad)("%s is refused (FORMERR id %p)", (_label, buf, id) => {
    const p = parseQuery(buf);
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.id).toBe(id);
  });
});

describe("encodeReply", () => {
  test("NXDOMAIN with Extended DNS Error 15 for an EDNS client", () => {
    const p = parseQuery(query("evil.example"));
    if (!p.ok) throw new Error("parse");
    const out = dnsPacket.decode(encodeReply(p.query, { rcode: RCODE.NXDOMAIN, ede: { code: EDE_BLOCKED, text: "blocked by sluice: egress.deny-host" } }, "udp"));
    expect((out.flags ?? 0) & 0xf).toBe(RCODE.NXDOMAIN);
    expect(out.id).toBe(4242);
    const opt = out.additionals?.find((x) => x.type === "OPT") as dnsPacket.OptAnswer;
    const ede = opt.options.find((o) => (o.code as unknown as number) === 15);
    expect(ede?.data?.readUInt16BE(0)).toBe(EDE_BLOCKED);
    expect(ede?.data?.subarray(2).toString()).toBe("blocked by sluice: egress.deny-host");
  });

  test("no OPT record for a client without EDNS", () => {
    const p = parseQuery(query("x.example", "A", false));
    if (!p.ok) throw new Error("parse");
    const out = dnsPacket.decode(encodeReply(p.query, { rcode: RCODE.NXDOMAIN, ede: { code: EDE_BLOCKED, text: "x" } }, "udp"));
    expect(out.additionals?.length ?? 0).toBe(0);
  });

  test("an answer too big for the client's UDP size is truncated (TC) and complete over TCP", () => {
    const p = parseQuery(query("big.example", "A", false));
    if (!p.ok) throw new Error("parse");
    const answers: Answer[] = Array.from({ length: 60 }, (_, i) => ({ name: "big.example", type: "A", ttl: 60, class: "IN", data: `10.0.${i}.1` }));
    const udp = dnsPacket.decode(encodeReply(p.query, { rcode: RCODE.NOERROR, answers }, "udp"));
    expect(udp.flag_tc).toBe(true);
    expect(udp.answers?.length ?? 0).toBe(0);
    const tcp = dnsPacket.decode(encodeReply(p.query, { rcode: RCODE.NOERROR, answers }, "tcp"));
    expect(tcp.flag_tc).toBe(false);
    expect(tcp.answers?.length).toBe(60);
  });

  test("FORMERR keeps the id", () => {
    const out = encodeError(777, RCODE.FORMERR);
    expect(out.readUInt16BE(0)).toBe(777);
    expect(out.readUInt16BE(2) & 0xf).toBe(RCODE.FORMERR);
    expect(out.readUInt16BE(2) & 0x8000).toBe(0x8000);
  });
});

/**
 * DNS messages in and out (RFC 1035), through dns-packet. Sans-IO: bytes to a parsed query,
 * parsed answers to bytes. Extended DNS Errors (RFC 8914) carry sluice's refusals.
 */
import * as dnsPacket from "dns-packet";

export type Answer = dnsPacket.Answer;
export type Question = dnsPacket.Question;

/** RFC 1035 section 4.1.1, RFC 6895. */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];

/** RFC 8914 section 4: INFO-CODE 15 "Blocked", 16 "Censored", 17 "Filtered", 18 "Prohibited". */
export const EDE_BLOCKED = 15;
/** RFC 8914: option code of Extended DNS Error in an OPT record. */
const EDE_OPTION = 15;

const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;

/** The parts of a query we act on. */
export interface Query {
  readonly id: number;
  readonly question: Question;
  readonly rd: boolean;
  /** The client sent EDNS (an OPT record): it can take an EDE option and bigger UDP answers. */
  readonly edns: boolean;
  readonly udpSize: number;
}

export type ParsedQuery =
  | { ok: true; query: Query }
  /** `rcode`: what to answer when `id` is known (FORMERR, NOTIMP for other opcodes, REFUSED). */
  | { ok: false; id: number | null; reason: string; rcode: Rcode };

/** Parses a query; malformed input reports the id when the header was readable (for FORMERR). */
export function parseQuery(buf: Buffer): ParsedQuery {
  const id = buf.length >= 2 ? buf.readUInt16BE(0) : null;
  const bad = (reason: string, rcode: Rcode = RCODE.FORMERR, withId = true): ParsedQuery => ({ ok: false, id: withId ? id : null, reason, rcode });
  if (buf.length < 12) return bad("shorter than a DNS header", RCODE.FORMERR, false);
  const flags = buf.readUInt16BE(2);
  if ((flags & FLAG_QR) !== 0) return bad("a response, not a query", RCODE.FORMERR, false);
  // Only standard queries (opcode 0); UPDATE, NOTIFY and the rest are not ours to serve.
  if (((flags >> 11) & 0xf) !== 0) return bad("opcode is not QUERY", RCODE.NOTIMP);
  // RFC 9619: a query carries exactly one question; more is refused, not guessed at.
  if (buf.readUInt16BE(4) !== 1) return bad("QDCOUNT is not 1");
  // No real query carries answer or authority records; a huge count is a parser attack.
  if (buf.readUInt16BE(6) !== 0 || buf.readUInt16BE(8) !== 0 || buf.readUInt16BE(10) > 4) return bad("unexpected record counts");
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(buf);
  } catch (err) {
    return bad(`malformed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const question = packet.questions?.[0];
  if (!question || typeof question.name !== "string") return bad("no question");
  // Names on the wire are ASCII (IDNs travel as punycode); anything else is data, not a name.
  if (!/^[\x21-\x7e]*$/.test(question.name)) return bad("non-printable bytes in the name");
  // Empty labels (`a..b`, a trailing extra dot) would read one way here and another upstream,
  // where dns-packet re-encodes them: the name the policy checks must be the name that leaves.
  if (question.name.includes("..") || question.name.endsWith(".") || question.name.startsWith(".")) return bad("empty label in the name");
  if ((question.class ?? "IN") !== "IN") return bad("class is not IN", RCODE.REFUSED);
  // RFC 8482: ANY is refused rather than answered (it is an amplification favourite).
  if ((question.type as string) === "ANY") return bad("ANY queries are not answered", RCODE.NOTIMP);
  const opt = packet.additionals?.find((a): a is dnsPacket.OptAnswer => a.type === "OPT");
  return {
    ok: true,
    query: {
      id: packet.id ?? 0,
      question: { name: question.name, type: question.type, class: question.class ?? "IN" },
      rd: packet.flag_rd,
      edns: opt !== undefined,
      // RFC 9715 / DNS Flag Day 2020: at most 1232 bytes over UDP, whatever the client offers,
      // which also bounds how much a spoofed-source query can amplify.
      udpSize: opt ? Math.max(512, Math.min(opt.udpPayloadSize, 1232)) : 512,
    },
  };
}

export interface Reply {
  rcode: Rcode;
  answers?: Answer[];
  authorities?: Answer[];
  /** An Extended DNS Error (RFC 8914), sent when the client speaks EDNS. */
  ede?: { code: number; text: string };
}

/** Encodes a response to `q`; truncates (TC) when it does not fit the client's UDP size. */
export function encodeReply(q: Query, reply: Reply, transport: "udp" | "tcp"): Buffer {
  const additionals: Answer[] = [];
  if (q.edns) {
    const options = reply.ede ? [edeOption(reply.ede.code, reply.ede.text)] : [];
    additionals.push({ type: "OPT", name: ".", udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options } as dnsPacket.OptAnswer);
  }
  const packet: dnsPacket.Packet = {
    type: "response",
    id: q.id,
    flags: (q.rd ? FLAG_RD : 0) | FLAG_RA | reply.rcode,
    questions: [q.question],
    answers: reply.answers ?? [],
    authorities: reply.authorities ?? [],
    additionals,
  };
  const buf = dnsPacket.encode(packet);
  if (transport === "udp" && buf.length > q.udpSize) {
    // RFC 1035 section 4.2.1: too big for UDP: say so (TC) and let the client retry over TCP.
    return dnsPacket.encode({ ...packet, flags: (packet.flags ?? 0) | FLAG_TC, answers: [], authorities: [] });
  }
  return buf;
}

/** An error answer (FORMERR, NOTIMP, REFUSED) for a query we will not serve, by its id alone. */
export function encodeError(id: number, rcode: Rcode): Buffer {
  const buf = Buffer.alloc(12);
  buf.writeUInt16BE(id, 0);
  buf.writeUInt16BE(FLAG_QR | FLAG_RA | rcode, 2);
  return buf;
}

function edeOption(code: number, text: string): dnsPacket.PacketOpt {
  const textBytes = Buffer.from(text.slice(0, 200), "utf8");
  const data = Buffer.alloc(2 + textBytes.length);
  data.writeUInt16BE(code, 0);
  textBytes.copy(data, 2);
  // dns-packet encodes an option it does not know as code + raw data.
  return { code: EDE_OPTION, data } as unknown as dnsPacket.PacketOpt;
}

/** An upstream query for `name`/`type`, with EDNS so upstreams may send up to 1232 bytes over UDP. */
export function encodeUpstreamQuery(id: number, name: string, type: dnsPacket.RecordType): Buffer {
  return dnsPacket.encode({
    type: "query",
    id,
    flags: FLAG_RD,
    questions: [{ name, type, class: "IN" }],
    additionals: [{ type: "OPT", name: ".", udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as dnsPacket.OptAnswer],
  });
}

export interface UpstreamResponse {
  readonly id: number;
  readonly rcode: number;
  readonly truncated: boolean;
  readonly question: Question | undefined;
  readonly answers: Answer[];
  readonly authorities: Answer[];
}

export function decodeResponse(buf: Buffer): UpstreamResponse {
  const p = dnsPacket.decode(buf);
  if (!p.flag_qr) throw new Error("not a response");
  return {
    id: p.id ?? 0,
    rcode: (p.flags ?? 0) & 0xf,
    truncated: p.flag_tc,
    question: p.questions?.[0],
    answers: (p.answers ?? []).filter((a) => a.type !== "OPT"),
    authorities: (p.authorities ?? []).filter((a) => a.type !== "OPT"),
  };
}

/** One DNS query over UDP to 127.0.0.1, for checking that a server answers what we expect. */
import * as dnsPacket from "dns-packet";
import type { RecordType } from "dns-packet";
import { HOST } from "./net.ts";

export interface Answered {
  readonly rcode: number;
  readonly addresses: string[];
  /** Extended DNS Error text (RFC 8914), if the reply had one: says why sluice refused. */
  readonly ede: string | null;
}

const RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
export const rcodeName = (n: number): string => RCODE_NAMES[n] ?? `RCODE${n}`;

export async function queryOnce(port: number, name: string, type: RecordType = "A", timeoutMs = 3000): Promise<Answered> {
  const id = Math.floor(Math.random() * 0xffff);
  const msg = dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
    additionals: [{ type: "OPT", name: ".", udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
  let settle: (v: Uint8Array | null) => void = () => {};
  const reply = new Promise<Uint8Array | null>((r) => (settle = r));
  const sock = await Bun.udpSocket({
    hostname: HOST,
    port: 0,
    binaryType: "uint8array",
    socket: {
      data(_s, data) {
        settle(new Uint8Array(data));
      },
    },
  });
  const timer = setTimeout(() => settle(null), timeoutMs);
  try {
    sock.send(new Uint8Array(msg), port, HOST);
    const bytes = await reply;
    if (!bytes) throw new Error(`no reply from ${HOST}:${port} for ${name} ${type} within ${timeoutMs} ms`);
    const p = dnsPacket.decode(Buffer.from(bytes));
    if (p.id !== id) throw new Error(`reply id ${p.id} does not match query id ${id}`);
    const addresses = (p.answers ?? []).flatMap((a) => (a.type === "A" || a.type === "AAAA" ? [a.data] : []));
    let ede: string | null = null;
    for (const a of p.additionals ?? []) {
      if (a.type !== "OPT") continue;
      for (const o of a.options as unknown as { code: number; data?: Buffer }[]) {
        if (o.code === 15 && o.data) ede = `${o.data.readUInt16BE(0)} ${o.data.subarray(2).toString()}`;
      }
    }
    return { rcode: (p.flags ?? 0) & 0xf, addresses, ede };
  } finally {
    clearTimeout(timer);
    sock.close();
  }
}

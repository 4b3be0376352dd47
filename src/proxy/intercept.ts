/**
 * TLS terminated inside a CONNECT tunnel (issue 6): the client's bytes, after the 200, go into
 * a node:tls server socket over a Duplex, with the leaf minted for the host the ClientHello asked
 * for (chosen before the handshake: node:tls over a stream does not call SNICallback). What
 * comes out is plaintext HTTP for forward.ts, through an object with the few socket methods it
 * uses (write with Bun's partial-write meaning, end, terminate, pause, resume).
 */
import { Duplex } from "node:stream";
import { createSecureContext, TLSSocket } from "node:tls";
import type { Leaf } from "./tls-ca.ts";

/** The plaintext side of an intercepted tunnel, shaped like the Bun socket forward.ts writes to. */
export interface PlainSide {
  /** Bytes taken (all of them), or 0 while the TLS side is backed up: then wait for `drain`. */
  write(data: Uint8Array | string): number;
  end(data?: Uint8Array | string): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

export interface Terminated {
  readonly plain: PlainSide;
  /** Bytes from the client's TCP socket (TLS records). */
  feed(bytes: Uint8Array): void;
  /** The client's TCP socket closed. */
  closed(): void;
}

export interface TerminateEvents {
  /** Plaintext from the client. */
  data(bytes: Buffer): void;
  /** The plaintext side can take writes again. */
  drain(): void;
  /** The TLS session ended (either side); called once. */
  close(): void;
  /** A handshake or record error (the session closes after it). */
  error(message: string): void;
}

/**
 * Terminates TLS for one tunnel. `sendRaw` writes TLS records to the client's TCP socket
 * (queued by the caller when it is backed up); `endRaw` closes it.
 */
export function terminateTls(leaf: Leaf, sendRaw: (bytes: Uint8Array) => void, endRaw: () => void, events: TerminateEvents): Terminated {
  const wire = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      sendRaw(chunk);
      done();
    },
    final(done) {
      endRaw();
      done();
    },
  });
  const tls = new TLSSocket(wire, {
    isServer: true,
    secureContext: createSecureContext({ key: leaf.keyPem, cert: leaf.certPem }),
    // HTTP/1.1 only for now (h2 may come later).
    ALPNProtocols: ["http/1.1"],
  });
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    events.close();
  };
  tls.on("data", (b: Buffer) => events.data(b));
  tls.on("drain", () => events.drain());
  tls.on("error", (err: Error) => {
    if (open) events.error(err.message);
    close();
  });
  tls.on("close", close);
  tls.on("end", () => tls.end());
  return {
    plain: {
      write(data) {
        if (!open) return -1;
        if (tls.writableNeedDrain) return 0;
        tls.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
        return data.length;
      },
      end(data) {
        if (!open) return;
        if (data !== undefined) tls.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
        tls.end();
      },
      terminate() {
        tls.destroy();
        wire.destroy();
        close();
      },
      pause: () => tls.pause(),
      resume: () => tls.resume(),
    },
    feed: (bytes) => {
      if (open) wire.push(Buffer.from(bytes));
    },
    closed: () => {
      wire.push(null);
      tls.destroy();
      close();
    },
  };
}

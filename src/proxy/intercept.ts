/**
 * TLS terminated inside a CONNECT tunnel (issue 6): the client's bytes, after the 200, go into
 * a node:tls server socket over a Duplex, with the leaf minted for the host the ClientHello asked
 * for (chosen before the handshake: node:tls over a stream does not call SNICallback). What
 * comes out is plaintext HTTP for forward.ts, through an object with the few socket methods it
 * uses (write with Bun's partial-write meaning, end, terminate, pause, resume).
 */
import { Duplex } from "node:stream";
import { createSecureContext, TLSSocket, type SecureContext } from "node:tls";
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
  /** The client's TCP socket took everything queued for it: TLS may write again. */
  drained(): void;
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

/** How the TLS session reaches the client's TCP socket. */
export interface RawSide {
  /** Writes TLS records; false when the socket is backed up (the rest queued): `drained` follows. */
  send(bytes: Uint8Array): boolean;
  /** Ends the socket once its queue is flushed. */
  end(): void;
  /** Stop (true) or restart (false) reading the socket; said again on every change of cause, so repeats are normal. */
  setPaused(paused: boolean): void;
}

// One secure context per leaf (the CA caches leaves), not one per tunnel: building it parses
// the PEM key and certificate.
const contexts = new WeakMap<Leaf, SecureContext>();
function contextFor(leaf: Leaf): SecureContext {
  let ctx = contexts.get(leaf);
  if (ctx === undefined) {
    ctx = createSecureContext({ key: leaf.keyPem, cert: leaf.certPem });
    contexts.set(leaf, ctx);
  }
  return ctx;
}

/**
 * Terminates TLS for one tunnel. Backpressure runs both ways: while the client's socket is
 * backed up `plain.write` takes nothing (returns 0), and a paused plain side, or TLS records
 * not yet consumed, stops reading the client's socket. (Bun's TLSSocket over a Duplex neither
 * waits for the Duplex's write callbacks nor reports writableNeedDrain, so the client socket's
 * own queue is what is watched.)
 */
export function terminateTls(leaf: Leaf, raw: RawSide, events: TerminateEvents): Terminated {
  let rawBackedUp = false;
  let plainPaused = false;
  let wireFull = false;
  const updatePause = () => raw.setPaused(plainPaused || wireFull);
  const wire = new Duplex({
    read() {
      if (!wireFull) return;
      wireFull = false;
      updatePause();
    },
    write(chunk: Buffer, _encoding, done) {
      if (!raw.send(chunk)) rawBackedUp = true;
      done();
    },
    final(done) {
      raw.end();
      done();
    },
  });
  const tls = new TLSSocket(wire, {
    isServer: true,
    secureContext: contextFor(leaf),
    // HTTP/1.1 only for now (h2 may come later).
    ALPNProtocols: ["http/1.1"],
  });
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    events.close();
  };
  // node:tls emits from process.nextTick, where a throw reaches no caller and would end the
  // process: a failure while handling one tunnel ends that tunnel only.
  const guard =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A) => {
      try {
        fn(...args);
      } catch (err) {
        tls.destroy();
        wire.destroy();
        try {
          if (open) events.error(`internal error: ${String(err)}`);
          close();
        } catch {
          // Already failing; the socket is destroyed either way.
        }
      }
    };
  tls.on("data", guard((b: Buffer) => events.data(b)));
  tls.on(
    "error",
    guard((err: Error) => {
      if (open) events.error(err.message);
      close();
    }),
  );
  tls.on("close", guard(close));
  tls.on("end", () => tls.end());
  return {
    plain: {
      write(data) {
        if (!open) return -1;
        if (rawBackedUp) return 0;
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
      pause() {
        tls.pause();
        plainPaused = true;
        updatePause();
      },
      resume() {
        tls.resume();
        plainPaused = false;
        updatePause();
      },
    },
    feed(bytes) {
      if (!open) return;
      if (!wire.push(Buffer.from(bytes))) {
        wireFull = true;
        updatePause();
      }
    },
    drained() {
      if (!rawBackedUp || !open) return;
      rawBackedUp = false;
      events.drain();
    },
    closed: () => {
      wire.push(null);
      tls.destroy();
      close();
    },
  };
}

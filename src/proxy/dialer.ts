/**
 * The guarded dialer: never dial a hostname (smokescreen's dialContext). Resolve through the
 * resolver we were given, judge every address with the address policy, and connect to an
 * allowed IP literal. The IP that was checked is the IP that is dialled.
 */
import type { Socket, SocketHandler } from "bun";
import { rootCertificates } from "node:tls";
import { OperationalError } from "../core/errors.ts";
import type { Reason, Resolver } from "../core/types.ts";
import type { AddressPolicy } from "../net/address-policy.ts";
import { parseIpLiteral } from "../net/ip.ts";

export interface DialPlan {
  /** Addresses the policy allows, in resolver order. */
  readonly allowed: string[];
  /** Refused addresses, with the first refusal as a reason. */
  readonly refused: { ip: string; reason: Reason }[];
}

/** TLS for the upstream leg: the name to verify (and send as SNI), and CAs trusted besides the system roots. */
export interface UpstreamTls {
  readonly serverName: string;
  readonly extraCa: readonly string[];
}

export interface GuardedDialer {
  plan(host: string, port: number): Promise<DialPlan>;
  /**
   * Connects to the first of `ips` that answers. With `tls`, the connection is TLS to that
   * address with the server name set and the certificate verified; the verdict arrives in the
   * handler's `handshake` callback.
   */
  connect<T>(ips: readonly string[], port: number, handler: SocketHandler<T>, data: T, tls?: UpstreamTls): Promise<{ socket: Socket<T>; ip: string }>;
}

export function createGuardedDialer(opts: {
  resolver: Resolver;
  addresses: () => AddressPolicy;
  connectTimeoutMs: () => number;
}): GuardedDialer {
  return {
    async plan(host, port) {
      const literal = parseIpLiteral(host);
      const ips = literal ? [literal.text] : await opts.resolver.resolve(host);
      const policy = opts.addresses();
      const allowed: string[] = [];
      const refused: DialPlan["refused"] = [];
      for (const ip of ips) {
        const verdict = policy.check(ip, port);
        if (verdict.allowed) allowed.push(ip);
        // The detail names the range, not the address: it reaches the agent, and sluice must
        // not become a resolver of internal names. The address goes to the record.
        else refused.push({ ip, reason: { rule: verdict.rule, code: "blocked_address", detail: `${host} resolves to a refused address: ${verdict.detail}` } });
      }
      return { allowed, refused };
    },

    async connect(ips, port, handler, data, tls) {
      let last: unknown = null;
      for (const ip of ips) {
        try {
          const socket = await connectWithTimeout(ip, port, handler, data, opts.connectTimeoutMs(), tls);
          return { socket, ip };
        } catch (err) {
          last = err;
        }
      }
      const why = last instanceof Error ? last.message : String(last);
      throw new OperationalError("upstream_unreachable", `cannot connect to port ${port} on ${ips.join(", ")}: ${why}`, "proxy.upstream-unreachable");
    },
  };
}

function connectWithTimeout<T>(ip: string, port: number, handler: SocketHandler<T>, data: T, timeoutMs: number, tls?: UpstreamTls): Promise<Socket<T>> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new Error(`connect timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    // The system roots plus the extra CAs; with none extra, the runtime's own store.
    const tlsOptions = tls && { serverName: tls.serverName, rejectUnauthorized: true, ...(tls.extraCa.length > 0 ? { ca: [...rootCertificates, ...tls.extraCa] } : {}) };
    Bun.connect<T>({ hostname: ip, port, socket: handler, data, ...(tlsOptions ? { tls: tlsOptions } : {}) }).then(
      (socket) => {
        clearTimeout(timer);
        if (settled) socket.terminate();
        else resolve(socket);
        settled = true;
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!settled) reject(err instanceof Error ? new Error((err as NodeJS.ErrnoException).code ?? err.message) : err);
        settled = true;
      },
    );
  });
}

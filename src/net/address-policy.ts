/**
 * Decides whether the dialer may connect to one resolved address and port. Order matters and is
 * fixed here, in one place:
 *   1. the proxy's own listeners: never, or an agent could loop the proxy through itself and
 *      reach its admin side or bypass per-request checks;
 *   2. operator-trusted CIDRs: allowed, even when private (an internal registry, a sidecar);
 *   3. classification (net/classify): special-purpose ranges refused, public allowed.
 */
import type { AddressClass } from "../core/types.ts";
import { createCidrSet } from "./cidr.ts";
import { classifyAddress } from "./classify.ts";
import { parseIpLiteral, unmapIpv4, type ParsedIp } from "./ip.ts";

export interface AddressPolicyOptions {
  /** CIDRs (or bare addresses) the operator trusts even though classification would refuse them. */
  readonly trustedCidrs: readonly string[];
  /** Addresses the proxy itself listens on; `0.0.0.0` and `::` mean every local address. */
  readonly selfListeners: readonly { readonly address: string; readonly port: number }[];
}

export interface AddressCheck {
  readonly allowed: boolean;
  /** `net.self-address`, `net.trusted-cidr`, `net.metadata-address`, `net.private-address` or `net.public-address`. */
  readonly rule: string;
  readonly detail: string;
  readonly class: AddressClass;
}

export interface AddressPolicy {
  check(ip: string, port: number): AddressCheck;
}

interface SelfListener {
  readonly ip: ParsedIp;
  readonly wildcard: boolean;
  readonly port: number;
  readonly text: string;
}

/** Compiles the policy; throws one Error naming every bad trusted CIDR or listener address. */
export function createAddressPolicy(options: AddressPolicyOptions): AddressPolicy {
  const trusted = createCidrSet(options.trustedCidrs);
  const listeners = options.selfListeners.map(compileListener);

  return {
    check(ipText: string, port: number): AddressCheck {
      const parsed = parseIpLiteral(ipText);
      if (parsed === null) {
        const cls = classifyAddress(ipText);
        return { allowed: false, rule: "net.private-address", detail: cls.detail, class: cls };
      }
      // Compare identities after unmapping: ::ffff:127.0.0.1 reaches the same socket as 127.0.0.1.
      const ip = unmapIpv4(parsed);
      const cls = classifyAddress(parsed);
      for (const self of listeners) {
        if (self.port !== port) continue;
        // A wildcard listener answers on every local address, and a pure module cannot know
        // which addresses are local, so any destination on that port is refused (fail closed).
        if (self.wildcard || sameBytes(self.ip.bytes, ip.bytes)) {
          return { allowed: false, rule: "net.self-address", detail: `${parsed.text}:${port} is the proxy's own listener ${self.text}`, class: cls };
        }
      }
      if (trusted.contains(parsed) || (ip !== parsed && trusted.contains(ip))) {
        return { allowed: true, rule: "net.trusted-cidr", detail: `${parsed.text} is in trusted_cidrs (${cls.detail})`, class: cls };
      }
      if (!cls.blocked) return { allowed: true, rule: "net.public-address", detail: cls.detail, class: cls };
      const rule = cls.kind === "metadata" ? "net.metadata-address" : "net.private-address";
      return { allowed: false, rule, detail: cls.detail, class: cls };
    },
  };
}

function compileListener(listener: { readonly address: string; readonly port: number }, index: number): SelfListener {
  const parsed = parseIpLiteral(listener.address);
  if (parsed === null) throw new Error(`self listener #${index}: "${listener.address}" is not an IP address`);
  if (!Number.isInteger(listener.port) || listener.port < 0 || listener.port > 65535) {
    throw new Error(`self listener #${index}: port ${listener.port} is not 0..65535`);
  }
  const ip = unmapIpv4(parsed);
  const wildcard = ip.bytes.every((b) => b === 0);
  const text = parsed.family === 6 ? `[${parsed.text}]:${listener.port}` : `${parsed.text}:${listener.port}`;
  return { ip, wildcard, port: listener.port, text };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

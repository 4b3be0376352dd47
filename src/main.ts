/**
 * Composition root: parse the command line and dispatch to a subcommand. Nothing happens on
 * import of any other module; everything starts here. A subcommand's module (and what it
 * imports) is loaded when that subcommand runs: `sluice jail` or `sluice health` does not pay for
 * the rule packs, the TLS stack and the proxy that `sluice run` needs.
 */
// tsyringe (under @peculiar/x509) wants the Reflect polyfill before any module that uses it.
import "reflect-metadata";
import { z } from "zod";
import { versionLine } from "./cli/build-info.ts";
import { EXIT, UsageError } from "./cli/usage.ts";

const HELP = `sluice: the egress firewall AI agents run behind.

Usage: sluice <command> [options]

Commands:
  run             start the proxy and admin API (embedded default policy unless --config)
  check-config    validate a config file
  init            print the embedded default policy; init sidecar: Kubernetes manifests
  scan            scan a file or stdin for credentials (DLP rules, offline)
  ca export       print the TLS interception CA certificate, or --env trust-store settings
  mcp proxy       run an MCP server behind sluice (stdio), inspecting every message
  jail            run a command in a network namespace whose only way out is sluice (root)
  nft             host mode: render, apply or remove the nftables table for one user (root)
  install systemd write sluice.service (sandboxed; host mode optional)
  health          ask a running sluice for /healthz (--wait: until it is up)
  audit verify    check the signed decision log (chain, Merkle roots, signatures)
  audit pubkey    print the public key that signs the decision log
  audit show      print the decision log as a table or JSON lines, filtered
  audit receipt   a record with its inclusion proof against a signed tree head
  audit verify-proof  check one receipt offline against a public key
  audit rotate-key    hand the log's signing over to a new key (sluice stopped)

Options:
  -h, --help      show help (also: sluice <command> --help)
  -V, --version   print version and build commit

Exit status: 0 ok, 1 failure (invalid config, cannot listen), 2 usage error.`;

type Write = (s: string) => void;
const toStdout: Write = (s) => process.stdout.write(s);
const toStderr: Write = (s) => process.stderr.write(s);

/** A subcommand: its module, loaded on use (help and all), and how to run it. */
interface Command {
  load(): Promise<{ readonly HELP: string }>;
  run(args: string[]): Promise<number> | number;
}

const command = <M extends { readonly HELP: string }>(load: () => Promise<M>, run: (m: M, args: string[]) => Promise<number> | number): Command => ({ load, run: async (args) => run(await load(), args) });

const COMMANDS: Record<string, Command> = {
  run: command(() => import("./cli/run.ts"), (m, a) => m.runCommand(a)),
  "check-config": command(() => import("./cli/check-config.ts"), (m, a) => m.checkConfigCommand(a, toStdout)),
  init: command(() => import("./cli/init.ts"), (m, a) => m.initCommand(a, toStdout, toStderr)),
  scan: command(() => import("./cli/scan.ts"), (m, a) => m.scanCommand(a, toStdout, toStderr)),
  ca: command(() => import("./cli/ca.ts"), (m, a) => m.caCommand(a, toStdout, toStderr)),
  mcp: command(() => import("./cli/mcp.ts"), (m, a) => m.mcpCommand(a)),
  jail: command(() => import("./cli/jail.ts"), (m, a) => m.jailCommand(a)),
  install: command(() => import("./cli/install.ts"), (m, a) => m.installCommand(a, toStdout, toStderr)),
  health: command(() => import("./cli/health.ts"), (m, a) => m.healthCommand(a, toStdout, toStderr)),
  nft: command(() => import("./cli/nft.ts"), (m, a) => m.nftCommand(a, toStdout, toStderr)),
  audit: command(() => import("./cli/audit.ts"), (m, a) => m.auditCommand(a, toStdout, toStderr)),
};

async function main(argv: string[]): Promise<number> {
  // Schemas parse once per run (the config, the rule packs): zod's generated fast path costs more
  // to make than it saves here.
  z.config({ jitless: true });
  const [first, ...rest] = argv;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    process.stdout.write(`${HELP}\n`);
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === "-V" || first === "--version") {
    process.stdout.write(`${versionLine()}\n`);
    return EXIT.ok;
  }
  const cmd = COMMANDS[first];
  if (!cmd) {
    process.stderr.write(`sluice: unknown command '${first}'\n\n${HELP}\n`);
    return EXIT.usage;
  }
  // Only sluice's own arguments: what follows `--` is another program's (sluice mcp proxy -- CMD --help).
  const own = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  try {
    if (own.includes("-h") || own.includes("--help")) {
      process.stdout.write(`${(await cmd.load()).HELP}\n`);
      return EXIT.ok;
    }
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS"))) {
      process.stderr.write(`sluice ${first}: ${err.message}\n\n${(await cmd.load()).HELP}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`sluice ${first}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.failure;
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// `run` has stopped its listeners and flushed its records by now. Anything still open (a peer
// that never closes its half of a connection) must not keep a stopped sluice alive.
if (process.argv[2] === "run" || process.argv[2] === "mcp" || process.argv[2] === "jail") process.exit(code);

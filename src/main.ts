/**
 * Composition root: parse the command line and dispatch to a subcommand. Nothing happens on
 * import of any other module; everything starts here.
 */
import { auditCommand, HELP as AUDIT_HELP } from "./cli/audit.ts";
import { caCommand, HELP as CA_HELP } from "./cli/ca.ts";
import { checkConfigCommand, HELP as CHECK_HELP } from "./cli/check-config.ts";
import { versionLine } from "./cli/build-info.ts";
import { HELP as HEALTH_HELP, healthCommand } from "./cli/health.ts";
import { HELP as INIT_HELP, initCommand } from "./cli/init.ts";
import { HELP as INSTALL_HELP, installCommand } from "./cli/install.ts";
import { HELP as JAIL_HELP, jailCommand } from "./cli/jail.ts";
import { HELP as NFT_HELP, nftCommand } from "./cli/nft.ts";
import { HELP as MCP_HELP, mcpCommand } from "./cli/mcp.ts";
import { HELP as RUN_HELP, runCommand } from "./cli/run.ts";
import { HELP as SCAN_HELP, scanCommand } from "./cli/scan.ts";
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

const COMMANDS: Record<string, { help: string; run: (args: string[]) => Promise<number> | number }> = {
  run: { help: RUN_HELP, run: runCommand },
  "check-config": { help: CHECK_HELP, run: (a) => checkConfigCommand(a, (s) => process.stdout.write(s)) },
  init: { help: INIT_HELP, run: (a) => initCommand(a, (s) => process.stdout.write(s), (s) => process.stderr.write(s)) },
  scan: { help: SCAN_HELP, run: (a) => scanCommand(a, (s) => process.stdout.write(s), (s) => process.stderr.write(s)) },
  ca: { help: CA_HELP, run: (a) => caCommand(a, (s) => process.stdout.write(s), (s) => process.stderr.write(s)) },
  mcp: { help: MCP_HELP, run: mcpCommand },
  jail: { help: JAIL_HELP, run: jailCommand },
  install: { help: INSTALL_HELP, run: (a) => installCommand(a, (s) => process.stdout.write(s), (s) => process.stderr.write(s)) },
  health: { help: HEALTH_HELP, run: (a) => healthCommand(a, (s) => process.stdout.write(s), (s) => process.stderr.write(s)) },
  nft: { help: NFT_HELP, run: (a) => nftCommand(a, (s) => process.stdout.write(s), (s) => process.stderr.write(s)) },
  audit: { help: AUDIT_HELP, run: (a) => auditCommand(a, (s) => process.stdout.write(s), (s) => process.stderr.write(s)) },
};

async function main(argv: string[]): Promise<number> {
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
  if (own.includes("-h") || own.includes("--help")) {
    process.stdout.write(`${cmd.help}\n`);
    return EXIT.ok;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS"))) {
      process.stderr.write(`sluice ${first}: ${err.message}\n\n${cmd.help}\n`);
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

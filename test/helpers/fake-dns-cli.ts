/**
 * Runs the fake upstream DNS (and optionally a counting HTTP origin) as a process of its own,
 * so a test can start them inside a network namespace: `ip netns exec NS bun fake-dns-cli.ts
 * '<names json>' [--origin]`. Prints one JSON line `{"dns":PORT,"origin":PORT}` when ready,
 * then one line `{"origin_request":PATH}` per request the origin serves. Ends on SIGTERM.
 */
import { startFakeDns, type NameSpec } from "./fake-dns.ts";

const names = JSON.parse(process.argv[2] ?? "{}") as Record<string, NameSpec>;
const fake = await startFakeDns({ names });
let originPort: number | null = null;
if (process.argv.includes("--origin")) {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      process.stdout.write(`${JSON.stringify({ origin_request: new URL(req.url).pathname })}\n`);
      return new Response("origin reached");
    },
  });
  originPort = server.port ?? null;
}
process.stdout.write(`${JSON.stringify({ dns: fake.port, origin: originPort })}\n`);
process.on("SIGTERM", () => {
  void fake.stop().then(() => process.exit(0));
});

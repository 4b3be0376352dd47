/**
 * The upload benchmark's origin, run as its own process (so the client, the origin and the proxy
 * each get a CPU of their own where there are enough): reads every request body as a stream and
 * discards it, counting bytes and (unless --no-hash) hashing them, then answers
 * `{"bytes":N,"sha256":"..."}`. Prints `{"port":N}` on stdout once it listens on 127.0.0.1.
 *
 *   bun bench/lib/upload-origin.ts [--no-hash]
 */
const hash = !Bun.argv.includes("--no-hash");

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  // A 1 GiB body is the point; Bun's default cap is 128 MiB.
  maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  // The body is read as it arrives; no idle cut-off while the proxy is slower.
  idleTimeout: 0,
  async fetch(req) {
    const hasher = hash ? new Bun.CryptoHasher("sha256") : null;
    let bytes = 0;
    const t0 = performance.now();
    if (req.body) {
      for await (const chunk of req.body) {
        bytes += chunk.length;
        hasher?.update(chunk);
      }
    }
    const ms = performance.now() - t0;
    return Response.json({ bytes, sha256: hasher ? hasher.digest("hex") : null, ms, chunked: req.headers.get("transfer-encoding") === "chunked" });
  },
});

console.log(JSON.stringify({ port: server.port }));

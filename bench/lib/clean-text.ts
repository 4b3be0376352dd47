/**
 * Realistic clean text, generated on the fly: what an agent might upload (source files, logs,
 * notes, JSON lines, a little non-ASCII prose), with nothing a DLP rule should find. Lines come
 * from templates filled by a seeded PRNG, so a run is reproducible; pieces are produced one at a
 * time and never kept, so a 1 GiB body costs the generator one piece of memory.
 */
import { mulberry32 } from "../../test/helpers/mulberry32.ts";

const WORDS = (
  "the a request response cache layer retry budget worker queue index page route handler module " +
  "config release build test review branch commit merge deploy rollback service client server " +
  "timeout latency throughput memory buffer stream parser schema record field value default " +
  "error warning notice user team project issue feature change update first second next last " +
  "quickly carefully slowly again only also never always often sometimes before after during " +
  "is was will should could must can may runs reads writes sends keeps drops checks returns " +
  "small large fast slow new old stable flaky clean simple nested optional required public"
).split(" ");
const IDENTS = ["parseHeader", "readChunk", "flushQueue", "retryCount", "maxBytes", "onDrain", "userName", "pageSize", "itemList", "startTime", "cacheKey", "isReady"];
const PATHS = ["src/server/routes.ts", "lib/cache/lru.go", "app/models/user.rb", "pkg/queue/worker.py", "docs/guide/setup.md", "internal/http/client.rs"];
const LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
const UNICODE = ["Café déjà vu, naïve façade — «résumé» à la carte.", "Größenänderung der Übersicht für Straßen und Plätze.", "東京の天気は晴れです。明日も良い一日を。", "Добро пожаловать в наш проект: сборка прошла успешно.", "Σημείωση: η ενημέρωση ολοκληρώθηκε χωρίς σφάλματα. ✓"];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function sentence(r: () => number): string {
  const n = 6 + Math.floor(r() * 14);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(pick(r, WORDS));
  const s = words.join(" ");
  return `${s[0]!.toUpperCase()}${s.slice(1)}.`;
}

function line(r: () => number, n: number): string {
  const k = r();
  const small = () => Math.floor(r() * 1000);
  if (k < 0.3) return `${sentence(r)} ${sentence(r)}`;
  if (k < 0.5) {
    const sec = n % 60;
    return `2026-01-14T10:${String(Math.floor(n / 60) % 60).padStart(2, "0")}:${String(sec).padStart(2, "0")}.${String(small()).padStart(3, "0")}Z ${pick(r, LEVELS)} ${pick(r, PATHS)}:${small()} ${pick(r, WORDS)} ${pick(r, WORDS)} took ${small()} ms (attempt ${1 + (n % 4)})`;
  }
  if (k < 0.7) return `  const ${pick(r, IDENTS)} = ${pick(r, IDENTS)}(${pick(r, IDENTS)}, ${small()}); // ${pick(r, WORDS)} the ${pick(r, WORDS)}`;
  if (k < 0.85) return `{"event":"${pick(r, WORDS)}.${pick(r, WORDS)}","count":${small()},"path":"${pick(r, PATHS)}","ok":${r() < 0.9}}`;
  if (k < 0.95) return `- [${r() < 0.5 ? "x" : " "}] ${sentence(r)}`;
  return pick(r, UNICODE);
}

/** Lines generated up front; pieces are assembled from them in a PRNG order (fast: copies only). */
const POOL_LINES = 32_768;

/**
 * `total` bytes of text in pieces of `pieceSize` (the last may be shorter). Each piece is a fresh
 * buffer (a socket may still hold the previous one), filled with lines picked at random from a
 * pool of 32,768 generated lines (~3 MB, made once: generating every line afresh ran ~110 MB/s,
 * slower than the proxy, and would have measured the generator). Lines run across piece
 * boundaries, so UTF-8 characters are split between pieces too, as in any real upload.
 */
export function* cleanTextPieces(total: number, pieceSize = 64 * 1024, seed = 42): Generator<Buffer> {
  const r = mulberry32(seed);
  const lines: string[] = [];
  for (let i = 0; i < POOL_LINES; i++) lines.push(`${line(r, i)}\n`);
  const pool = Buffer.from(lines.join(""));
  const starts = new Uint32Array(POOL_LINES + 1);
  for (let i = 0, at = 0; i < POOL_LINES; i++) {
    starts[i] = at;
    at += Buffer.byteLength(lines[i]!);
    starts[i + 1] = at;
  }
  lines.length = 0;
  let carry: Buffer = Buffer.alloc(0);
  let sent = 0;
  while (sent < total) {
    const size = Math.min(pieceSize, total - sent);
    const piece = Buffer.allocUnsafe(size);
    let at = 0;
    if (carry.length > 0) {
      const take = Math.min(carry.length, size);
      piece.set(carry.subarray(0, take), 0);
      carry = carry.subarray(take);
      at = take;
    }
    while (at < size) {
      const i = (r() * POOL_LINES) | 0;
      const a = starts[i]!;
      const b = starts[i + 1]!;
      const take = Math.min(b - a, size - at);
      piece.set(pool.subarray(a, a + take), at);
      at += take;
      if (a + take < b) carry = pool.subarray(a + take, b);
    }
    sent += size;
    yield piece;
  }
}

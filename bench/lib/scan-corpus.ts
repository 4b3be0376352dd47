/**
 * Deterministic clean input for bench/scan.ts: prose, JSON API payloads, log lines, code, UUIDs,
 * git SHAs, base64 image data and URLs with ids, mixed in a seeded order. "Clean" means it holds
 * no secret: bench/scan.ts checks that the engine finds nothing in it before measuring.
 * Everything is ASCII, so one character is one byte.
 */
import { mulberry32 } from "../../test/helpers/mulberry32.ts";

/** The same sequence on every run for a given seed. */
export const rng = mulberry32;

export type Rand = () => number;

const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

const HEX = "0123456789abcdef";
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ALNUM_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789";

function chars(r: Rand, alphabet: string, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[int(r, alphabet.length)];
  return s;
}

export const uuid = (r: Rand): string =>
  `${chars(r, HEX, 8)}-${chars(r, HEX, 4)}-4${chars(r, HEX, 3)}-${pick(r, ["8", "9", "a", "b"])}${chars(r, HEX, 3)}-${chars(r, HEX, 12)}`;
export const gitSha = (r: Rand): string => chars(r, HEX, 40);

const WORDS = (
  "the a of to and in is that for it as with was on be by this are from at or an have not which but all " +
  "agent proxy request response model context window tool call result server client policy rule network " +
  "latency budget cache upstream resolver query answer record domain header body stream chunk buffer " +
  "deploy build release branch merge review commit test suite coverage bench report figure table user " +
  "account session retry timeout error warning notice field value schema version migration index " +
  "quickly carefully usually rarely often never always because although however therefore meanwhile " +
  "small large fast slow simple complex stable flaky early late first last next previous recent"
).split(" ");

function sentence(r: Rand): string {
  const n = 6 + int(r, 14);
  const w: string[] = [];
  for (let i = 0; i < n; i++) w.push(pick(r, WORDS));
  if (r() < 0.2) w.splice(int(r, w.length), 0, String(int(r, 1000)));
  const s = w.join(" ");
  return `${s[0]!.toUpperCase()}${s.slice(1)}${pick(r, [".", ".", ".", "?", "!", ";"])}`;
}

function prose(r: Rand): string {
  const sentences: string[] = [];
  const n = 3 + int(r, 6);
  for (let i = 0; i < n; i++) sentences.push(sentence(r));
  return `${sentences.join(" ")}\n\n`;
}

const HOSTS = ["api.github.com", "api.openai.com", "app.acme.dev", "shop.acme.dev", "registry.npmjs.org", "pypi.org", "cdn.acme.dev", "www.youtube.com"];
const NAMES = ["ada", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances", "alan", "radia"];

const isoTime = (r: Rand): string =>
  `2026-${String(1 + int(r, 12)).padStart(2, "0")}-${String(1 + int(r, 28)).padStart(2, "0")}T${String(int(r, 24)).padStart(2, "0")}:${String(int(r, 60)).padStart(2, "0")}:${String(int(r, 60)).padStart(2, "0")}.${String(int(r, 1000)).padStart(3, "0")}Z`;

function url(r: Rand): string {
  switch (int(r, 6)) {
    case 0:
      return `https://github.com/${pick(r, NAMES)}/${pick(r, WORDS)}-${pick(r, WORDS)}/commit/${gitSha(r)}`;
    case 1:
      return `https://${pick(r, HOSTS)}/v1/orders/${int(r, 1e7)}/items?page=${1 + int(r, 40)}&per_page=50`;
    case 2:
      return `https://www.youtube.com/watch?v=${chars(r, ALNUM_LOWER, 11)}&t=${int(r, 600)}s`;
    case 3:
      return `https://${pick(r, HOSTS)}/users/${uuid(r)}/sessions?ref=${chars(r, ALNUM_LOWER, 8)}`;
    case 4:
      return `https://github.com/${pick(r, NAMES)}/${pick(r, WORDS)}/pull/${1 + int(r, 9000)}#discussion_r${int(r, 1e9)}`;
    default:
      return `https://${pick(r, HOSTS)}/search?q=${pick(r, WORDS)}+${pick(r, WORDS)}&lang=en&id=${int(r, 1e6)}`;
  }
}

function jsonPayload(r: Rand): string {
  const items = Array.from({ length: 1 + int(r, 4) }, () => ({
    sku: `sku-${chars(r, ALNUM_LOWER, 6)}`,
    qty: 1 + int(r, 9),
    price_cents: int(r, 100_000),
    title: sentence(r),
  }));
  const payload = {
    id: uuid(r),
    object: pick(r, ["order", "chat.completion", "event", "invoice.line"]),
    created_at: isoTime(r),
    model: pick(r, ["gpt-4o-mini", "claude-sonnet", "llama-3-70b"]),
    usage: { prompt_tokens: int(r, 8000), completion_tokens: int(r, 2000), max_tokens: 4096 },
    user: { name: pick(r, NAMES), email: `${pick(r, NAMES)}@acme.dev`, id: int(r, 1e6) },
    commit: gitSha(r),
    links: { self: url(r), next: url(r) },
    items,
    message: sentence(r),
  };
  return `${JSON.stringify(payload, null, r() < 0.5 ? 2 : undefined)}\n`;
}

function logLines(r: Rand): string {
  let s = "";
  const n = 4 + int(r, 12);
  for (let i = 0; i < n; i++) {
    const level = pick(r, ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]);
    const method = pick(r, ["GET", "GET", "POST", "PUT", "DELETE"]);
    s +=
      `${isoTime(r)} ${level} [req ${uuid(r)}] ${method} /api/v1/${pick(r, WORDS)}/${int(r, 1e6)} ` +
      `${pick(r, [200, 200, 201, 204, 304, 404, 500])} ${int(r, 900)}ms ip=10.${int(r, 256)}.${int(r, 256)}.${int(r, 256)} ` +
      `trace=${chars(r, HEX, 32)} msg="${sentence(r)}"\n`;
  }
  return s;
}

function code(r: Rand): string {
  const fn = `${pick(r, WORDS)}${pick(r, ["Handler", "Client", "Cache", "Index", "Budget"])}`;
  const field = pick(r, WORDS);
  return [
    `import { ${fn} } from "./${pick(r, WORDS)}.ts";`,
    ``,
    `/** ${sentence(r)} */`,
    `export async function load${fn}(id: string, limit = ${int(r, 1000)}): Promise<${fn}[]> {`,
    `  const rows = await db.query("SELECT * FROM ${field}s WHERE owner_id = $1 LIMIT $2", [id, limit]);`,
    `  for (let i = 0; i < rows.length; i++) {`,
    `    if (rows[i].${field} === undefined) throw new Error(\`missing ${field} in row \${i}\`);`,
    `  }`,
    `  const maxTokens = Math.min(limit * ${1 + int(r, 8)}, 4096);`,
    `  return rows.map((row) => new ${fn}(row.id, row.${field}, maxTokens)); // ${gitSha(r).slice(0, 12)}`,
    `}`,
    ``,
    ``,
  ].join("\n");
}

function ids(r: Rand): string {
  let s = "";
  const n = 4 + int(r, 10);
  for (let i = 0; i < n; i++) s += `${pick(r, ["commit", "parent", "tree", "uuid", "request"])} ${r() < 0.5 ? gitSha(r) : uuid(r)}\n`;
  return s;
}

/** A data: URL of an image-like byte blob (a PNG header, then noisy bytes with runs of zeros). */
function imageData(r: Rand): string {
  const n = 600 + int(r, 3000);
  const bytes = new Uint8Array(n);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (let i = 8; i < n; i++) bytes[i] = r() < 0.15 ? 0 : int(r, 256);
  const b64 = Buffer.from(bytes).toString("base64");
  return `<img alt="${pick(r, WORDS)}" src="data:image/png;base64,${b64}">\n`;
}

const PARTS: readonly (readonly [number, (r: Rand) => string])[] = [
  [25, prose],
  [20, jsonPayload],
  [20, logLines],
  [15, code],
  [8, ids],
  [6, imageData],
  [6, (r) => `${url(r)}\n${url(r)}\n`],
];
const TOTAL_WEIGHT = PARTS.reduce((a, [w]) => a + w, 0);

/** `bytes` characters of clean mixed text, the same for the same seed. */
export function cleanCorpus(bytes: number, seed: number): string {
  const r = rng(seed);
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    let x = r() * TOTAL_WEIGHT;
    let gen = PARTS[0]![1];
    for (const [w, g] of PARTS) {
      if (x < w) {
        gen = g;
        break;
      }
      x -= w;
    }
    const s = gen(r);
    parts.push(s);
    length += s.length;
  }
  return parts.join("").slice(0, bytes);
}

/**
 * Pieces of `size` characters, each a flat string of its own (as the proxy would have after
 * decoding a body chunk), not a view into the corpus.
 */
export function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  const bytes = Buffer.from(text, "latin1");
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size).toString("latin1"));
  return out;
}

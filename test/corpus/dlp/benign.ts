/**
 * Benign look-alikes: values shaped like secrets that are not (hashes, ids, images, documented
 * placeholders, published test cards). Any finding on one of them is a false positive.
 */
import type { CompiledRules } from "../../../src/scan/rules/compile.ts";
import type { Rng } from "./rng.ts";
import { ALNUM, B64, HEX } from "./rng.ts";
import { CONTEXTS, wrap } from "./contexts.ts";
import { BIP39_ENGLISH } from "../../../src/scan/rules/bip39-words.ts";
import { bip39 } from "../../../src/scan/rules/validators.ts";

export const BENIGN_KINDS = [
  "uuid", "git-sha", "sha256", "npm-integrity", "base64-image", "api-doc-placeholder", "url-id",
  "test-card", "rule-no-match", "encoded-plain-text", "random-blob", "numbers", "vendor-lookalike",
] as const;
export type BenignKind = (typeof BENIGN_KINDS)[number];

const uuid = (rng: Rng) => {
  const h = rng.chars(HEX, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${rng.pick(["8", "9", "a", "b"])}${h.slice(17, 20)}-${h.slice(20)}`;
};
const bytes = (rng: Rng, n: number) => Buffer.from(Array.from({ length: n }, () => rng.int(256)));

const PLACEHOLDER_DOCS: readonly string[] = [
  "export OPENAI_API_KEY=sk-...\n# then run: python app.py",
  "Authorization: Bearer <your-token>",
  "Set ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY} in your shell profile",
  "curl https://api.example.com/v1/models -H \"Authorization: Bearer $API_KEY\"",
  "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  "stripe.api_key = \"sk_live_...\"",
  "AWS_ACCESS_KEY_ID=<your-access-key-id>\nAWS_SECRET_ACCESS_KEY=<your-secret-access-key>",
  "password: {{ vault_db_password }}",
  "token: \"%s\"",
  "DATABASE_URL=postgres://user:${DB_PASSWORD}@db:5432/app",
  "SLACK_BOT_TOKEN=xoxb-your-bot-token",
  "api_key: YOUR_API_KEY",
  "HF_TOKEN=hf_...",
  "npm config set //registry.npmjs.org/:_authToken=${NPM_TOKEN}",
  "secret = \"<REDACTED>\"",
  "Replace sk-ant-api03-... with the key from the console.",
  "mongodb://<username>:<password>@cluster0.example.mongodb.net/test",
  "PYPI_TOKEN=pypi-***",
];

/** Twelve wordlist words whose checksum fails: the look-alike a BIP-39 rule must refuse. */
const listWordsNoChecksum = (rng: Rng) => {
  for (;;) {
    const words = Array.from({ length: 12 }, () => rng.pick(BIP39_ENGLISH)).join(" ");
    if (!bip39(words)) return words;
  }
};

/**
 * Public identifiers and values that sit next to the credentials of the newer rules, under the
 * same names: ids, hashes and addresses are not secrets.
 */
const VENDOR_LOOKALIKES: readonly ((rng: Rng) => string)[] = [
  // Ethereum JSON-RPC: transaction and block hashes are 0x + 64 hex, addresses 0x + 40 hex.
  (rng) => `{"jsonrpc":"2.0","id":${rng.int(99)},"result":{"hash":"0x${rng.chars(HEX, 64)}","blockHash":"0x${rng.chars(HEX, 64)}","from":"0x${rng.chars(HEX, 40)}","to":"0x${rng.chars(HEX, 40)}","value":"0x${rng.chars(HEX, 12)}"}}`,
  (rng) => `eth_getTransactionReceipt tx=0x${rng.chars(HEX, 64)} wallet=0x${rng.chars(HEX, 40)} status=0x1 gasUsed=0x${rng.chars(HEX, 5)}`,
  // A wallet's label words: list words, no valid checksum.
  (rng) => `{"wallet":"demo-${rng.int(99)}","tags":"${listWordsNoChecksum(rng)}","network":"testnet"}`,
  (rng) => `Write down your recovery phrase on paper. Never type the seed words into a website; support will never ask for them (ticket #${rng.int(99999)}).`,
  // Twilio API response: account, message and service SIDs are ids, not the auth token.
  (rng) => `{"sid":"SM${rng.chars(HEX, 32)}","account_sid":"AC${rng.chars(HEX, 32)}","messaging_service_sid":"MG${rng.chars(HEX, 32)}","status":"queued","uri":"/2010-04-01/Accounts/AC${rng.chars(HEX, 32)}/Messages.json"}`,
  // Discord message: snowflake ids.
  (rng) => `{"id":"1${rng.chars("0123456789", 18)}","channel_id":"1${rng.chars("0123456789", 18)}","author":{"id":"9${rng.chars("0123456789", 17)}","bot":true},"content":"discord bot deployed build ${rng.chars(HEX, 7)}"}`,
  // Cloudflare zone and account ids are 32 hex; cf-ray is a request id.
  (rng) => `CLOUDFLARE_ZONE_ID=${rng.chars(HEX, 32)}\nCLOUDFLARE_ACCOUNT_ID=${rng.chars(HEX, 32)}\ncf-ray: ${rng.chars(HEX, 16)}-AMS`,
  // Vercel, Netlify and Heroku deployment, project, site and app ids.
  (rng) => `{"vercel":{"deploymentId":"dpl_${rng.chars(ALNUM, 28)}","projectId":"prj_${rng.chars(ALNUM, 28)}","orgId":"team_${rng.chars(ALNUM, 24)}"}}`,
  (rng) => `NETLIFY_SITE_ID=${uuid(rng)} HEROKU_APP_ID=${uuid(rng)} heroku release v${rng.int(400)}`,
  // AWS response headers and a region named "asia": no key id, no secret.
  (rng) => `x-amz-request-id: ${rng.chars("0123456789ABCDEF", 16)}\nx-amz-id-2: ${bytes(rng, 57).toString("base64")}\nbucket region: asia-southeast-${1 + rng.int(3)}`,
  // Mailgun message id and GitLab CI ids.
  (rng) => `Message-Id: <${rng.int(99999999)}.${rng.chars(HEX, 16)}@mg.example.org> queued by mailgun; CI_JOB_ID=${rng.int(9e8)} CI_PIPELINE_ID=${rng.int(9e8)} CI_COMMIT_SHA=${rng.chars(HEX, 40)}`,
  (rng) => `model=mistral-large-latest provider=together fireworks_model=accounts/fireworks/models/llama-v3p1-8b-instruct cohere_model=command-r-plus request=${uuid(rng)}`,
];

const TEST_CARDS = ["4111 1111 1111 1111", "4242424242424242", "5555555555554444", "5105105105105100", "4012888888881881", "6011111111111117", "378282246310005", "371449635398431"];

export interface BenignEntry {
  readonly kind: BenignKind;
  readonly text: string;
}

function value(kind: BenignKind, rng: Rng, rules: CompiledRules): string {
  switch (kind) {
    case "uuid":
      return `{"id":"${uuid(rng)}","parent":"${uuid(rng)}","trace_id":"${uuid(rng).replace(/-/g, "")}"}`;
    case "git-sha":
      return `commit ${rng.chars(HEX, 40)}\nMerge: ${rng.chars(HEX, 7)} ${rng.chars(HEX, 7)}\nsee https://git.example.org/acme/app/commit/${rng.chars(HEX, 40)}`;
    case "sha256":
      return `sha256:${rng.chars(HEX, 64)}  dist/app-${rng.int(9)}.${rng.int(20)}.tar.gz\nETag: "${rng.chars(HEX, 32)}"`;
    case "npm-integrity":
      return `"node_modules/left-pad": {"version": "1.3.0", "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", "integrity": "sha512-${bytes(rng, 64).toString("base64")}"}`;
    case "base64-image": {
      const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]), bytes(rng, 200 + rng.int(1200))]);
      return `<img alt="chart" src="data:image/png;base64,${png.toString("base64")}">`;
    }
    case "api-doc-placeholder":
      return rng.pick(PLACEHOLDER_DOCS);
    case "url-id":
      return rng.pick([
        () => `GET https://drive.example.com/file/d/${rng.chars(ALNUM + "_-", 33)}/view?usp=sharing`,
        () => `https://cdn.example.net/assets/${rng.chars(HEX, 20)}/bundle.${rng.chars(HEX, 8)}.js`,
        () => `https://app.example.io/share/${rng.chars(ALNUM, 43)}?ref=${rng.chars(ALNUM, 12)}`,
        () => `https://www.youtube.com/watch?v=${rng.chars(ALNUM + "_-", 11)}&list=PL${rng.chars(ALNUM + "_-", 32)}`,
        () => `https://uploads.example.org/${uuid(rng)}/${rng.chars(ALNUM, 24)}.pdf`,
      ])();
    case "test-card":
      return `{"card":"${rng.pick(TEST_CARDS)}","exp":"12/34","cvc":"123","note":"Stripe test mode"}`;
    case "rule-no-match": {
      const rule = rng.pick(rules.rules.filter((r) => r.examples.no_match.length > 0));
      return rng.pick(rule.examples.no_match);
    }
    case "encoded-plain-text": {
      const plain = rng.pick([
        `{"user":"agent-${rng.int(999)}","action":"list_files","path":"/work/app/src"}`,
        `The quick brown fox jumps over the lazy dog ${rng.int(99999)} times.`,
        `model=claude temperature=0.${rng.int(9)} max_tokens=${rng.int(4096)}`,
      ]);
      return rng.pick([
        () => `payload=${Buffer.from(plain).toString("base64")}`,
        () => `data: ${Buffer.from(plain).toString("hex")}`,
        () => `q=${encodeURIComponent(plain)}`,
      ])();
    }
    case "random-blob":
      return rng.pick([
        () => `{"nonce":"${bytes(rng, 24).toString("base64")}","ciphertext":"${bytes(rng, 96 + rng.int(200)).toString("base64")}"}`,
        () => `Set-Cookie: session=${bytes(rng, 32).toString("base64url")}; HttpOnly; Secure`,
        () => `X-Request-Id: ${rng.chars(ALNUM, 32)}\nX-Amzn-Trace-Id: Root=1-${rng.chars(HEX, 8)}-${rng.chars(HEX, 24)}`,
        () => `csrf_token=${rng.chars(B64, 44)}`,
      ])();
    case "numbers":
      return rng.pick([
        () => `order ${String(1e15 + rng.int(9e14))} shipped at ${1760000000000 + rng.int(1e9)}`,
        () => `call +1 512-${100 + rng.int(899)}-${1000 + rng.int(8999)} about ticket #${rng.int(1e6)}`,
        () => `tracking: 1Z${rng.chars("0123456789ABCDEFGHJKLMNPRSTUVWXYZ", 16)} weight=${rng.int(90)}.${rng.int(9)}kg`,
        () => `version ${rng.int(9)}.${rng.int(30)}.${rng.int(100)} build ${rng.chars(HEX, 12)}`,
      ])();
    case "vendor-lookalike":
      return rng.pick(VENDOR_LOOKALIKES)(rng);
  }
}

export function benignEntries(rules: CompiledRules, rng: Rng, perKind: number): BenignEntry[] {
  const out: BenignEntry[] = [];
  for (const kind of BENIGN_KINDS) {
    for (let i = 0; i < perKind; i++) out.push({ kind, text: wrap(rng.pick(CONTEXTS), value(kind, rng, rules), false, rng) });
  }
  return out;
}

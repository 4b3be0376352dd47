/**
 * The BIP-39 and Discord validators, the wordlist they rely on, and the cases the rule pack used
 * to miss or flag wrongly (issue 4): escaped quotes, indented and diffed private keys, an escaped
 * line break before an AWS key id, csrf and paging tokens, hashes next to wallet words.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BIP39_ENGLISH, BIP39_INDEX } from "../../../src/scan/rules/bip39-words.ts";
import { compileRulePack } from "../../../src/scan/rules/compile.ts";
import { bip39, bip39Mnemonic, discordBotToken } from "../../../src/scan/rules/validators.ts";
import { mulberry32 } from "../../helpers/mulberry32.ts";

const DLP_DIR = join(import.meta.dir, "../../../rules/dlp");
const pack = compileRulePack(
  readdirSync(DLP_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => ({ path: `rules/dlp/${f}`, text: readFileSync(join(DLP_DIR, f), "utf8") })),
);
const rulesFound = (text: string) => [...new Set(pack.scan(text).map((f) => f.rule))].sort();

const next = mulberry32(0x5eed);
const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const randomB62 = (n: number) => Array.from({ length: n }, () => B62[Math.floor(next() * 62)]).join("");

describe("BIP-39 wordlist", () => {
  test("is the 2048-word English list of bitcoin/bips (english.txt SHA-256)", () => {
    expect(BIP39_ENGLISH).toHaveLength(2048);
    expect(BIP39_INDEX.size).toBe(2048);
    const digest = createHash("sha256").update(`${BIP39_ENGLISH.join("\n")}\n`).digest("hex");
    expect(digest).toBe("2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda");
    expect(BIP39_INDEX.get("abandon")).toBe(0);
    expect(BIP39_INDEX.get("zoo")).toBe(2047);
  });
});

describe("bip39 validator", () => {
  // Trezor's reference vectors (python-mnemonic vectors.json), entropy -> mnemonic.
  const vectors: [string, string][] = [
    ["00000000000000000000000000000000", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"],
    ["7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f", "legal winner thank year wave sausage worth useful legal winner thank yellow"],
    ["80808080808080808080808080808080", "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"],
    ["ffffffffffffffffffffffffffffffff", "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong"],
    ["9e885d952ad362caeb4efe34a8e91bd2", "ozone drill grab fiber curtain grace pudding thank cruise elder eight picnic"],
    [
      "0000000000000000000000000000000000000000000000000000000000000000",
      "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art",
    ],
    ["000000000000000000000000000000000000000000000000", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon agent"],
  ];

  test("reference vectors encode and validate", () => {
    for (const [hex, phrase] of vectors) {
      expect(bip39Mnemonic(Buffer.from(hex, "hex"))).toBe(phrase);
      expect(bip39(phrase)).toBe(true);
    }
  });

  test("every length validates when generated; a changed checksum does not", () => {
    let flipped = 0;
    for (const bytes of [16, 20, 24, 28, 32]) {
      for (let k = 0; k < 20; k++) {
        const phrase = bip39Mnemonic(randomBytes(bytes));
        expect(phrase.split(" ")).toHaveLength((bytes * 8 + bytes / 4) / 11);
        expect(bip39(phrase)).toBe(true);
        // The next word differs in the lowest bit, always a checksum bit.
        const words = phrase.split(" ");
        const last = BIP39_INDEX.get(words.at(-1)!)!;
        words[words.length - 1] = BIP39_ENGLISH[last ^ 1]!;
        if (bytes === 16) expect(bip39(words.join(" "))).toBe(false);
        else if (bip39(words.join(" "))) flipped++;
      }
    }
    // Longer phrases also hold two shorter windows (two words off either end), each valid by
    // chance 1 time in 2^(n/3); over 80 phrases a few may pass, not more.
    expect(flipped).toBeLessThanOrEqual(4);
  });

  test("a phrase with label words around it is found", () => {
    const phrase = bip39Mnemonic(randomBytes(16));
    expect(bip39(`backup ${phrase} status`)).toBe(true);
    expect(bip39(`my seed phrase ${phrase} status`)).toBe(true);
    expect(bip39(`word\n${phrase.replace(/ /g, "\n")}`)).toBe(true);
  });

  test("refuses words off the list, wrong lengths and empty input", () => {
    const phrase = bip39Mnemonic(randomBytes(16)).split(" ");
    expect(bip39(phrase.slice(0, 11).join(" "))).toBe(false);
    expect(bip39([...phrase.slice(0, 11), "bitcoin"].join(" "))).toBe(false);
    expect(bip39("")).toBe(false);
    expect(() => bip39Mnemonic(new Uint8Array(15))).toThrow();
  });

  test("random picks of list words fail the checksum about 15 times in 16, also in longer runs", () => {
    let valid = 0;
    const n = 2000;
    for (let k = 0; k < n; k++) {
      const words = Array.from({ length: 12 }, () => BIP39_ENGLISH[Math.floor(next() * 2048)]);
      if (bip39(words.join(" "))) valid++;
    }
    expect(valid / n).toBeGreaterThan(0.03);
    expect(valid / n).toBeLessThan(0.1);
    // 40 list words in a row: only windows near the ends are tried, none fits a valid length.
    const run = Array.from({ length: 40 }, () => BIP39_ENGLISH[Math.floor(next() * 2048)]).join(" ");
    expect(bip39(run)).toBe(false);
  });
});

describe("discord-bot-token validator", () => {
  const id = "132025522154101356";
  const token = (first: string) => `${first}.${randomB62(6)}.${randomB62(27)}`;
  test("the first segment must be base64 of a 17-20 digit snowflake", () => {
    expect(discordBotToken(token(Buffer.from(id).toString("base64url")))).toBe(true);
    expect(discordBotToken(token(Buffer.from("95f4abc-def0-4abc").toString("base64url")))).toBe(false);
    expect(discordBotToken(token(Buffer.from("0123456789012345678").toString("base64url")))).toBe(false);
    expect(discordBotToken(token(Buffer.from("1234").toString("base64url")))).toBe(false);
    expect(discordBotToken("no-dot-at-all")).toBe(false);
  });
});

/** A fake PEM body: 64-character base64 lines of deterministic bytes. */
function pemBody(lines: number): string[] {
  return Buffer.from(randomBytes(lines * 48)).toString("base64").match(/.{1,64}/g)!;
}

describe("rule pack: cases that used to be missed", () => {
  test("private keys indented in YAML, quoted in mail, and in diffs (added or removed lines)", () => {
    const body = pemBody(6);
    const key = (prefix: string, kind: string) =>
      [`-----BEGIN ${kind}-----`, ...body, `-----END ${kind}-----`].map((l) => prefix + l).join("\n");
    for (const prefix of ["    ", "\t", "+", "-", "> "]) {
      expect({ prefix, found: rulesFound(`config:\n${key(prefix, "RSA PRIVATE KEY")}\n`) }).toEqual({ prefix, found: ["dlp.private-key-pem"] });
      expect({ prefix, found: rulesFound(key(prefix, "OPENSSH PRIVATE KEY")) }).toEqual({ prefix, found: ["dlp.openssh-private-key"] });
    }
    const pgp = (prefix: string) =>
      ["-----BEGIN PGP PRIVATE KEY BLOCK-----", "Comment: test key", "", ...body, "=abcd", "-----END PGP PRIVATE KEY BLOCK-----"].map((l) => prefix + l).join("\n");
    for (const prefix of ["", "    ", "+", "-"]) expect({ prefix, found: rulesFound(pgp(prefix)) }).toEqual({ prefix, found: ["dlp.pgp-private-key"] });
  });

  test("context rules see through escaped quotes (a dump inside a JSON string)", () => {
    const secret = `${randomB62(20)}+/${randomB62(18)}`;
    expect(rulesFound(`{"note":"AWS_SECRET_ACCESS_KEY=\\"${secret}\\""}`)).toContain("dlp.aws-secret-access-key");
    expect(rulesFound(`{"note":"db:\\n  password: \\"${randomB62(16)}\\"\\n"}`)).toEqual(["dlp.secret-assignment"]);
    const hex40 = Buffer.from(randomBytes(20)).toString("hex");
    expect(rulesFound(`{"c":"{\\"type\\": \\"service_account\\", \\"private_key_id\\": \\"${hex40}\\"}"}`)).toEqual(["dlp.gcp-service-account-key"]);
  });

  test("the value of an escaped-quote assignment stops before the backslash", () => {
    const value = randomB62(16);
    const text = `{"note":"password: \\"${value}\\""}`;
    const [f] = pack.scan(text).filter((x) => x.rule === "dlp.secret-assignment");
    expect(text.slice(f!.start, f!.end)).toBe(value);
  });

  test("token and context rules right after an escaped line break (\\n inside a JSON string)", () => {
    const pat = `npm_${randomB62(36)}`;
    expect(rulesFound(`{"env":"HOME=/home/a\\n${pat}\\n"}`)).toEqual(["dlp.npm-token"]);
    expect(rulesFound(`{"env":"A=1\\nMISTRAL_API_KEY=${randomB62(32)}\\n"}`)).toContain("dlp.mistral-api-key");
    expect(rulesFound(`{"env":"A=1\\npassword=${randomB62(20)}"}`)).toEqual(["dlp.secret-assignment"]);
  });

  test("an AWS key id right after an escaped line break, with its secret", () => {
    const id = `AKIA${Array.from({ length: 16 }, () => "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[Math.floor(next() * 32)]).join("")}`;
    const secret = `${randomB62(30)}/${randomB62(9)}`;
    expect(rulesFound(`{"out":"id:\\n${id}\\n${secret}\\n"}`)).toEqual(["dlp.aws-access-key-id", "dlp.aws-credential-pair"]);
  });
});

describe("rule pack: look-alikes that are not findings", () => {
  test("csrf, authenticity and paging tokens", () => {
    for (const name of ["csrf_token", "CSRF-TOKEN", "xsrf_token", "authenticity_token", "next_page_token", "continuation_token"]) {
      expect({ name, found: rulesFound(`${name}=${randomB62(24)}/${randomB62(19)}`) }).toEqual({ name, found: [] });
    }
    // A session token is a credential.
    expect(rulesFound(`session_token=${randomB62(32)}`)).toEqual(["dlp.secret-assignment"]);
  });

  test("GitHub- and Slack-shaped values that fail their own rule are not generic secrets", () => {
    expect(rulesFound("refresh_token=ghr_SGM9B5wCYAUOuyJH4hr92ZEavwVvdV3HXCiA")).toEqual([]);
    expect(rulesFound("SLACK_BOT_TOKEN=xoxb-your-bot-token")).toEqual([]);
  });

  test("transaction hashes and addresses next to wallet words", () => {
    const hash = `0x${Buffer.from(randomBytes(32)).toString("hex")}`;
    expect(rulesFound(`{"wallet":"w1","transactionHash":"${hash}","from":"0x${Buffer.from(randomBytes(20)).toString("hex")}"}`)).toEqual([]);
    expect(rulesFound(`private_key: ${hash}`)).toEqual(["dlp.ethereum-private-key"]);
  });

  test("wallet prose and word lists without a checksum are not seed phrases", () => {
    expect(rulesFound("Write down your recovery phrase and keep the seed words offline; never paste them into a chat window.")).toEqual([]);
    let words: string;
    do words = Array.from({ length: 12 }, () => BIP39_ENGLISH[Math.floor(next() * 2048)]).join(" ");
    while (bip39(words));
    expect(rulesFound(`seed phrase: ${words}`)).toEqual([]);
    expect(rulesFound(`seed phrase: ${bip39Mnemonic(randomBytes(16))}`)).toEqual(["dlp.bip39-seed-phrase"]);
  });
});

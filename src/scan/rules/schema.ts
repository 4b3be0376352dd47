/**
 * The shape of one detection rule as written in `rules/dlp/*.yaml` (ARCHITECTURE.md, "Rules are
 * data with their own examples"). Strict: an unknown key is a typo, and a typo in a security rule
 * must fail at load, not silently weaken the rule.
 */
import { z } from "zod";

export const SEVERITIES = ["low", "medium", "high", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** What every family's rules share. */
const common = {
  description: z.string().min(1),
  severity: z.enum(SEVERITIES),
  /** Cheap prefilter: the rule runs only when one of these occurs in the lower-cased text. */
  keywords: z.array(z.string().min(1).refine((k) => k === k.toLowerCase(), "keywords must be lower-case")).min(1),
  /** JavaScript RegExp source; the secret is the named group `secret` if present, else the match. */
  pattern: z.string().min(1),
  flags: z.enum(["i", ""]).optional(),
  /**
   * Suppressions tested against the secret: a plain string is a case-insensitive substring, a
   * string written `/source/flags` is a regular expression.
   */
  allow: z.array(z.string().min(1)).default([]),
  examples: z.strictObject({
    match: z.array(z.string().min(1)).min(1),
    no_match: z.array(z.string().min(1)).min(1),
  }),
};

export const ruleSchema = z.strictObject({
  /** Stable, kebab-case, family-prefixed (ARCHITECTURE.md, "Rule ids are stable"). */
  id: z.string().regex(/^dlp\.[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be kebab-case and start with `dlp.` (e.g. dlp.github-token)"),
  ...common,
  validator: z.enum(["luhn", "mod97", "crc32-github", "base58check", "bip39", "discord-bot-token"]).optional(),
  /** Minimum Shannon entropy of the secret, in bits per character. */
  entropy: z.number().positive().max(8).optional(),
});

/** A prompt-injection rule (`rules/injection/*.yaml`): no validator or entropy, a weight instead. */
export const injectionRuleSchema = z.strictObject({
  id: z.string().regex(/^inj\.[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be kebab-case and start with `inj.` (e.g. inj.ignore-previous-instructions)"),
  ...common,
  /** What one match adds to a response's score (injection.threshold decides; 50 by default). */
  weight: z.number().int().min(1).max(100),
});

/** An MCP tool-poisoning rule (`rules/mcp/*.yaml`): the injection rule format, `mcp.` ids. */
export const mcpRuleSchema = injectionRuleSchema.extend({
  id: z.string().regex(/^mcp\.[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be kebab-case and start with `mcp.` (e.g. mcp.instruction-tag)"),
});

export type RuleFamily = "dlp" | "inj" | "mcp";

export type Rule = z.output<typeof ruleSchema> | z.output<typeof injectionRuleSchema>;

export const rulePackSchema = z.strictObject({
  rules: z.array(z.unknown()).min(1),
});

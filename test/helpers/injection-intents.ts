/** A cue intent (rules/injection/cues/intents.yaml shape) for tests: id, weight, the classes it needs, anything else. */
export const intent = (id: string, weight: number, all: string[], extra: Record<string, unknown> = {}) => ({
  id,
  description: "t",
  severity: "high",
  weight,
  all,
  ...extra,
  examples: { match: ["x"], no_match: ["y"] },
});

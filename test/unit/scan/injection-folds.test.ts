/**
 * The fold evaluation (scripts/folds-injection.ts) trains models on some of the word model's
 * training sets: never on a held-out set, and no set in two folds.
 */
import { describe, expect, test } from "bun:test";
import { DEFAULT_FOLDS, parseFolds } from "../../../scripts/folds-injection.ts";
import { TRAINING_SETS, trainingExamples, UNSEEN } from "../../../scripts/words-model.ts";

describe("injection folds", () => {
  test("--folds reads sets by commas and folds by colons", () => {
    expect(parseFolds("holdout10, holdout11:dev10")).toEqual([["holdout10", "holdout11"], ["dev10"]]);
  });

  test("a held-out set, a set that is not trained on, a set twice or an empty fold is refused", () => {
    expect(() => parseFolds("holdout10,holdout19")).toThrow(/holdout19 is not one of the word model's training sets/);
    expect(() => parseFolds("holdout20")).toThrow(/holdout20 is not one/);
    expect(() => parseFolds("nosuchset")).toThrow(/nosuchset is not one/);
    expect(() => parseFolds("holdout10:holdout10")).toThrow(/holdout10 is in two folds/);
    expect(() => parseFolds("holdout10::dev10")).toThrow(/empty fold/);
  });

  test("the default folds are training sets, apart", () => {
    const all = DEFAULT_FOLDS.flat();
    expect(new Set(all).size).toBe(all.length);
    for (const set of all) expect(TRAINING_SETS as readonly string[]).toContain(set);
  });

  test("the trainer refuses every unseen set before reading anything", async () => {
    for (const set of UNSEEN) await expect(trainingExamples(["dev", set])).rejects.toThrow(`not on ${set} (never on an unseen set)`);
    await expect(trainingExamples(["nosuchset"])).rejects.toThrow("not on nosuchset");
  });
});

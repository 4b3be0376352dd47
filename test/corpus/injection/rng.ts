export { ALNUM, createRng, HEX, type Rng } from "../../helpers/corpus-rng.ts";
import type { Rng } from "../../helpers/corpus-rng.ts";

/**
 * The candidate used least so far, relative to its weight (ties broken by the PRNG): spreads
 * techniques and carriers evenly over the samples while every one of them is used.
 */
export function leastUsed<T>(xs: readonly T[], key: (x: T) => string, used: Map<string, number>, rng: Rng, weight: (x: T) => number = () => 1): T {
  let best: T[] = [];
  let bestScore = Infinity;
  for (const x of xs) {
    const score = (used.get(key(x)) ?? 0) / weight(x);
    if (score < bestScore - 1e-9) {
      best = [x];
      bestScore = score;
    } else if (Math.abs(score - bestScore) <= 1e-9) best.push(x);
  }
  const chosen = rng.pick(best);
  used.set(key(chosen), (used.get(key(chosen)) ?? 0) + 1);
  return chosen;
}

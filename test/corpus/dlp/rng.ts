import { mulberry32 } from "../../helpers/mulberry32.ts";

/** Seeded PRNG (mulberry32): the corpus is the same on every run, so figures are comparable. */
export interface Rng {
  next(): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chars(alphabet: string, n: number): string;
}

export function createRng(seed: number): Rng {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    pick: (xs) => xs[int(xs.length)]!,
    chars: (alphabet, n) => {
      let s = "";
      for (let i = 0; i < n; i++) s += alphabet[int(alphabet.length)];
      return s;
    },
  };
}

export const HEX = "0123456789abcdef";
export const ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const B64 = `${ALNUM}+/`;

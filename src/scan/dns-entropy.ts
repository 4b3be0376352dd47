/**
 * Shannon entropy of short strings, and what to compare it with. The entropy measured on n
 * characters is biased low for small n (32 random base32 characters show ~4.2 bits per
 * character, not 5), so a fixed threshold either misses short random strings or flags long
 * readable ones. The detector compares instead against the entropy *expected* of random base32
 * text of the same length, computed exactly here once at load.
 */

/** Longest string the table covers: a DNS name is at most 253 characters (RFC 1035 §2.3.4). */
export const MAX_ENTROPY_LENGTH = 256;

/**
 * EXPECTED_BASE32[n]: expected plug-in Shannon entropy (bits per character) of n characters drawn
 * uniformly from a 32-symbol alphabet. Base32 is the reference because it is the smallest
 * alphabet a tunnel uses besides hex (which has its own rule): random text in any larger
 * alphabet (base36, lower-cased base64url) only scores higher.
 *
 * E[H] = log2 n - (k / n) * sum_j P(c = j) * j * log2 j, with c ~ Binomial(n, 1/k), k = 32.
 */
export const EXPECTED_BASE32: Float64Array = expectedEntropyTable(32, MAX_ENTROPY_LENGTH);

function expectedEntropyTable(k: number, maxN: number): Float64Array {
  const table = new Float64Array(maxN + 1);
  const logFactorial = new Float64Array(maxN + 1);
  for (let i = 2; i <= maxN; i++) logFactorial[i] = logFactorial[i - 1]! + Math.log(i);
  const p = 1 / k;
  for (let n = 1; n <= maxN; n++) {
    let sum = 0;
    for (let j = 2; j <= n; j++) {
      const logP = logFactorial[n]! - logFactorial[j]! - logFactorial[n - j]! + j * Math.log(p) + (n - j) * Math.log(1 - p);
      sum += Math.exp(logP) * j * Math.log2(j);
    }
    table[n] = Math.log2(n) - (k / n) * sum;
  }
  return table;
}

/** Entropy in bits per character from symbol counts `counts[0, symbols)` totalling `n`. */
export function entropyOfCounts(counts: Uint16Array, symbols: number, n: number): number {
  if (n <= 1) return 0;
  let h = 0;
  for (let i = 0; i < symbols; i++) {
    const c = counts[i]!;
    if (c > 0) {
      const p = c / n;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

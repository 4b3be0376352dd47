/**
 * Whether a text is all ASCII (one UTF-8 byte per character, counted natively). Several passes
 * of one scan ask it of the same text (the class runs, the normalised reading, the keyword
 * automata), so the last answer is kept: comparing the same string object is immediate.
 */
let lastText: string | null = null;
let lastAnswer = false;

export function isAscii(text: string): boolean {
  if (text === lastText) return lastAnswer;
  lastAnswer = Buffer.byteLength(text, "utf8") === text.length;
  lastText = text;
  return lastAnswer;
}

/**
 * Most runs of characters beyond ASCII a text has for testBeyondAscii to test them one by one;
 * a text with more (Russian, a page of names) is tested whole.
 */
const FEW_RUNS = 32;
let runsText: string | null = null;
let lastRuns: number[] | null = null;

/**
 * Where `text` is beyond ASCII, as start and end pairs; null when that is more than FEW_RUNS
 * runs. Found by halving: a part whose UTF-8 length is its length is ASCII throughout, and that
 * is counted natively, tens of times faster than a loop or an expression reads the characters.
 * Kept for the last text.
 */
export function wideRuns(text: string): readonly number[] | null {
  if (text === runsText) return lastRuns;
  const runs: number[] = [];
  const many = !wideIn(text, 0, text.length, runs);
  runsText = text;
  lastRuns = many ? null : runs;
  return lastRuns;
}

/** Adds the runs beyond ASCII of `text[start, end)` to `runs` (joining one that goes on from the last); false once they are more than FEW_RUNS. */
function wideIn(text: string, start: number, end: number, runs: number[]): boolean {
  if (Buffer.byteLength(text.slice(start, end), "utf8") === end - start) return true;
  if (end - start <= 16) {
    for (let i = start; i < end; i++) {
      if (text.charCodeAt(i) < 128) continue;
      if (runs.length > 0 && runs[runs.length - 1] === i) runs[runs.length - 1] = i + 1;
      else if (runs.length === 2 * FEW_RUNS) return false;
      else runs.push(i, i + 1);
    }
    return true;
  }
  const middle = (start + end) >> 1;
  return wideIn(text, start, middle, runs) && wideIn(text, middle, end, runs);
}

/**
 * Whether `pattern` (not global: it keeps no lastIndex) matches in `text`, where every match
 * holds a character beyond ASCII and reaches at most `reach` characters on either side of the
 * run it is in: on a mostly ASCII text (a page with a © in it) only those runs are searched,
 * not the whole text for each of the characters the readings look for.
 */
export function testBeyondAscii(text: string, pattern: RegExp, reach = 0): boolean {
  if (isAscii(text)) return false;
  const runs = wideRuns(text);
  if (runs === null) return pattern.test(text);
  for (let k = 0; k < runs.length; k += 2) if (pattern.test(text.slice(Math.max(0, runs[k]! - reach), runs[k + 1]! + reach))) return true;
  return false;
}

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

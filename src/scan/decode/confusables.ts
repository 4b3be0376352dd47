/**
 * Look-alikes folded to ASCII after NFKC: a subset of Unicode's confusables.txt (UTS #39,
 * https://www.unicode.org/Public/security/latest/confusables.txt), the entries whose prototype is
 * a single ASCII letter or digit and whose source is Cyrillic, Greek, Armenian or a Latin
 * variant letter that NFKC leaves alone. Full-width forms, mathematical alphanumerics, circled and
 * other compatibility characters need no entry: NFKC already maps them to ASCII.
 */
export const CONFUSABLES: ReadonlyMap<string, string> = new Map<string, string>([
  // Cyrillic lower case
  ["\u0430", "a"], ["\u0435", "e"], ["\u043a", "k"], ["\u043e", "o"], ["\u0440", "p"],
  ["\u0441", "c"], ["\u0443", "y"], ["\u0445", "x"], ["\u0455", "s"], ["\u0456", "i"], ["\u0458", "j"],
  ["\u04bb", "h"], ["\u0501", "d"], ["\u051b", "q"], ["\u051d", "w"], ["\u0461", "w"], ["\u04cf", "l"],
  // Cyrillic upper case
  ["\u0410", "A"], ["\u0412", "B"], ["\u0415", "E"], ["\u041a", "K"], ["\u041c", "M"], ["\u041d", "H"],
  ["\u041e", "O"], ["\u0420", "P"], ["\u0421", "C"], ["\u0422", "T"], ["\u0423", "Y"], ["\u0425", "X"],
  ["\u0405", "S"], ["\u0406", "I"], ["\u0408", "J"], ["\u04ae", "Y"], ["\u04c0", "l"], ["\u050c", "G"],
  ["\u051a", "Q"], ["\u051c", "W"],
  // Greek upper case
  ["\u0391", "A"], ["\u0392", "B"], ["\u0395", "E"], ["\u0396", "Z"], ["\u0397", "H"], ["\u0399", "I"],
  ["\u039a", "K"], ["\u039c", "M"], ["\u039d", "N"], ["\u039f", "O"], ["\u03a1", "P"], ["\u03a4", "T"],
  ["\u03a5", "Y"], ["\u03a7", "X"],
  // Greek lower case
  ["\u03b1", "a"], ["\u03b9", "i"], ["\u03ba", "k"], ["\u03bd", "v"], ["\u03bf", "o"], ["\u03c1", "p"],
  ["\u03c3", "o"], ["\u03c5", "u"], ["\u03b3", "y"],
  // Armenian
  ["\u0585", "o"], ["\u0578", "n"], ["\u057d", "u"], ["\u0561", "w"], ["\u0570", "h"], ["\u0566", "q"],
  // Latin variants NFKC keeps
  ["\u0131", "i"], ["\u0237", "j"], ["\u0269", "i"], ["\u0261", "g"], ["\u01c0", "l"], ["\u0251", "a"],
]);

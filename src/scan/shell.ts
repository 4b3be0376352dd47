/**
 * The readings of a command-line argument that a shell would act on (MCP argument rules,
 * rules/mcp-args). An agent's exec tool runs its argument through a shell, and a shell undoes
 * quoting, expands variables, runs substitutions and decodes what it is told to: `r""m -r'f' /`
 * is `rm -rf /` to bash, but not to a pattern. Each reading undoes what a shell would, by string
 * transforms only: nothing is evaluated, no process is started, no environment is read.
 *
 * Readings, in order: the text as written; every transform below, repeated while the text
 * changes (ROUNDS); quotes and backslashes removed only; every transform but brace expansion
 * (an expansion can garble text that was never shell, e.g. code); each decoded base64 payload
 * alone. One round applies, in this order:
 *
 * 1. ANSI-C quoting `$'\x63at'` decoded (bash(1), QUOTING), `$"..."` read as `"..."`;
 * 2. backticks read as `$( )` (they are the old form of command substitution);
 * 3. variables: `$IFS` / `${IFS}` as a space, positional parameters (`$@`, `$*`, `$1`...`$9`) as
 *    nothing and `$0` as `sh` (what they are under `sh -c`), `$HOME` / `${HOME}` as `~`, and
 *    variables assigned earlier in the same text, with slicing `${a:0:2}`, defaults `${x:-c}`,
 *    replacement `${a//x/}`, prefix / suffix removal `${a#x}` and case `${a^^}` (bash(1),
 *    Parameter Expansion). `${PATH:0:1}`-style slices of PATH, HOME and SHELL use typical values;
 * 4. command substitutions `$( )` whose command only prints: `printf`, `echo`, here-strings
 *    (`base64 -d <<< X`), piped through `base64 -d` / `openssl base64 -d`, `xxd -r -p`, `rev`,
 *    `tr` (rot13) or `cat`, replaced by what they print; any other command is kept as written;
 * 5. pipelines: such a printing pipeline piped into a shell (`echo X | base64 -d | sh`) becomes
 *    the command it runs; a decoding pipeline not piped to a shell becomes what it decodes;
 * 6. brace expansion `{cat,/etc/passwd}` → `cat /etc/passwd`, `/etc/{passwd,shadow}`;
 * 7. quote removal and backslash escapes, then runs of blanks as one space.
 *
 * Not handled (the text stays as written there): pathname globbing (`/???/c?t`), a custom IFS
 * (`IFS=,;`), arithmetic (`$((...))`), variables assigned after their use, in loops or through
 * `read`, `declare -n` and functions or aliases, environment variables other than the ones above,
 * `${#x}` and `${x@Q}`-style transforms, sequence braces (`{1..9}`) and nested braces, subshell
 * groups `( ... ) | sh`, here-documents, redirections inside printing commands, substitutions
 * whose command is anything but the printing ones above (curl, python -c, awk, ...), `tr` with
 * classes (`[:upper:]`), decoders other than base64 / hex / rev / tr, other shells' syntax
 * (PowerShell `-EncodedCommand`, cmd.exe `^` escapes), and unicode look-alikes.
 *
 * Bounds: at most MAX_SHELL_READINGS readings; each derived reading is at most READING_GROWTH
 * times the input and at most MAX_READING_CHARS (a longer one keeps the part that differs from
 * the input, then its start); every transform is linear in its input or capped (passes,
 * assignments, words, brace lists), so a megabyte or a thousand nested `$(` stays cheap.
 */

export const MAX_SHELL_READINGS = 8;
export const MAX_READING_CHARS = 64 * 1024;
export const READING_GROWTH = 4;

/** Rounds of every transform: a decoded payload may be obfuscated again, once or twice. */
const ROUNDS = 4;
/** Passes of innermost-first command substitution per round: nesting deeper is left as written. */
const SUBSTITUTION_PASSES = 16;
const MAX_ASSIGNMENTS = 64;
/** Longest variable value or substitution body handled. */
const MAX_VALUE = 4096;
/** Longest output of a printing command, and input of a decoder (a base64 script of ~48 KiB). */
const MAX_OUTPUT = 64 * 1024;
const MAX_WORDS = 64;
const MAX_STAGES = 6;
const MAX_BRACE_ITEMS = 32;
const MAX_BRACE_EXPANSIONS = 256;
const MAX_PAYLOADS = 4;
/** Characters kept around the changed part of a reading longer than MAX_READING_CHARS. */
const CONTEXT = 256;
/** `printf '%99999s'` must not build a megabyte; widths past this are clamped. */
const MAX_WIDTH = 64;
/** Format reuse in printf (it repeats the format while arguments remain). */
const MAX_PRINTF_REPEATS = 64;
/**
 * A glob operator (`${a//x?y/}`) tests cuts of the value (quadratic in it, each test backtracking
 * over the stars): longer values, or more stars, are left as written.
 */
const MAX_GLOB_VALUE = 128;
/** Glob tests one shellReadings call may make in all (a value is tried cut by cut): past it, patterns stay unexpanded. */
const GLOB_TEST_BUDGET = 20_000;
let globTestsLeft = GLOB_TEST_BUDGET;
const MAX_GLOB_STARS = 2;

/** Nothing a shell would transform: no quote, escape, expansion, substitution, brace or pipe. */
const SHELL_SYNTAX = /[\\'"$`{|]/;

/** The text and the readings a shell would act on; the text first, no two equal. */
export function shellReadings(text: string): string[] {
  globTestsLeft = GLOB_TEST_BUDGET;
  const readings = [text];
  if (text.length === 0 || !SHELL_SYNTAX.test(text)) return readings;
  const limit = Math.min(READING_GROWTH * text.length, MAX_READING_CHARS);
  const stepLimit = READING_GROWTH * text.length;
  const seen = new Set([text]);
  const add = (reading: string) => {
    if (readings.length >= MAX_SHELL_READINGS || reading === text) return;
    // Blanks at the ends are what a replaced pipeline leaves; they change nothing a rule reads.
    let r = reading.length > limit ? changedPart(text, reading) : reading.trim();
    if (r.length > limit) r = r.slice(0, limit);
    if (r.length === 0 || seen.has(r)) return;
    seen.add(r);
    readings.push(r);
  };
  const payloads: string[] = [];
  add(deobfuscate(text, stepLimit, true, payloads));
  add(collapseBlanks(removeQuotes(text)));
  if (text.includes("{")) add(deobfuscate(text, stepLimit, false, []));
  for (const p of payloads.slice(0, MAX_PAYLOADS)) add(deobfuscate(p, Math.max(stepLimit, READING_GROWTH * p.length), true, []));
  return readings;
}

function deobfuscate(text: string, cap: number, braces: boolean, payloads: string[]): string {
  const clip = (s: string) => (s.length > cap ? s.slice(0, cap) : s);
  let cur = text;
  for (let round = 0; round < ROUNDS; round++) {
    let next = clip(decodeAnsiC(cur));
    next = clip(backticksAsSubstitution(next));
    next = clip(expandVariables(next));
    next = clip(substituteCommands(next, payloads));
    next = clip(runPipelines(next, payloads));
    if (braces) next = clip(expandBraces(next));
    next = clip(collapseBlanks(removeQuotes(next)));
    if (next === cur) break;
    cur = next;
  }
  return cur;
}

/** `reading` less what it shares with `source` at each end, with CONTEXT characters around. */
function changedPart(source: string, reading: string): string {
  const max = Math.min(source.length, reading.length);
  let head = 0;
  while (head < max && source.charCodeAt(head) === reading.charCodeAt(head)) head++;
  let tail = 0;
  while (tail < max - head && source.charCodeAt(source.length - 1 - tail) === reading.charCodeAt(reading.length - 1 - tail)) tail++;
  return reading.slice(Math.max(0, head - CONTEXT), reading.length - Math.max(0, tail - CONTEXT));
}

const collapseBlanks = (s: string): string => s.replace(/[ \t]{2,}/g, " ");

// ---------------------------------------------------------------------------------------------
// Quoting (bash(1), QUOTING)

/**
 * Quote removal: single quotes keep everything literal; inside double quotes a backslash escapes
 * only `$`, backtick, `"`, `\` and newline; outside quotes it escapes any character, and
 * backslash-newline is a line continuation. An unterminated quote runs to the end.
 */
export function removeQuotes(text: string): string {
  if (!/[\\'"]/.test(text)) return text;
  let out = "";
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quote === "'") {
      if (c === "'") quote = "";
      else out += c;
    } else if (c === "\\") {
      const n = text.charAt(i + 1);
      if (n === "") out += c;
      else if (n === "\n") i++;
      else if (quote === "" || "$`\"\\".includes(n)) {
        out += n;
        i++;
      } else out += c;
    } else if (c === '"') quote = quote === '"' ? "" : '"';
    else if (c === "'" && quote === "") quote = "'";
    else out += c;
  }
  return out;
}

type EscapeStyle = "ansi" | "printf" | "echo";
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { n: "\n", t: "\t", r: "\r", a: "\x07", b: "\b", f: "\f", v: "\v", e: "\x1b", E: "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?" };

/**
 * Backslash escapes as `$'...'`, printf's format and `%b`, and `echo -e` read them: `\xHH`,
 * `\uHHHH`, `\UHHHHHHHH`, octal (`\NNN` in ANSI-C and printf formats, `\0NNN` for echo and %b),
 * `\cX` control characters (ANSI-C) and the one-letter ones.
 */
function decodeEscapes(s: string, style: EscapeStyle): string {
  if (!s.includes("\\")) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    const n = s.charAt(i + 1);
    if (c !== "\\" || n === "") {
      out += c;
      continue;
    }
    i++;
    const simple = SIMPLE_ESCAPES[n];
    if (simple !== undefined && !(style === "echo" && (n === "'" || n === '"' || n === "?"))) {
      out += simple;
      continue;
    }
    const hex = (digits: number) => /^[0-9a-fA-F]+/.exec(s.slice(i + 1, i + 1 + digits))?.[0];
    if (n === "x" || n === "u" || n === "U") {
      const h = hex(n === "x" ? 2 : n === "u" ? 4 : 8);
      const code = h === undefined ? -1 : parseInt(h, 16);
      if (h === undefined || code > 0x10ffff) out += `\\${n}`;
      else {
        out += String.fromCodePoint(code);
        i += h.length;
      }
    } else if (n === "c" && style === "ansi" && i + 1 < s.length) {
      out += String.fromCharCode(s.charCodeAt(i + 1) & 0x1f);
      i++;
    } else if (n >= "0" && n <= "7") {
      // echo and %b spell octal `\0NNN`; ANSI-C and printf formats `\NNN`.
      const from = style === "echo" ? (n === "0" ? i + 1 : -1) : i;
      if (from < 0) out += `\\${n}`;
      else {
        const oct = /^[0-7]{0,3}/.exec(s.slice(from, from + 3))![0];
        out += String.fromCharCode(parseInt(oct === "" ? "0" : oct, 8) & 0xff);
        i = from + oct.length - 1;
      }
    } else out += `\\${n}`;
  }
  return out;
}

const ANSI_C = /\$'((?:[^'\\]|\\[\s\S]){0,4096})'/g;

/** `$'\x63at'` as `'cat'`: decoded, then single-quoted so that quote removal keeps it literal. */
function decodeAnsiC(text: string): string {
  if (!text.includes("$'") && !text.includes('$"')) return text;
  return text.replace(ANSI_C, (_, body: string) => `'${decodeEscapes(body, "ansi").replace(/'/g, "'\\''")}'`).replace(/\$"/g, '"');
}

const BACKTICKS = /`([^`]{0,4096})`/g;

function backticksAsSubstitution(text: string): string {
  return text.includes("`") ? text.replace(BACKTICKS, (_, body: string) => `$(${body})`) : text;
}

// ---------------------------------------------------------------------------------------------
// Words

const isBlank = (c: string): boolean => c === " " || c === "\t" || c === "\n" || c === "\r";
/** Unquoted characters that end a word (bash(1), DEFINITIONS: metacharacters). */
const isMeta = (c: string): boolean => isBlank(c) || c === "|" || c === "&" || c === ";" || c === "(" || c === ")" || c === "<" || c === ">";

/** The index of the bracket closing the one at `open` (nesting counted, quotes not), or -1. */
function closing(s: string, open: number, left: string, right: string): number {
  let depth = 0;
  for (let i = open; i < s.length && i - open <= MAX_VALUE; i++) {
    const c = s.charAt(i);
    if (c === left) depth++;
    else if (c === right && --depth === 0) return i;
  }
  return -1;
}

/**
 * The shell word starting at `start`: its value with quotes removed and where it ends. `$( )`
 * and `${ }` are part of the word, blanks inside them included (their text is kept as is).
 */
function scanWord(s: string, start: number): { value: string; end: number } {
  let value = "";
  let i = start;
  while (i < s.length) {
    const c = s.charAt(i);
    if (isMeta(c)) break;
    if (c === "'") {
      const close = s.indexOf("'", i + 1);
      const end = close < 0 ? s.length : close;
      value += s.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      while (j < s.length && s.charAt(j) !== '"') {
        if (s.charAt(j) === "\\" && "$`\"\\".includes(s.charAt(j + 1)) && j + 1 < s.length) j++;
        value += s.charAt(j);
        j++;
      }
      i = j + 1;
    } else if (c === "\\") {
      value += s.charAt(i + 1);
      i += 2;
    } else if (c === "$" && (s.charAt(i + 1) === "(" || s.charAt(i + 1) === "{")) {
      const open = s.charAt(i + 1);
      const close = closing(s, i + 1, open, open === "(" ? ")" : "}");
      const end = close < 0 ? s.length : close + 1;
      value += s.slice(i, end);
      i = end;
    } else {
      value += c;
      i++;
    }
  }
  return { value, end: Math.min(i, s.length) };
}

/** A simple command's words (quotes removed; `<<<` a word of its own), or null for anything more. */
function splitWords(s: string): string[] | null {
  const words: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && isBlank(s.charAt(i))) i++;
    if (i >= s.length) break;
    if (s.startsWith("<<<", i)) {
      words.push("<<<");
      i += 3;
      continue;
    }
    if (isMeta(s.charAt(i))) return null;
    const w = scanWord(s, i);
    words.push(w.value);
    i = w.end;
    if (words.length > MAX_WORDS) return null;
  }
  return words.length > 0 ? words : null;
}

/**
 * Calls `visit` with each character outside quotes and outside `( )`, and its index; a true
 * return stops the walk.
 */
function walkTopLevel(s: string, visit: (c: string, i: number) => boolean | void): void {
  let quote = "";
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if (quote === "'") {
      if (c === "'") quote = "";
    } else if (c === "\\") i++;
    else if (quote === '"') {
      if (c === '"') quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "(") depth++;
    else if (c === ")") depth = Math.max(0, depth - 1);
    else if (depth === 0 && visit(c, i) === true) return;
  }
}

/** The stages of a pipeline, or null when the text is more than one pipeline (`;`, `&`, newline). */
function splitPipeline(s: string): string[] | null {
  const stages: string[] = [];
  let from = 0;
  let simple = true;
  walkTopLevel(s, (c, i) => {
    if (c === ";" || c === "\n" || (c === "&" && s.charAt(i - 1) !== ">" && s.charAt(i + 1) !== ">")) {
      simple = false;
      return true;
    }
    if (c === "|" && s.charAt(i + 1) !== "|" && s.charAt(i - 1) !== "|") {
      stages.push(s.slice(from, i));
      from = i + 1;
    } else if (c === "|") simple = false;
    return undefined;
  });
  if (!simple) return null;
  stages.push(s.slice(from));
  return stages;
}

/** [start, end) of each command list element: split at `;`, `&&`, `||`, `&` and newlines. */
function splitStatements(s: string): [number, number][] {
  const out: [number, number][] = [];
  let from = 0;
  walkTopLevel(s, (c, i) => {
    const pair = (c === "&" || c === "|") && s.charAt(i + 1) === c;
    const single = c === ";" || c === "\n" || (c === "&" && s.charAt(i - 1) !== ">" && s.charAt(i - 1) !== "&" && s.charAt(i + 1) !== ">");
    if (pair || single) {
      out.push([from, i]);
      from = pair ? i + 2 : i + 1;
    }
  });
  out.push([from, s.length]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parameter expansion (bash(1), Parameter Expansion)

/** Under `sh -c CMD`, with no arguments: $0 is the shell, the positional parameters are unset. */
const SPECIAL: Readonly<Record<string, string>> = { IFS: " ", "@": "", "*": "", "0": "sh", "1": "", "2": "", "3": "", "4": "", "5": "", "6": "", "7": "", "8": "", "9": "" };
/** Typical values, used only where the text slices or edits them (`${PATH:0:1}` is `/`). */
const TYPICAL: Readonly<Record<string, string>> = { HOME: "/root", PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", SHELL: "/bin/bash" };

const ASSIGNMENT = /(?<![^\s;&|({])([A-Za-z_][A-Za-z0-9_]{0,63})(\+?)=/g;
const REFERENCE = /\$\{(!?)([A-Za-z_][A-Za-z0-9_]{0,63}|[@*0-9])([^{}$]{0,256})\}|\$([A-Za-z_][A-Za-z0-9_]{0,63}|[@*0-9])/g;

type Lookup = (name: string, at: number) => string | undefined;

function expandVariables(text: string): string {
  if (!text.includes("$")) return text;
  const assigned = collectAssignments(text);
  const lookup: Lookup = (name, at) => {
    const list = assigned.get(name);
    if (list !== undefined) for (let j = list.length - 1; j >= 0; j--) if (list[j]!.at < at) return list[j]!.value;
    return undefined;
  };
  return expandReferences(text, lookup, 0);
}

/** Every reference in `text` that can be resolved, replaced; `base` is text's offset for lookups. */
function expandReferences(text: string, lookup: Lookup, base: number): string {
  return text.replace(REFERENCE, (whole: string, bang: string | undefined, braced: string | undefined, op: string | undefined, plain: string | undefined, offset: number) => {
    const at = base + offset;
    if (plain !== undefined) {
      const value = lookup(plain, at);
      if (value !== undefined) return value;
      if (plain === "HOME") return "~";
      return SPECIAL[plain] ?? whole;
    }
    const name = braced!;
    let value = lookup(name, at);
    if (bang === "!") {
      // ${!x}: the variable named by x's value.
      if (value === undefined || op !== "" || !/^[A-Za-z_]\w{0,63}$/.test(value)) return whole;
      value = lookup(value, at) ?? SPECIAL[value];
      return value ?? whole;
    }
    if (op === "" && value === undefined) return name === "HOME" ? "~" : SPECIAL[name] ?? whole;
    value ??= SPECIAL[name] ?? TYPICAL[name];
    return applyOperator(value, op ?? "") ?? whole;
  });
}

/**
 * Assignments `name=value` at the start of a command (after a blank or `;&|({`), in text order,
 * with references in the value expanded as of that point. A value holding a substitution is
 * left out until a later round has replaced it.
 */
function collectAssignments(text: string): Map<string, { at: number; value: string }[]> {
  const out = new Map<string, { at: number; value: string }[]>();
  const lookup: Lookup = (name, at) => {
    const list = out.get(name);
    if (list !== undefined) for (let j = list.length - 1; j >= 0; j--) if (list[j]!.at < at) return list[j]!.value;
    return undefined;
  };
  ASSIGNMENT.lastIndex = 0;
  let count = 0;
  for (let m = ASSIGNMENT.exec(text); m !== null && count < MAX_ASSIGNMENTS; m = ASSIGNMENT.exec(text)) {
    const start = m.index + m[0].length;
    const word = scanWord(text, start);
    ASSIGNMENT.lastIndex = Math.max(word.end, start);
    const raw = text.slice(start, word.end);
    if (raw.includes("$(") || raw.includes("`") || raw.length > MAX_VALUE) continue;
    const value = removeQuotes(expandReferences(raw, lookup, start));
    if (value.includes("${")) continue;
    const name = m[1]!;
    const list = out.get(name) ?? [];
    const previous = m[2] === "+" ? lookup(name, m.index) ?? "" : "";
    list.push({ at: m.index, value: (previous + value).slice(0, MAX_VALUE) });
    out.set(name, list);
    count++;
  }
  return out;
}

/**
 * One `${name<op>}` operator on `value` (undefined: unset), or undefined when it is not one
 * handled here (the reference is then kept as written).
 */
function applyOperator(value: string | undefined, op: string): string | undefined {
  if (op === "") return value;
  // ${x:-word}, ${x-word}, ${x:=word}, ${x:+word}: an unknown variable reads as unset.
  const dflt = /^(:?)([-=+])([\s\S]*)$/.exec(op);
  if (dflt !== null) {
    const set = value !== undefined && (dflt[1] === "" || value !== "");
    if (dflt[2] === "+") return set ? dflt[3]! : "";
    return set ? value : dflt[3]!;
  }
  if (value === undefined) return undefined;
  // ${x:offset} and ${x:offset:length}; a negative offset needs a blank or parentheses.
  const slice = /^:(?:\s{1,3}|\(\s{0,3})?(-?\d{1,6})\s{0,3}\)?(?::\s{0,3}(-?\d{1,6}))?$/.exec(op);
  if (slice !== null) {
    const off = Number(slice[1]);
    const from = off < 0 ? Math.max(0, value.length + off) : Math.min(off, value.length);
    if (slice[2] === undefined) return value.slice(from);
    const len = Number(slice[2]);
    const to = len < 0 ? value.length + len : from + len;
    return to <= from ? "" : value.slice(from, to);
  }
  if (op === "^^") return value.toUpperCase();
  if (op === ",,") return value.toLowerCase();
  if (op === "^") return value.charAt(0).toUpperCase() + value.slice(1);
  if (op === ",") return value.charAt(0).toLowerCase() + value.slice(1);
  const replace = /^\/([\/#%]?)([^\/]{1,128})(?:\/([\s\S]{0,256}))?$/.exec(op);
  if (replace !== null) return replacePattern(value, replace[1]!, replace[2]!, replace[3] ?? "");
  const remove = /^(##?|%%?)([\s\S]{1,128})$/.exec(op);
  if (remove !== null) return removePattern(value, remove[1]!, remove[2]!);
  return undefined;
}

/**
 * A glob (`*`, `?`, literal otherwise) as a test of a whole string, or null when it has more
 * than MAX_GLOB_STARS stars (each cut of a value is tested; more stars would backtrack more).
 */
function globTest(glob: string): ((s: string) => boolean) | null {
  if (!/[*?]/.test(glob)) return (s) => s === glob;
  if ((glob.match(/\*/g)?.length ?? 0) > MAX_GLOB_STARS) return null;
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[\\s\\S]*").replace(/\?/g, "[\\s\\S]");
  const re = new RegExp(`^(?:${body})$`);
  return (s) => globTestsLeft-- > 0 && re.test(s);
}

/**
 * ${x/p/r} (first match), ${x//p/r} (every match), ${x/#p/r} (at the start), ${x/%p/r} (at the
 * end); the longest match at the leftmost place, as bash does. A literal pattern (the usual
 * `${a//x/}` obfuscation) is a split; a glob is tried on every cut of a short value only.
 */
function replacePattern(value: string, mode: string, pattern: string, replacement: string): string | undefined {
  if (!/[*?]/.test(pattern)) {
    if (mode === "/") return value.split(pattern).join(replacement);
    if (mode === "#") return value.startsWith(pattern) ? replacement + value.slice(pattern.length) : value;
    if (mode === "%") return value.endsWith(pattern) ? value.slice(0, value.length - pattern.length) + replacement : value;
    return value.replace(pattern, () => replacement);
  }
  const test = globTest(pattern);
  if (test === null || value.length > MAX_GLOB_VALUE || globTestsLeft <= 0) return undefined;
  const n = value.length;
  if (mode === "#") {
    for (let end = n; end > 0; end--) if (test(value.slice(0, end))) return replacement + value.slice(end);
    return value;
  }
  if (mode === "%") {
    for (let start = 0; start < n; start++) if (test(value.slice(start))) return value.slice(0, start) + replacement;
    return value;
  }
  let out = "";
  let i = 0;
  while (i < n) {
    let matched = -1;
    for (let end = n; end > i && matched < 0; end--) if (test(value.slice(i, end))) matched = end;
    if (matched < 0) {
      out += value.charAt(i++);
      continue;
    }
    out += replacement;
    i = matched;
    if (mode !== "/") return out + value.slice(i);
  }
  return out;
}

/** ${x#p} / ${x##p}: shortest / longest matching prefix removed; ${x%p} / ${x%%p}: suffix. */
function removePattern(value: string, mode: string, pattern: string): string | undefined {
  const test = globTest(pattern);
  if (test === null || (value.length > MAX_GLOB_VALUE && /[*?]/.test(pattern))) return undefined;
  const n = value.length;
  for (let k = 0; k <= n; k++) {
    const len = mode === "#" || mode === "%" ? k : n - k;
    if (mode.startsWith("#") ? test(value.slice(0, len)) : test(value.slice(n - len))) return mode.startsWith("#") ? value.slice(len) : value.slice(0, n - len);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Printing commands, decoders, substitutions and pipelines

const SUBSTITUTION = /\$\(([^()]{0,4096})\)/g;

/** Innermost `$( )` first, replaced by what its command prints when that command only prints. */
function substituteCommands(text: string, payloads: string[]): string {
  let cur = text;
  for (let pass = 0; pass < SUBSTITUTION_PASSES && cur.includes("$("); pass++) {
    const next = cur.replace(SUBSTITUTION, (whole: string, inner: string) => {
      const out = inner.trim() === "" ? null : outputOf(inner, payloads);
      // A substitution drops the trailing newlines of its output (bash(1), Command Substitution),
      // and its output is not parsed again for quotes or escapes: escaped here, so that quote
      // removal gives it back as printed, in or out of double quotes.
      return out === null ? whole : out.replace(/\n+$/, "").replace(/[\\"$`]/g, "\\$&");
    });
    if (next === cur) break;
    cur = next;
  }
  return cur;
}

/** What a printing pipeline prints, or null when any stage is not one handled here. */
function outputOf(command: string, payloads: string[]): string | null {
  const stages = splitPipeline(command);
  if (stages === null || stages.length > MAX_STAGES) return null;
  let out = produce(stages[0]!, payloads);
  for (let k = 1; k < stages.length && out !== null; k++) out = filter(stages[k]!, out, payloads);
  return out;
}

/** A stage that runs its input as a script: sh, bash, ... with flags only, maybe under sudo. */
const SHELL_STAGE = /^\s{0,8}(?:sudo\s{1,3}(?:-[\w-]{1,16}\s{1,3}){0,3})?(?:[\w./-]{0,64}\/)?(?:ba|z|da|k|fi|a)?sh(?:\s{1,3}-[a-zA-Z]{1,3}){0,4}(?:\s{1,3}--?)?\s{0,8}$/;
/** A first stage run through `sh -c` or `eval` after quote removal: the producer follows it. */
const LEAD = /^\s{0,8}(?:(?:[\w./-]{0,64}\/)?(?:ba|z|da|k)?sh\s{1,3}-c\s{1,3}|eval\s{1,3})/;
/** A redirection at the end of the last decoding stage (`base64 -d > /tmp/x`), kept after it. */
const REDIRECT_TAIL = /\s(?:\d?>>?|&>>?)\s{0,3}[^\s|;&]{1,1024}\s{0,8}$/;

/** Each pipeline that prints into a shell, or decodes, replaced by what it runs or decodes. */
function runPipelines(text: string, payloads: string[]): string {
  if (!text.includes("|")) return text;
  let out = "";
  let last = 0;
  let changed = false;
  for (const [start, end] of splitStatements(text)) {
    const statement = text.slice(start, end);
    if (!statement.includes("|")) continue;
    const reading = pipelineReading(statement, payloads);
    if (reading === null) continue;
    out += text.slice(last, start) + reading;
    last = end;
    changed = true;
  }
  return changed ? out + text.slice(last) : text;
}

function pipelineReading(statement: string, payloads: string[]): string | null {
  const stages = splitPipeline(statement);
  if (stages === null || stages.length < 2 || stages.length > MAX_STAGES) return null;
  const first = stages[0]!;
  const lead = LEAD.exec(first)?.[0] ?? "";
  let out = produce(first.slice(lead.length), payloads);
  if (out === null) return null;
  let k = 1;
  let tail = "";
  for (; k < stages.length; k++) {
    let stage = stages[k]!;
    const redirect = k === stages.length - 1 ? REDIRECT_TAIL.exec(stage) : null;
    if (redirect !== null) stage = stage.slice(0, redirect.index);
    const next = filter(stage, out, payloads);
    if (next === null) break;
    out = next;
    if (redirect !== null) tail = redirect[0];
  }
  const rest = stages.slice(k);
  const leading = ` ${lead.trimStart()}`;
  if (rest.length > 0 && SHELL_STAGE.test(rest[0]!)) return `${leading}${out.trim()}${rest.length > 1 ? ` |${rest.slice(1).join("|")}` : ""}`;
  if (k === 1) return null;
  return `${leading}${out.trim()}${tail}${rest.length > 0 ? ` |${rest.join("|")}` : ""}`;
}

/** What the first stage of a pipeline prints: echo, printf, or a filter fed by a here-string. */
function produce(stage: string, payloads: string[]): string | null {
  const words = splitWords(stage);
  if (words === null) return null;
  const here = words.indexOf("<<<");
  if (here > 0) {
    const input = words[here + 1];
    if (input === undefined || words.length !== here + 2) return null;
    return filterWords(words.slice(0, here), `${input.slice(0, MAX_OUTPUT)}\n`, payloads);
  }
  const args = words.slice(1);
  if (words[0] === "echo") return echo(args);
  if (words[0] === "printf") return printf(args);
  return null;
}

function filter(stage: string, input: string, payloads: string[]): string | null {
  const words = splitWords(stage);
  return words === null ? null : filterWords(words, input, payloads);
}

const onlyFlags = (words: readonly string[]): boolean => words.every((w) => w.startsWith("-"));

/** A filter's output for `input`: base64 / hex decoders, rev, tr, cat. */
function filterWords(words: readonly string[], input: string, payloads: string[]): string | null {
  const [command, ...args] = words;
  let out: string | null = null;
  if (command === "base64" && onlyFlags(args) && args.some((a) => a === "--decode" || /^-[a-zA-Z]{0,3}[dD][a-zA-Z]{0,3}$/.test(a))) out = decodeBase64(input);
  else if (command === "openssl" && (args[0] === "base64" || (args[0] === "enc" && (args.includes("-base64") || args.includes("-a")))) && args.includes("-d") && onlyFlags(args.slice(1))) out = decodeBase64(input);
  else if (command === "xxd" && onlyFlags(args) && args.some((a) => a.includes("r")) && args.some((a) => a.includes("p"))) out = decodeHex(input);
  else if (command === "rev" && args.length === 0) return input.split("\n").map((l) => [...l].reverse().join("")).join("\n");
  else if (command === "cat" && (args.length === 0 || (args.length === 1 && args[0] === "-"))) return input;
  else if (command === "tr") return translate(args, input);
  if (out !== null && payloads.length < MAX_PAYLOADS * 2) payloads.push(out);
  return out;
}

/** `echo` as bash's builtin prints: `-n`, `-e` (escapes), `-E`. */
function echo(args: readonly string[]): string {
  let i = 0;
  let newline = true;
  let escapes = false;
  for (; i < args.length && /^-[neE]{1,3}$/.test(args[i]!); i++) {
    if (args[i]!.includes("n")) newline = false;
    if (args[i]!.includes("e")) escapes = true;
    if (args[i]!.includes("E")) escapes = false;
  }
  const text = args.slice(i).join(" ").slice(0, MAX_OUTPUT);
  return (escapes ? decodeEscapes(text, "echo") : text) + (newline ? "\n" : "");
}

const CONVERSION = /%(?:(%)|([-+ #0]{0,5})(\d{1,6})?(?:\.(\d{1,6}))?([sbcdiouxXq]))/g;

/**
 * `printf FORMAT ARGS`: escapes in the format, conversions %s %b %c %d %i %o %u %x %X %q and
 * %%, with width and precision (`%.1s` takes one character); the format is reused while
 * arguments remain (POSIX printf, EXTENDED DESCRIPTION).
 */
function printf(args: readonly string[]): string | null {
  let rest = args;
  if (rest[0] === "--") rest = rest.slice(1);
  const format = rest[0];
  if (format === undefined || format.startsWith("-")) return null;
  let used = 1;
  let out = "";
  for (let repeat = 0; repeat < MAX_PRINTF_REPEATS && out.length < MAX_OUTPUT; repeat++) {
    let consumed = 0;
    let last = 0;
    CONVERSION.lastIndex = 0;
    for (let m = CONVERSION.exec(format); m !== null; m = CONVERSION.exec(format)) {
      out += decodeEscapes(format.slice(last, m.index), "printf");
      last = m.index + m[0].length;
      if (m[1] === "%") {
        out += "%";
        continue;
      }
      const arg = rest[used] ?? "";
      if (used < rest.length) used++;
      consumed++;
      out += convert(m[5]!, arg, m[2] ?? "", m[3], m[4]);
    }
    out += decodeEscapes(format.slice(last), "printf");
    if (consumed === 0 || used >= rest.length) break;
  }
  return out.slice(0, MAX_OUTPUT);
}

function convert(kind: string, arg: string, flags: string, width: string | undefined, precision: string | undefined): string {
  let s: string;
  if (kind === "s" || kind === "q") s = arg;
  else if (kind === "b") s = decodeEscapes(arg, "echo");
  else if (kind === "c") s = arg.charAt(0);
  else {
    const n = Number.parseInt(arg, 10);
    const v = Number.isFinite(n) ? n : 0;
    s = kind === "o" ? v.toString(8) : kind === "x" ? v.toString(16) : kind === "X" ? v.toString(16).toUpperCase() : String(v);
  }
  if (precision !== undefined && "sbq".includes(kind)) s = s.slice(0, Number(precision));
  const w = Math.min(Number(width ?? 0), MAX_WIDTH);
  return flags.includes("-") ? s.padEnd(w) : s.padStart(w);
}

/** Standard base64 as `base64 -d` takes it (blanks ignored), when it decodes to UTF-8 text. */
function decodeBase64(input: string): string | null {
  const b64 = input.replace(/\s+/g, "");
  if (b64.length < 4 || b64.length > MAX_OUTPUT || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  let binary: string;
  try {
    binary = atob(b64.replace(/=+$/, "").padEnd(Math.ceil(b64.replace(/=+$/, "").length / 4) * 4, "="));
  } catch {
    return null;
  }
  return textOf(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/** `xxd -r -p`: hex digit pairs, blanks ignored. */
function decodeHex(input: string): string | null {
  const hex = input.replace(/\s+/g, "");
  if (hex.length < 2 || hex.length % 2 !== 0 || hex.length > MAX_OUTPUT || !/^[0-9a-fA-F]+$/.test(hex)) return null;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return textOf(bytes);
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The bytes as text, or null for binary (invalid UTF-8 or control characters other than blanks). */
function textOf(bytes: Uint8Array): string | null {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return null;
  }
  return /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(text) ? null : text;
}

/** `tr SET1 SET2` and `tr -d SET` with literal characters and ranges (`a-z`), as rot13 uses it. */
function translate(args: readonly string[], input: string): string | null {
  if (args.length === 2 && args[0] === "-d") {
    const drop = new Set(trSet(args[1]!) ?? []);
    return [...input].filter((c) => !drop.has(c)).join("");
  }
  if (args.length !== 2 || args[0]!.startsWith("-")) return null;
  const from = trSet(args[0]!);
  const to = trSet(args[1]!);
  if (from === null || to === null || to.length === 0) return null;
  const map = new Map<string, string>();
  // GNU tr pads SET2 with its last character.
  from.forEach((c, i) => map.set(c, to[Math.min(i, to.length - 1)]!));
  return [...input].map((c) => map.get(c) ?? c).join("");
}

function trSet(spec: string): string[] | null {
  if (spec.includes("[:") || spec.length > 256) return null;
  const out: string[] = [];
  const chars = [...decodeEscapes(spec, "printf")];
  for (let i = 0; i < chars.length; i++) {
    const a = chars[i]!;
    const b = chars[i + 2];
    if (chars[i + 1] === "-" && b !== undefined && a.codePointAt(0)! <= b.codePointAt(0)!) {
      for (let c = a.codePointAt(0)!; c <= b.codePointAt(0)! && out.length < 1024; c++) out.push(String.fromCodePoint(c));
      i += 2;
    } else out.push(a);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Brace expansion (bash(1), Brace Expansion)

/** Characters that end the word around a brace list (metacharacters, quotes, other braces). */
const endsBraceWord = (c: string): boolean => isMeta(c) || c === "'" || c === '"' || c === "{" || c === "}" || c === "`";

/**
 * `pre{a,b}post` → `preapost prebpost`, for lists without blanks, quotes, `$` or nested braces
 * (a later round sees what quote removal or an inner expansion leaves); `${...}` is not a list.
 */
function expandBraces(text: string): string {
  if (!text.includes("{")) return text;
  let out = "";
  let last = 0;
  let count = 0;
  for (let i = text.indexOf("{"); i >= 0 && count < MAX_BRACE_EXPANSIONS; i = text.indexOf("{", i + 1)) {
    if (i < last || text.charAt(i - 1) === "$") continue;
    const close = braceListEnd(text, i);
    if (close < 0) continue;
    let start = i;
    while (start > last && i - start < CONTEXT && !endsBraceWord(text.charAt(start - 1))) start--;
    let end = close + 1;
    while (end < text.length && end - close <= CONTEXT && !endsBraceWord(text.charAt(end))) end++;
    const prefix = text.slice(start, i);
    const suffix = text.slice(close + 1, end);
    out += text.slice(last, start) + text.slice(i + 1, close).split(",").map((item) => prefix + item + suffix).join(" ");
    last = end;
    count++;
    i = end - 1;
  }
  return count === 0 ? text : out + text.slice(last);
}

/** Where the brace list opened at `open` closes, or -1 when it is not a plain comma list. */
function braceListEnd(text: string, open: number): number {
  let commas = 0;
  for (let j = open + 1; j < text.length && j - open <= 1024; j++) {
    const c = text.charAt(j);
    if (c === "}") return commas > 0 ? j : -1;
    if (c === ",") {
      if (++commas >= MAX_BRACE_ITEMS) return -1;
    } else if (isBlank(c) || c === "{" || c === "$" || c === "'" || c === '"' || c === "\\" || c === "`") return -1;
  }
  return -1;
}

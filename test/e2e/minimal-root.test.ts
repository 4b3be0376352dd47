/**
 * The container image's claim (Dockerfile: dist/sluice alone on a distroless glibc base), checked
 * without a container engine: dist/sluice and exactly the shared libraries `ldd` lists (the
 * dynamic loader among them, each at its absolute path) are copied into an empty directory, and
 * the binary runs there with `chroot` as uid/gid 65532, the image's user: --version,
 * check-config on a valid and an invalid policy, init, and `sluice run` itself. The running
 * sluice answers /healthz asked from outside the root over loopback, proxies a request to a name
 * only a fake DNS upstream on loopback knows (no /etc/resolv.conf in the root), writes its state
 * to SLUICE_HOME inside the root, and stops with exit 0 on SIGTERM.
 *
 * What the root holds besides the binary and the libraries, and why:
 * - /proc: Bun aborts at start-up without it ("panic: abort() called"; it reads /proc/self/maps,
 *   /proc/stat, /proc/self/cgroup, /proc/self/statm, /proc/self/exe). Every container runtime
 *   gives a container its own /proc; so does this test, with `unshare --mount --pid --fork
 *   --mount-proc`: a private mount namespace (nothing is mounted on the host, nothing is left to
 *   unmount if the test dies) and a PID namespace in which sluice is PID 1, as in a container.
 * - /var/lib/sluice, owned by 65532: SLUICE_HOME (the Dockerfile makes it in the build stage).
 * - the policy files the commands are given.
 * Nothing else: no /etc (no resolv.conf, hosts, passwd, ssl/certs, localtime), no /dev, no /tmp,
 * no /sys. What sluice looks for and does without (seen with strace): /etc/hosts (optional),
 * /etc/ssl/certs/ca-certificates.crt (ca-bundle.pem falls back to Bun's bundled roots, checked
 * below), /etc/localtime (UTC), /sys/fs/cgroup and /sys/devices/system/cpu (limits), locale files.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Subprocess } from "bun";
import pkg from "../../package.json" with { type: "json" };
import { startFakeDns, type FakeDns } from "../helpers/fake-dns.ts";
import { startEchoOrigin, type EchoOrigin } from "../helpers/origins.ts";
import { BIN, tempDir } from "../helpers/sluice.ts";

const T = 60_000;
/** The image's user (Dockerfile USER, distroless `nonroot`). */
const UID = 65532;
const HOME = "/var/lib/sluice";

const tools = { chroot: Bun.which("chroot"), ldd: Bun.which("ldd"), unshare: Bun.which("unshare") };

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return "not root (chroot and the mount namespace for /proc need root; CI is root)";
  const missing = Object.entries(tools).filter(([, p]) => p === null).map(([n]) => n);
  if (missing.length > 0) return `${missing.join(", ")} not installed`;
  const probe = Bun.spawnSync([tools.unshare!, "--mount", "--pid", "--fork", "--mount-proc", "true"], { stdout: "pipe", stderr: "pipe" });
  if (probe.exitCode !== 0) return `cannot make a mount and PID namespace here: ${probe.stderr.toString().trim()}`;
  return null;
}
const why = skipReason();
if (why !== null) console.warn(`minimal-root.test.ts: skipping the chroot tests: ${why}`);
const ok = why === null;

/** `ldd FILE`: the absolute paths of the libraries it names, the loader included (the vDSO has no file). */
function lddPaths(file: string): string[] {
  const r = Bun.spawnSync([tools.ldd!, file], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  if (r.exitCode !== 0) throw new Error(`ldd ${file} failed: ${r.stderr.toString()}${out}`);
  if (/not found/.test(out)) throw new Error(`ldd ${file}: a library is missing:\n${out}`);
  const paths: string[] = [];
  for (const line of out.split("\n")) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)"
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)/.exec(line);
    if (m) paths.push(m[1]!);
  }
  return paths;
}

/** Every path under `root`, as seen from inside it ("/sluice", "/proc/", ...; directories end in "/"). */
function tree(root: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(`${p}/`, ...tree(root, p));
    else out.push(p);
  }
  return out.sort();
}

/** Pids whose parent is `pid` (from each /proc/PID/stat: the field after the command's closing parenthesis). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const dir = ok ? tempDir("slt-minimal-root-") : "";
const root = join(dir, "root");
let libs: string[] = [];
let dns: FakeDns | null = null;
let origin: EchoOrigin | null = null;
/** The `sluice run` of the last test while it runs (its unshare). */
let running: Subprocess<"ignore", "pipe", "pipe"> | null = null;

/** argv that runs ARGV inside the root as 65532, with its own /proc, as PID 1 of a new PID namespace. */
const inRoot = (argv: string[]) => [tools.unshare!, "--mount", "--pid", "--fork", `--mount-proc=${join(root, "proc")}`, tools.chroot!, `--userspec=${UID}:${UID}`, root, ...argv];
/** The image's environment: only what the Dockerfile sets. */
const ENV = { SLUICE_HOME: HOME };

const runInRoot = (argv: string[]) => {
  const r = Bun.spawnSync(inRoot(argv), { stdout: "pipe", stderr: "pipe", env: ENV });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

beforeAll(async () => {
  if (!ok) return;
  mkdirSync(root, { mode: 0o755 });
  // mkdtemp made the parent 0700; the root itself must be searchable by 65532.
  chmodSync(root, 0o755);
  copyFileSync(BIN, join(root, "sluice"));
  chmodSync(join(root, "sluice"), 0o755);
  libs = lddPaths(BIN);
  for (const lib of libs) {
    // At the same absolute path; a symlink (/lib64 -> usr/lib64 on merged-/usr Debian) is copied as the file it names.
    mkdirSync(join(root, dirname(lib)), { recursive: true, mode: 0o755 });
    copyFileSync(lib, join(root, lib));
  }
  mkdirSync(join(root, "proc"), { mode: 0o555 });
  // /var/lib as in any image (0755, root's), SLUICE_HOME as the Dockerfile makes it (0700, the user's).
  mkdirSync(join(root, dirname(HOME)), { recursive: true, mode: 0o755 });
  mkdirSync(join(root, HOME), { mode: 0o700 });
  chownSync(join(root, HOME), UID, UID);

  dns = await startFakeDns({ names: { "origin.test": { answers: [{ type: "A", data: "127.0.0.1" }] } } });
  origin = await startEchoOrigin();
  // Listeners on loopback, ports chosen by the kernel (read back from the "sluice ready" line).
  writeFileSync(
    join(root, "policy.yaml"),
    [
      "version: 1",
      'proxy: { listen: "127.0.0.1:0" }',
      'admin: { listen: "127.0.0.1:0" }',
      `dns: { listen: "127.0.0.1:0", upstreams: ["${dns.address}"] }`,
      "egress:",
      '  allow: ["origin.test"]',
      `  ports: { http: [${origin.port}] }`,
      '  trusted_cidrs: ["127.0.0.1/32"]',
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  writeFileSync(join(root, "bad.yaml"), "version: 1\nproxy: { listen: nowhere }\nbogus: 1\n", { mode: 0o644 });
}, T);

afterAll(async () => {
  if (running !== null) {
    // Only if the test failed before stopping it: the sluice it started, then its unshare, by pid.
    // (unshare --kill-child would not do: chroot --userspec changes credentials, which clears
    // the parent-death signal.)
    for (const pid of childrenOf(running.pid)) process.kill(pid, "SIGKILL");
    running.kill("SIGKILL");
    await running.exited;
  }
  await dns?.stop();
  await origin?.stop();
  if (!ok) return;
  // The /proc mounts lived in private mount namespaces, gone with their processes. Check rather
  // than trust it before deleting anything recursively.
  const mountsUnder = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => m.startsWith(`${dir}/`));
  for (const m of mountsUnder().reverse()) Bun.spawnSync(["umount", "-l", m]);
  const left = mountsUnder();
  if (left.length > 0) throw new Error(`minimal-root: cannot unmount ${left.join(", ")}; ${dir} left in place`);
  rmSync(dir, { recursive: true, force: true });
});

describe("dist/sluice in an empty root with only the libraries ldd lists", () => {
  test.skipIf(!ok)("the root holds the binary, glibc and its loader, /proc and SLUICE_HOME, nothing else", () => {
    // ldd names the loader (PT_INTERP) too.
    expect(libs.some((l) => /\/ld-linux[^/]*\.so/.test(l))).toBe(true);
    const expected = new Set(["/sluice", "/proc/", `${HOME}/`, "/policy.yaml", "/bad.yaml", ...libs]);
    for (const p of [...expected]) for (let d = dirname(p.replace(/\/$/, "")); d !== "/"; d = dirname(d)) expected.add(`${d}/`);
    expect(tree(root)).toEqual([...expected].sort());
  });

  test.skipIf(!ok)("--version", () => {
    const r = runInRoot(["/sluice", "--version"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^sluice ${pkg.version.replaceAll(".", "\\.")} \\(commit ([0-9a-f]+(-dirty)?|unknown)\\)`));
  }, T);

  test.skipIf(!ok)("check-config: a valid policy exits 0, an invalid one exits 1 with every problem and its key path", () => {
    const good = runInRoot(["/sluice", "check-config", "/policy.yaml"]);
    expect({ code: good.code, err: good.err }).toEqual({ code: 0, err: "" });
    expect(good.out).toContain("ok: /policy.yaml");
    const bad = runInRoot(["/sluice", "check-config", "/bad.yaml"]);
    expect(bad.code).toBe(1);
    const said = bad.out + bad.err;
    expect(said).toContain("invalid: /bad.yaml");
    expect(said).toContain("bogus: unknown key");
    expect(said).toMatch(/proxy\.listen: not a listen address/);
  }, T);

  test.skipIf(!ok)("init prints the embedded default policy, the same as outside the root", () => {
    const r = runInRoot(["/sluice", "init"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("version: 1");
    expect(r.out).toContain("api.anthropic.com");
    expect(r.out).toBe(Bun.spawnSync([BIN, "init"], { stdout: "pipe" }).stdout.toString());
  }, T);

  test.skipIf(!ok)(
    "run: as 65532 and PID 1, answers /healthz from outside the root, proxies through its resolver, stops on SIGTERM with 0",
    async () => {
      const proc = Bun.spawn(inRoot(["/sluice", "run", "--config", "/policy.yaml", "--log-format", "json"]), { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: ENV });
      running = proc;
      const lines: Record<string, unknown>[] = [];
      let notify: (() => void) | null = null;
      const pump = async (stream: ReadableStream<Uint8Array>) => {
        const decoder = new TextDecoder();
        let rest = "";
        for await (const chunk of stream) {
          rest += decoder.decode(chunk, { stream: true });
          for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
            const text = rest.slice(0, nl);
            rest = rest.slice(nl + 1);
            try {
              lines.push(JSON.parse(text) as Record<string, unknown>);
            } catch {
              lines.push({ raw: text });
            }
            notify?.();
          }
        }
      };
      const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
      const waitFor = async (pred: (l: Record<string, unknown>) => boolean, what: string) => {
        const deadline = Date.now() + 20_000;
        for (;;) {
          const hit = lines.find(pred);
          if (hit) return hit;
          if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`no ${what} (exit ${proc.exitCode}):\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
          await Promise.race([new Promise<void>((r) => (notify = r)), proc.exited, Bun.sleep(250)]);
        }
      };

      const ready = await waitFor((l) => l.msg === "sluice ready", '"sluice ready"');
      // unshare --fork waits for its child and ignores SIGTERM itself; the child (chroot, which
      // exec'd sluice) is PID 1 of its namespace. Its pid out here:
      const children = childrenOf(proc.pid);
      expect(children).toHaveLength(1);
      const pid = children[0]!;
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      expect(status).toMatch(new RegExp(`^Uid:\\s+${UID}\\s+${UID}\\s+${UID}\\s+${UID}$`, "m"));
      expect(status).toMatch(new RegExp(`^Gid:\\s+${UID}\\s`, "m"));
      expect(status).toMatch(/^NSpid:\s+\d+\s+1$/m);
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]).toBe("/sluice");

      const port = (s: unknown) => Number(String(s).split(":").pop());
      const health = await fetch(`http://127.0.0.1:${port(ready.admin)}/healthz`);
      expect(health.status).toBe(200);
      expect(((await health.json()) as { status: string }).status).toBe("ok");

      // A name only the fake upstream knows, resolved by sluice's own resolver inside the root.
      const res = await fetch(`http://origin.test:${origin!.port}/through-the-root`, { proxy: `http://127.0.0.1:${port(ready.proxy)}` });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { url: string }).url).toBe("/through-the-root");
      expect(dns!.count("origin.test")).toBeGreaterThan(0);

      process.kill(pid, "SIGTERM");
      expect(await proc.exited).toBe(0);
      running = null;
      await pumped;
      expect(lines.some((l) => l.msg === "stopping" && l.signal === "SIGTERM")).toBe(true);
      expect(lines.filter((l) => l.level === "error")).toEqual([]);

      // State went to SLUICE_HOME inside the root, written by 65532.
      const home = join(root, HOME);
      for (const f of ["admin.token", "audit-signing-key.pem", "ca.pem", "ca-bundle.pem", "audit"]) expect(statSync(join(home, f)).uid).toBe(UID);
      // No /etc/ssl in the root: the bundle carries Bun's own roots plus the sluice CA.
      const bundle = readFileSync(join(home, "ca-bundle.pem"), "utf8");
      expect(bundle.split("BEGIN CERTIFICATE").length - 1).toBeGreaterThan(50);
      expect(bundle).toContain(readFileSync(join(home, "ca.pem"), "utf8").trim());
      // And the signed log it wrote checks out, verified inside the root too.
      const verify = runInRoot(["/sluice", "audit", "verify", `${HOME}/audit`]);
      expect({ code: verify.code, err: verify.err }).toEqual({ code: 0, err: "" });
      // It made no /tmp, /etc or /dev for itself either.
      expect(existsSync(join(root, "tmp")) || existsSync(join(root, "etc")) || existsSync(join(root, "dev"))).toBe(false);
    },
    T,
  );
});

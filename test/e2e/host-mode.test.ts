/**
 * Host mode through dist/sluice (root; CI is root), inside a namespace of the test's own so the
 * host's tables and traffic are never touched: sluice runs as root in the namespace, `sluice nft
 * apply --host --uid nobody` installs its table, and then `nobody`'s connection to a web host
 * (a local address on a veth inside the namespace, named in the namespace's /etc/hosts) goes through the
 * transparent listener; its IP-literal connection and its other UDP are refused; root's traffic
 * is not touched; `sluice nft remove` takes the table out. The rendered table passes nft -c.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { createNetns, netnsSupport, startSluiceInNetns, type Netns, type NetnsSluice } from "../helpers/netns.ts";
import { logRecords } from "../helpers/audit.ts";
import { BIN, tempDir } from "../helpers/sluice.ts";

const T = 60_000;
const support = netnsSupport();
const ok = support.ok && Bun.which("nft") !== null && Bun.which("setpriv") !== null && Bun.which("curl") !== null;
if (!ok) console.warn(`host-mode.test.ts: skipping host mode: ${support.ok ? "nft, setpriv or curl is not installed" : support.reason}`);

const WEB = "10.123.0.1";
const dir = tempDir("slt-host-mode-");
const config = join(dir, "sluice.yaml");
let ns: Netns | null = null;
let origin: Subprocess | null = null;
let sluice: NetnsSluice | null = null;
let nobody = { uid: 0, gid: 0 };

beforeAll(async () => {
  if (!ok) return;
  ns = createNetns({ hosts: { "web.test": WEB } });
  for (const argv of [
    // A local address for the web host (a veth pair, both ends inside: no dummy driver needed).
    ["ip", "-n", ns.name, "link", "add", "slt0", "type", "veth", "peer", "name", "slt1"],
    ["ip", "-n", ns.name, "addr", "add", `${WEB}/24`, "dev", "slt0"],
    ["ip", "-n", ns.name, "link", "set", "slt0", "up"],
    ["ip", "-n", ns.name, "link", "set", "slt1", "up"],
  ]) {
    const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
  }
  origin = Bun.spawn([...ns.prefix, process.execPath, "-e", `Bun.serve({ hostname: "${WEB}", port: 80, fetch: (r) => new Response("hello " + new URL(r.url).pathname) }); console.log("up");`], { stdout: "pipe", stderr: "inherit" });
  await (origin.stdout as ReadableStream<Uint8Array>).getReader().read();
  const yaml = [
    "version: 1",
    'proxy: { listen: "127.0.0.1:18888", transparent_listen: "127.0.0.1:18890" }',
    'admin: { listen: "127.0.0.1:0" }',
    'dns: { listen: "127.0.0.1:18853", upstreams: ["127.0.0.1:9"] }',
    "egress:",
    '  allow: ["web.test"]',
    '  ports: { http: ["1-65535"] }',
    `  trusted_cidrs: ["${WEB}/32"]`,
    `audit: { dir: ${JSON.stringify(join(dir, "log"))}, file: "off" }`,
    "",
  ].join("\n");
  writeFileSync(config, yaml);
  sluice = await startSluiceInNetns(ns, yaml);
  const f = Bun.spawnSync(["getent", "passwd", "nobody"], { stdout: "pipe" }).stdout.toString().split(":");
  nobody = { uid: Number(f[2]), gid: Number(f[3]) };
}, T);

afterAll(async () => {
  await sluice?.stop();
  origin?.kill();
  ns?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const inNs = async (argv: string[], asNobody: boolean) => {
  const user = asNobody ? ["setpriv", `--reuid=${nobody.uid}`, `--regid=${nobody.gid}`, "--clear-groups", "--"] : [];
  const p = Bun.spawn([...ns!.prefix, ...user, ...argv], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { out, err, code };
};
const records = () => logRecords(join(dir, "log"));

describe("host mode (sluice nft)", () => {
  test.skipIf(!ok)(
    "the user's traffic goes through the transparent listener; other users' does not; remove takes it out",
    async () => {
      const applied = await inNs([BIN, "nft", "apply", "--host", "--uid", "nobody", "--config", config], false);
      expect([applied.code, applied.err]).toEqual([0, ""]);
      expect(applied.out).toContain(`uid ${nobody.uid} through sluice`);

      const named = await inNs(["curl", "-sS", "--max-time", "5", "http://web.test/as-nobody"], true);
      expect([named.code, named.out]).toEqual([0, "hello /as-nobody"]);
      const literal = await inNs(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", `http://${WEB}/literal`], true);
      expect(literal.out).toBe("403");
      const udp = await inNs(["bash", "-c", `exec 3<>/dev/udp/${WEB}/9999; echo a >&3; sleep 0.3; echo b >&3 && echo sent || echo refused`], true);
      expect(udp.out.trim()).toBe("refused");
      // Root (sluice's own user here) is not redirected.
      const root = await inNs(["curl", "-sS", "--max-time", "5", `http://${WEB}/as-root`], false);
      expect(root.out).toBe("hello /as-root");
      // Applied twice: replaced, not doubled.
      expect((await inNs([BIN, "nft", "apply", "--host", "--uid", "nobody", "--config", config], false)).code).toBe(0);
      expect((await inNs(["nft", "list", "tables"], false)).out.match(/sluice_host/g)?.length).toBe(1);

      const rec = records().find((r) => r.path === "/as-nobody");
      expect(rec).toMatchObject({ kind: "http", verdict: "allow", host: "web.test" });
      expect(records().some((r) => r.rule === "net.unbound-address" && r.host === WEB)).toBe(true);

      const removed = await inNs([BIN, "nft", "remove"], false);
      expect([removed.code, removed.out]).toEqual([0, "removed table inet sluice_host\n"]);
      expect((await inNs(["curl", "-sS", "--max-time", "5", `http://${WEB}/after`], true)).out).toBe("hello /after");
      expect((await inNs([BIN, "nft", "remove"], false)).out).toBe("no table inet sluice_host\n");
    },
    T,
  );

  // A cgroup v2 of the test's own: where the host has the hierarchy (hybrid hosts at .../unified).
  const cgroupRoot = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].find((d) => existsSync(join(d, "cgroup.controllers")));
  if (ok && cgroupRoot === undefined) console.warn("host-mode.test.ts: skipping --cgroup: no cgroup v2 hierarchy on this host");
  test.skipIf(!ok || cgroupRoot === undefined)(
    "--cgroup: the processes of one cgroup go through sluice, the same user outside it does not (hybrid cgroup layout)",
    async () => {
      const name = `sluice-test-${process.pid}`;
      mkdirSync(join(cgroupRoot!, name));
      // Each command below gets the layout of a hybrid host in its own mount namespace (ip netns
      // exec gives it a fresh /sys): a tmpfs at /sys/fs/cgroup, the v2 hierarchy at .../unified.
      const hybrid = 'mount -t tmpfs none /sys/fs/cgroup && mkdir /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified && exec "$@"';
      const inCgroup = `mount -t cgroup2 none /sys/fs/cgroup && echo $$ > /sys/fs/cgroup/${name}/cgroup.procs && exec "$@"`;
      try {
        const applied = await inNs(["sh", "-c", hybrid, "sh", BIN, "nft", "apply", "--host", "--cgroup", name, "--config", config], false);
        expect(applied.code).toBe(0);
        expect(applied.out).toContain(`cgroup ${name} through sluice`);
        expect(applied.err).toContain("if that cgroup is removed and made again, apply again");
        // The layout made here is the hybrid one: the warning about older kernels is given.
        expect(applied.err).toContain("mixes cgroup v1 and v2");
        // nft matches the cgroup's id, its directory's inode (listed as a number where nft sees no hierarchy).
        expect((await inNs(["nft", "list", "table", "inet", "sluice_host"], false)).out).toContain(`socket cgroupv2 level 1 ${statSync(join(cgroupRoot!, name)).ino} goto agent_nat`);
        // Root's curl in the cgroup: through the transparent listener (an IP literal is refused).
        const named = await inNs(["sh", "-c", inCgroup, "sh", "curl", "-sS", "--max-time", "5", "http://web.test/in-cgroup"], false);
        expect([named.code, named.out]).toEqual([0, "hello /in-cgroup"]);
        const literal = await inNs(["sh", "-c", inCgroup, "sh", "curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", `http://${WEB}/literal-in-cgroup`], false);
        expect(literal.out).toBe("403");
        // Root outside the cgroup (sluice's own user here): untouched.
        expect((await inNs(["curl", "-sS", "--max-time", "5", `http://${WEB}/outside`], false)).out).toBe("hello /outside");
        // Records reach the signed log from the recorder's thread a moment later.
        for (let i = 0; i < 40 && !records().some((r) => r.path === "/in-cgroup"); i++) await Bun.sleep(50);
        expect(records().find((r) => r.path === "/in-cgroup")).toMatchObject({ kind: "http", verdict: "allow", host: "web.test" });
        // A path that is not one, or both kinds of agent at once: usage errors.
        expect((await inNs([BIN, "nft", "render", "--host", "--cgroup", "../etc", "--config", config], false)).code).toBe(2);
        // A service's cgroup is made anew at each start: refused, the slice is asked for.
        const service = await inNs([BIN, "nft", "render", "--host", "--cgroup", "agents.slice/agent.service", "--config", config], false);
        expect([service.code, service.err]).toEqual([2, expect.stringContaining("give a slice outside any service")]);
        // Below a service too: it goes when the service restarts.
        expect((await inNs([BIN, "nft", "render", "--host", "--cgroup", "user.slice/user@1000.service/app.slice", "--config", config], false)).code).toBe(2);
        expect((await inNs([BIN, "nft", "render", "--host", "--uid", "nobody", "--cgroup", name, "--config", config], false)).code).toBe(2);
      } finally {
        await inNs([BIN, "nft", "remove"], false);
        rmdirSync(join(cgroupRoot!, name));
      }
    },
    T,
  );

  test.skipIf(!ok)("render passes nft -c; root, a config without the transparent listener or off loopback is refused", async () => {
    const rendered = await inNs([BIN, "nft", "render", "--host", "--uid", "nobody", "--config", config], false);
    expect(rendered.code).toBe(0);
    const check = Bun.spawnSync([...ns!.prefix, "nft", "-c", "-f", "-"], { stdin: Buffer.from(rendered.out), stdout: "pipe", stderr: "pipe" });
    expect([check.exitCode, check.stderr.toString()]).toEqual([0, ""]);
    expect((await inNs([BIN, "nft", "render", "--host", "--uid", "root", "--config", config], false)).code).toBe(2);
    writeFileSync(join(dir, "plain.yaml"), 'version: 1\nproxy: { listen: "0.0.0.0:18888" }\n');
    const plain = await inNs([BIN, "nft", "render", "--host", "--uid", "nobody", "--config", join(dir, "plain.yaml")], false);
    expect(plain.code).toBe(1);
    expect(plain.err).toContain("proxy.transparent_listen is not set");
    expect(plain.err).toContain("proxy.listen must be 127.0.0.1");
  });
});

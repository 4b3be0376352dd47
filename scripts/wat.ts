/**
 * WebAssembly text (.wat) modules as imports: `import bytes from "./x.wat"` is the assembled
 * module, a Uint8Array. Used by build.ts (the bytes are embedded in dist/sluice) and registered by
 * scripts/preload.ts (bunfig.toml) when running from source (tests, benchmarks), so there is no generated .wasm file in
 * the repository. Assembled with wabt, the WebAssembly project's own toolkit (a devDependency: the
 * compiled binary carries the bytes, not the assembler).
 */
import type { BunPlugin } from "bun";

export const watPlugin: BunPlugin = {
  name: "wat",
  setup(build) {
    build.onLoad({ filter: /\.wat$/ }, async ({ path }) => {
      const wabt = await (await import("wabt")).default();
      let module: ReturnType<typeof wabt.parseWat>;
      try {
        module = wabt.parseWat(path, await Bun.file(path).text(), { simd: true });
      } catch (e) {
        throw new Error(`cannot assemble ${path}: ${(e as Error).message}`);
      }
      try {
        module.validate();
        const { buffer } = module.toBinary({});
        return { loader: "js", contents: `export default Uint8Array.from(atob(${JSON.stringify(Buffer.from(buffer).toString("base64"))}), (c) => c.charCodeAt(0));` };
      } finally {
        module.destroy();
      }
    });
  },
};

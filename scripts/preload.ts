/** Preloaded by bunfig.toml for `bun run`, `bun test` and benchmarks from source: .wat imports (scripts/wat.ts). */
import { watPlugin } from "./wat.ts";

Bun.plugin(watPlugin);

/**
 * Preloaded by bunfig.toml for `bun run`, `bun test` and benchmarks from source: .wat imports
 * (scripts/wat.ts), and the word model dist/sluice embeds (scripts/words-model.ts: trained once,
 * then found in the cache), so source and binary judge alike.
 */
import { registerWordModel } from "../src/scan/injection/words.ts";
import { watPlugin } from "./wat.ts";
import { loadWordModel } from "./words-model.ts";

Bun.plugin(watPlugin);
registerWordModel(await loadWordModel());

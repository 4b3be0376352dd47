export { ALNUM, createRng, HEX, type Rng } from "../../helpers/corpus-rng.ts";
import { ALNUM } from "../../helpers/corpus-rng.ts";

export const B64 = `${ALNUM}+/`;

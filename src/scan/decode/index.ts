/** Decoding and normalising passes run over every text fragment before DLP matching. */
export { decodeViews, defaultMaxBytes, DECODERS, DEFAULT_MAX_DEPTH, DEFAULT_MAX_VIEWS, type DecodeLimits, type DecodeReport, type DecodedView, type Decoder, type DecoderName } from "./views.ts";
export { byWideStretches, normaliseText, normaliseWhole } from "./normalise.ts";
export { percentDecode } from "./percent.ts";
export { base64Decode, decodeBase64Run } from "./base64.ts";
export { base32Decode, decodeBase32Run } from "./base32.ts";
export { hexDecode, decodeHexRun } from "./hex.ts";
export { htmlEntityDecode } from "./html.ts";
export { jsonUnescape } from "./json-escape.ts";
export { quotedPrintableDecode } from "./quoted-printable.ts";
export { CONFUSABLES } from "./confusables.ts";
export { bytesToText, isPlausibleText, plausibleText } from "./text.ts";

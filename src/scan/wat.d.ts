/** A WebAssembly text module imported as its assembled bytes (scripts/wat.ts). */
declare module "*.wat" {
  const bytes: Uint8Array;
  export default bytes;
}

/** nftables templates (nftables/*.nft), imported as text and embedded in the binary. */
declare module "*.nft" {
  const text: string;
  export default text;
}

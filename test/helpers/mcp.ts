/** What the MCP end-to-end tests share: reading sluice's refusals and a tool's text from the SDK client. */
import { McpError } from "@modelcontextprotocol/sdk/types.js";

/** The JSON-RPC error a call ended in, with error.data.sluice; throws when the call succeeded. */
export async function refusal(p: Promise<unknown>): Promise<{ code: number; sluice: { rule: string; reason: string } }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof McpError)) throw err;
    return { code: err.code, sluice: (err.data as { sluice: { rule: string; reason: string } }).sluice };
  }
  throw new Error("expected a JSON-RPC error");
}

/** The first text content of a tool result. */
export const text = (r: unknown): string => (r as { content: { text: string }[] }).content[0]?.text ?? "";

/**
 * A minimal MCP server for bench/mcp.ts, line-based JSON-RPC on stdio without the SDK, so the
 * benchmark measures sluice's relay rather than a framework: `initialize`, `tools/list` (the
 * --tools count, each with a realistic description and schema) and `tools/call` (the tool `echo`
 * answers its `text` argument back as text content).
 */
export {};

const count = Number(process.argv[2] ?? "200");
const verbs = ["Reads", "Lists", "Creates", "Updates", "Deletes", "Searches", "Summarises", "Fetches"];
const nouns = ["issues", "pull requests", "files in the allowed directories", "calendar events", "rows of a table", "messages in a channel", "pages of the wiki", "build logs"];
const tools = Array.from({ length: count }, (_, i) => ({
  name: i === 0 ? "echo" : `tool_${i}`,
  description: `${verbs[i % verbs.length]} ${nouns[(i * 3) % nouns.length]} for the current project. Returns at most 100 results, newest first; use the cursor to page.`,
  inputSchema: {
    type: "object",
    properties: { text: { type: "string", description: "The text to work on." }, limit: { type: "number", description: "How many results to return (1-100)." }, cursor: { type: "string", description: "Where to continue from." } },
    required: ["text"],
  },
}));

let buf = "";
for await (const chunk of Bun.stdin.stream()) {
  buf += new TextDecoder().decode(chunk);
  let nl: number;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    if (line.trim() === "") continue;
    const m = JSON.parse(line) as { id?: number; method?: string; params?: { arguments?: { text?: string } } };
    if (m.id === undefined) continue;
    let result: unknown = {};
    if (m.method === "initialize") result = { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "bench", version: "1" } };
    else if (m.method === "tools/list") result = { tools };
    else if (m.method === "tools/call") result = { content: [{ type: "text", text: m.params?.arguments?.text ?? "" }] };
    process.stdout.write(`${JSON.stringify({ jsonrpc: "2.0", id: m.id, result })}\n`);
  }
}

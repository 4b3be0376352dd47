/** Plain HttpRequestAction values for unit tests of inspect/ (what the proxy builds from a request). */
import type { HttpRequestAction } from "../../src/core/types.ts";

/** A POST to an LLM API with no headers, overridden field by field. */
export function httpRequest(over: Partial<HttpRequestAction> = {}): HttpRequestAction {
  return {
    kind: "http.request",
    agent: { name: "anonymous", via: "anonymous" },
    client: { address: "127.0.0.1", port: 40000 },
    method: "POST",
    scheme: "https",
    host: "api.openai.com",
    port: 443,
    path: "/v1/chat/completions",
    query: "",
    headers: [],
    ...over,
  };
}

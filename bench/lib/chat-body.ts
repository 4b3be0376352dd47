/**
 * Realistic request and response bodies for the POST benchmark: what a coding agent sends to an
 * LLM chat-completions endpoint (model, a system prompt, a user turn with a code question, an
 * assistant turn, sampling parameters), and a small completion back. No secrets, nothing a DLP
 * rule should find: the benchmark checks that every request is allowed.
 */

const SYSTEM =
  "You are a careful senior software engineer helping with a TypeScript code base. Answer with small, " +
  "reviewable patches and explain the reasoning behind each change in one or two sentences.";

const USER =
  "The retry helper below sometimes waits far longer than the configured ceiling. Can you find why?\n\n" +
  "```ts\nexport async function retry<T>(fn: () => Promise<T>, attempts = 5, baseMs = 100): Promise<T> {\n" +
  "  let delay = baseMs;\n  for (let i = 0; i < attempts; i++) {\n    try {\n      return await fn();\n" +
  "    } catch (err) {\n      if (i === attempts - 1) throw err;\n      await sleep(delay);\n      delay *= 2;\n    }\n  }\n" +
  '  throw new Error("unreachable");\n}\n```';

const ASSISTANT = "Sure, let me look at how the delay grows between attempts.";

const LAST_TURN = "Also suggest a jitter strategy that keeps the total wait bounded.";

/** A chat-completions request body of about 1 KiB (compact JSON, as SDKs send it). */
export function chatRequestBody(): string {
  return chatBody((text) => text, LAST_TURN);
}

/** Stands for the request's number in a template (plain ASCII: JSON and Lua leave it alone). */
export const TURN_MARKER = "@@TURN@@";

/**
 * A chat body with TURN_MARKER where each request puts its own number, as a load generator
 * sends it:
 * - "last-turn": what an agent sends, turn after turn: the same conversation so far, and a new
 *   last message;
 * - "every-message": every message new (no request repeats any text of another).
 */
export function chatRequestTemplate(fresh: "last-turn" | "every-message"): string {
  const mark = (text: string) => (fresh === "every-message" ? `${text} (request ${TURN_MARKER})` : text);
  return chatBody(mark, `Turn ${TURN_MARKER}: ${LAST_TURN}`);
}

function chatBody(mark: (text: string) => string, last: string): string {
  return JSON.stringify({
    model: "gpt-4.1-mini",
    messages: [
      { role: "system", content: mark(SYSTEM) },
      { role: "user", content: mark(USER) },
      { role: "assistant", content: mark(ASSISTANT) },
      { role: "user", content: last },
    ],
    temperature: 0.2,
    max_tokens: 800,
    stream: false,
    user: "agent-7f3c",
  });
}

/** A short chat-completions response. */
export function chatResponseBody(): string {
  return JSON.stringify({
    id: "chatcmpl-bench-0001",
    object: "chat.completion",
    created: 1767225600,
    model: "gpt-4.1-mini",
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content:
            "The delay doubles without a cap: after five attempts it is 16x the base. Clamp it with " +
            "Math.min(delay * 2, maxMs) and add full jitter: await sleep(Math.random() * delay).",
        },
        finish_reason: "stop",
      },
    ],
    usage: { prompt_tokens: 251, completion_tokens: 48, total_tokens: 299 },
  });
}

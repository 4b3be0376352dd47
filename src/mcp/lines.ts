/**
 * Sans-IO framing of the MCP stdio transport: JSON-RPC messages, one per line (newline
 * delimited; MCP spec, "Transports: stdio": messages must not contain embedded newlines). A line
 * longer than `maxLine` is refused as it grows, so a peer that never sends a newline cannot make
 * sluice hold unbounded bytes.
 */
const NL = 0x0a;

export class LineReader {
  #parts: Buffer[] = [];
  #size = 0;
  #failed = false;

  constructor(private readonly maxLine: number) {}

  /** The complete lines in `chunk` (with what came before it), without their line ends; null once a line is too long. */
  feed(chunk: Uint8Array): string[] | null {
    if (this.#failed) return null;
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const lines: string[] = [];
    let at = 0;
    for (let nl = buf.indexOf(NL, at); nl >= 0; nl = buf.indexOf(NL, at)) {
      const piece = buf.subarray(at, nl);
      const whole = this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]);
      this.#parts = [];
      this.#size = 0;
      if (whole.length > this.maxLine) return this.#fail();
      // A CRLF line end is taken too; blank lines are nothing.
      const text = whole.toString("utf8").replace(/\r$/, "");
      if (text.trim().length > 0) lines.push(text);
      at = nl + 1;
    }
    if (at < buf.length) {
      // A copy: a partial line must not pin the whole read it came from.
      const rest = Buffer.from(buf.subarray(at));
      this.#parts.push(rest);
      this.#size += rest.length;
      if (this.#size > this.maxLine) return this.#fail();
    }
    return lines;
  }

  /** Bytes of a line not yet ended. */
  get pending(): number {
    return this.#size;
  }

  #fail(): null {
    this.#failed = true;
    this.#parts = [];
    this.#size = 0;
    return null;
  }
}

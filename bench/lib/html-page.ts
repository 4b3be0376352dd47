/**
 * Deterministic benign HTML pages for bench/injection.ts: a documentation-style page with a head
 * (title, meta, a stylesheet, a script), navigation with a hidden dropdown, headings, paragraphs
 * of the clean corpus's prose, a code block, images with alt text and a footer. Nothing in it is
 * an instruction to a model.
 */
import { cleanCorpus, rng } from "./scan-corpus.ts";

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A page of about `bytes` characters (ASCII), the same for the same seed. */
export function benignPage(bytes: number, seed: number): string {
  const r = rng(seed);
  const prose = cleanCorpus(Math.max(256 * 1024, bytes * 2), seed)
    .split(/\n+/)
    .filter((p) => /^[A-Z][a-z]+ [a-z]/.test(p) && p.length > 40 && !/[{}=<>\[\]]/.test(p));
  if (prose.length === 0) throw new Error("the clean corpus has no prose for a page");
  const head =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Release notes and setup guide</title>` +
    `<meta name="description" content="How to install, configure and upgrade the service."><link rel="stylesheet" href="/site.css">` +
    `<style>.menu{display:none}.menu.open{display:block}pre{background:#f6f8fa}</style>` +
    `<script>document.addEventListener("click",function(e){var m=document.querySelector(".menu");if(m)m.classList.toggle("open")});</script></head><body>` +
    `<nav><a href="/">Home</a> <a href="/docs">Docs</a><ul class="menu" style="display:none"><li><a href="/docs/install">Install</a></li><li><a href="/docs/upgrade">Upgrade</a></li></ul></nav><main>`;
  let body = "";
  let section = 1;
  while (head.length + body.length < bytes - 200) {
    const kind = r();
    if (kind < 0.12) body += `<h2 id="s${section}">${section++}. ${escape(pick(r, ["Installation", "Configuration", "Upgrading", "Troubleshooting", "Performance", "Security notes"]))}</h2>`;
    else if (kind < 0.2) body += `<pre><code>npm install --save service-client@${Math.floor(r() * 9)}.${Math.floor(r() * 20)}\nservice-client init --region eu-west-1</code></pre>`;
    else if (kind < 0.26) body += `<figure><img src="/img/${Math.floor(r() * 1000)}.png" alt="Diagram of the request path through the service" title="Request path"><figcaption>Figure ${section}.</figcaption></figure>`;
    else body += `<p>${escape(pick(r, prose).trim())}</p>`;
  }
  return `${head}${body}</main><footer><p>&copy; 2026 Example Corp. All rights reserved.</p></footer></body></html>`;
}

// Compares the gateway's prompt estimate (core/policy/usage_estimate.cpp:
// one token per 3 bytes of the body, rounded up) with the real prompt
// tokens of each request under OpenAI's o200k_base encoding (js-tiktoken),
// counted as OpenAI counts a chat prompt: 3 tokens per message, its role
// and content, and 3 for the reply's start. Prints, per kind of text, the
// estimate divided by the real count: above 1 the reservation is larger
// than the prompt, below 1 smaller.
import { getEncoding } from "js-tiktoken";
import fs from "fs";

const enc = getEncoding("o200k_base");
const requests = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const ratios = {};
for (const r of requests) {
  const body = JSON.parse(r.body);
  let real = 3;
  for (const m of body.messages)
    real += 3 + enc.encode(m.role).length + enc.encode(m.content).length;
  const estimate = Math.floor((Buffer.byteLength(r.body, "utf8") + 2) / 3);
  (ratios[r.kind] ??= []).push(estimate / real);
}
console.log("kind               requests  estimate/real: min  median  max");
for (const [kind, xs] of Object.entries(ratios)) {
  xs.sort((a, b) => a - b);
  const median = xs[Math.floor(xs.length / 2)];
  console.log(`${kind.padEnd(20)} ${String(xs.length).padStart(6)}` +
              `   ${xs[0].toFixed(2).padStart(18)}  ${median.toFixed(2).padStart(6)}` +
              `  ${xs[xs.length - 1].toFixed(2).padStart(4)}`);
}

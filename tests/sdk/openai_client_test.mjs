// The official `openai` npm client against the real pw-router binary: a
// non-streaming chat on the echo model and on an OpenAI-compatible fake
// upstream, the models list, and the SDK's error classes for our envelope.
//
// Usage: node openai_client_test.mjs /path/to/pw-router
// Needs `npm ci` in this folder (make test does it).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "package.json"));
let OpenAI;
try {
  OpenAI = require("openai").default ?? require("openai");
} catch {
  console.error(`the openai package is missing: run 'npm ci' in ${here}`);
  process.exit(1);
}

const binary = process.argv[2];
assert.ok(binary, "usage: node openai_client_test.mjs /path/to/pw-router");
const key = "sk-sdk-test-5b7e01";
const upstreamKey = "sk-sdk-upstream-19ac";

// Nothing here may hang: the whole test has one bounded budget.
const budget = setTimeout(() => {
  console.error("openai SDK test: timed out");
  process.exit(1);
}, 60_000);

// -- a fake OpenAI-compatible upstream -----------------------------------------
const seen = [];
const upstream = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    seen.push({ url: req.url, auth: req.headers.authorization, body });
    const request = JSON.parse(body);
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({
      id: "chatcmpl-fake",
      object: "chat.completion",
      created: 1700000000,
      model: request.model,
      choices: [{ index: 0, message: { role: "assistant", content: "from upstream" },
                  finish_reason: "stop" }],
      usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 },
    }));
  });
});
await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
const upstreamPort = upstream.address().port;

// -- the gateway ----------------------------------------------------------------
const dir = mkdtempSync(path.join(tmpdir(), "pw-router-sdk-"));
const config = path.join(dir, "config.yaml");
writeFileSync(config, `
server:
  api_keys:
    - key: "${key}"
      name: "sdk"
      allowed_models: ["*"]
models:
  echo:
    provider: echo
  fake-gpt:
    provider: openai
    model: "gpt-fake-upstream"
    api_key: "${upstreamKey}"
    base_url: "http://127.0.0.1:${upstreamPort}/v1"
routing:
  default_model: echo
`);
const gw = spawn(binary, ["--config", config, "--host", "127.0.0.1", "--port", "0"],
                 { stdio: ["ignore", "pipe", "pipe"] });
let out = "";
let err = "";
gw.stderr.on("data", (d) => (err += d));
const port = await new Promise((resolve, reject) => {
  gw.stdout.on("data", (d) => {
    out += d;
    const line = out.split("\n").find((l) => l.includes('"event":"listening"'));
    if (line) resolve(JSON.parse(line).port);
  });
  gw.on("exit", (code) => reject(new Error(`pw-router exited ${code}: ${err}`)));
});

const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: key,
                            maxRetries: 0, timeout: 10_000 });
let failed = false;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failed = true;
    console.log(`not ok - ${name}\n  ${e.stack ?? e}`);
  }
}

await check("chat on the echo model", async () => {
  const r = await client.chat.completions.create({
    model: "echo", messages: [{ role: "user", content: "hello from the sdk" }],
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.model, "echo");
  assert.equal(r.choices[0].message.content, "hello from the sdk");
  assert.ok(r.usage.total_tokens > 0);
});

await check("chat through an OpenAI-compatible upstream", async () => {
  const r = await client.chat.completions.create({
    model: "fake-gpt", messages: [{ role: "user", content: "hi" }], temperature: 0.3,
    max_completion_tokens: 20,
  });
  assert.equal(r.model, "fake-gpt");
  assert.equal(r.choices[0].message.content, "from upstream");
  const last = seen.at(-1);
  assert.equal(last.url, "/v1/chat/completions");
  assert.equal(last.auth, `Bearer ${upstreamKey}`);
  const forwarded = JSON.parse(last.body);
  assert.equal(forwarded.model, "gpt-fake-upstream");
  assert.equal(forwarded.temperature, 0.3);
  assert.equal(forwarded.max_completion_tokens, 20);
});

await check("models list", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ["echo", "fake-gpt"]);
});

await check("a wrong key is an AuthenticationError", async () => {
  const bad = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "sk-nope",
                           maxRetries: 0 });
  await assert.rejects(
    bad.chat.completions.create({ model: "echo", messages: [{ role: "user", content: "x" }] }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401
           && e.code === "invalid_api_key");
});

await check("an unknown model is a NotFoundError with our message", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "gpt-99", messages: [{ role: "user", content: "x" }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.message.includes("gpt-99")
           && typeof e.headers["x-request-id"] === "string");
});

gw.kill("SIGTERM");
const code = await new Promise((r) => gw.on("exit", (c) => r(c)));
await check("the gateway exits 0 on SIGTERM", async () => assert.equal(code, 0));
await check("no key in the gateway's output", async () => {
  for (const secret of [key, upstreamKey]) assert.ok(!(out + err).includes(secret));
});
upstream.close();
rmSync(dir, { recursive: true, force: true });
clearTimeout(budget);
process.exit(failed ? 1 : 0);

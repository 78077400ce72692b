// The official `openai` npm client against the real pw-router binary: chats
// on the echo model, an OpenAI-compatible and an Anthropic fake upstream,
// streamed and not (same text and finish reason both ways), a tool-calling
// round trip through the Anthropic model, the models list, embeddings (the
// echo model's vectors as base64 and as floats, and through the fake
// upstream), legacy text completions (the echo model and the fake upstream,
// streamed and not), and the SDK's error classes for our envelope.
//
// openai 6.x: the newest major that runs on Debian bookworm's own Node.js
// (18); 7.x needs Node.js 22. It streams with Node's built-in fetch (4.x's
// node-fetch broke streams on Node 18 with "Premature close").
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
const words = ["from", " up", "stream"];
const sse = (res, events) => {
  res.writeHead(200, { "Content-Type": "text/event-stream" });
  for (const [event, data] of events)
    res.write((event ? `event: ${event}\n` : "") + `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
  res.end();
};
// An OpenAI-compatible answer: JSON, or SSE chunks for "stream": true.
function openai(request, res) {
  if (!request.stream) {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({
      id: "chatcmpl-fake", object: "chat.completion", created: 1700000000,
      model: request.model,
      choices: [{ index: 0, message: { role: "assistant", content: words.join("") },
                  finish_reason: "stop" }],
      usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 },
    }));
    return;
  }
  const chunk = (delta, finish = null) => ({
    id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1700000000,
    model: request.model, choices: [{ index: 0, delta, finish_reason: finish }] });
  sse(res, [[null, chunk({ role: "assistant", content: "" })],
            ...words.map((w) => [null, chunk({ content: w })]),
            [null, chunk({}, "stop")], [null, "[DONE]"]]);
}
// An OpenAI embeddings answer: one fixed unit vector per input, as floats or,
// when asked, as base64 of little-endian float32s (what the SDK asks for by
// default).
const upstreamVector = [0.5, -0.5, 0.5, -0.5];
function embeddings(request, res) {
  const inputs = Array.isArray(request.input) && typeof request.input[0] !== "number"
    ? request.input : [request.input];
  const embedding = request.encoding_format === "base64"
    ? Buffer.from(new Float32Array(upstreamVector).buffer).toString("base64")
    : upstreamVector;
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify({
    object: "list", model: request.model,
    data: inputs.map((_, index) => ({ object: "embedding", index, embedding })),
    usage: { prompt_tokens: 3, total_tokens: 3 },
  }));
}
// A legacy text completion (`text_completion`): JSON, or SSE chunks for
// "stream": true, with a usage chunk (choices: []) when the request asks.
const completionUsage = { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 };
function completions(request, res) {
  const base = { id: "cmpl-fake", object: "text_completion", created: 1700000000,
                 model: request.model };
  if (!request.stream) {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({
      ...base,
      choices: [{ text: words.join(""), index: 0, logprobs: null, finish_reason: "stop" }],
      usage: completionUsage,
    }));
    return;
  }
  const chunk = (text, finish = null) => ({
    ...base, choices: [{ text, index: 0, logprobs: null, finish_reason: finish }] });
  const events = words.map((w) => [null, chunk(w)]);
  events.push([null, chunk("", "stop")]);
  if (request.stream_options?.include_usage)
    events.push([null, { ...base, choices: [], usage: completionUsage }]);
  events.push([null, "[DONE]"]);
  sse(res, events);
}
// An Anthropic Messages answer: text, or a tool call when tools are offered
// and no tool result is in the conversation yet.
function anthropic(request, res) {
  const last = request.messages.at(-1);
  const hasResult = Array.isArray(last.content)
    && last.content.some((b) => b.type === "tool_result");
  const useTool = request.tools && !hasResult;
  const text = hasResult ? "It is 18C in Paris." : words.join("");
  if (!request.stream) {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({
      id: "msg_fake", type: "message", role: "assistant", model: request.model,
      content: useTool
        ? [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }]
        : [{ type: "text", text }],
      stop_reason: useTool ? "tool_use" : "end_turn",
      usage: { input_tokens: 9, output_tokens: 3 },
    }));
    return;
  }
  const events = [["message_start", { type: "message_start", message: {
    id: "msg_fake", type: "message", role: "assistant", content: [], model: request.model,
    usage: { input_tokens: 9, output_tokens: 1 } } }]];
  if (useTool) {
    events.push(["content_block_start", { type: "content_block_start", index: 0,
      content_block: { type: "tool_use", id: "toolu_1", name: "get_weather", input: {} } }]);
    for (const part of ['{"city"', ': "Paris"}'])
      events.push(["content_block_delta", { type: "content_block_delta", index: 0,
        delta: { type: "input_json_delta", partial_json: part } }]);
  } else {
    events.push(["content_block_start", { type: "content_block_start", index: 0,
      content_block: { type: "text", text: "" } }]);
    events.push(["ping", { type: "ping" }]);
    for (const w of hasResult ? [text] : words)
      events.push(["content_block_delta", { type: "content_block_delta", index: 0,
        delta: { type: "text_delta", text: w } }]);
  }
  events.push(["content_block_stop", { type: "content_block_stop", index: 0 }]);
  events.push(["message_delta", { type: "message_delta",
    delta: { stop_reason: useTool ? "tool_use" : "end_turn" }, usage: { output_tokens: 3 } }]);
  events.push(["message_stop", { type: "message_stop" }]);
  sse(res, events);
}
const upstream = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    seen.push({ url: req.url, auth: req.headers.authorization,
                key: req.headers["x-api-key"], body });
    const request = JSON.parse(body);
    if (req.url.endsWith("/v1/messages")) anthropic(request, res);
    else if (req.url.endsWith("/embeddings")) embeddings(request, res);
    else if (req.url.endsWith("/v1/completions")) completions(request, res);
    else openai(request, res);
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
    endpoints: [chat, completions, embeddings]
  fake-gpt:
    provider: openai
    model: "gpt-fake-upstream"
    api_key: "${upstreamKey}"
    base_url: "http://127.0.0.1:${upstreamPort}/v1"
    endpoints: [chat, completions, embeddings]
  fake-claude:
    provider: anthropic
    model: "claude-fake-upstream"
    api_key: "${upstreamKey}"
    base_url: "http://127.0.0.1:${upstreamPort}"
routing:
  default_model: echo
health:
  check_interval_seconds: 0
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
  const endpoints = {};
  for await (const m of client.models.list()) {
    ids.push(m.id);
    endpoints[m.id] = m.endpoints;
  }
  assert.deepEqual(ids, ["echo", "fake-gpt", "fake-claude"]);
  assert.deepEqual(endpoints, { echo: ["chat", "completions", "embeddings"],
                                "fake-gpt": ["chat", "completions", "embeddings"],
                                "fake-claude": ["chat"] });
});

// -- embeddings -------------------------------------------------------------------
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const assertUnit = (v, length) => {
  assert.ok(Array.isArray(v), `not an array: ${typeof v}`);
  assert.equal(v.length, length);
  for (const x of v) assert.equal(typeof x, "number");
  assert.ok(Math.abs(norm(v) - 1) < 1e-5, `norm ${norm(v)}`);
};
let helloVector = null;

// Without encoding_format the SDK asks for base64 and decodes it itself.
await check("embeddings on the echo model, base64 by default", async () => {
  const r = await client.embeddings.create({ model: "echo", input: "hello" });
  assert.equal(r.object, "list");
  assert.equal(r.model, "echo");
  assert.equal(r.data.length, 1);
  assert.equal(r.data[0].index, 0);
  assertUnit(r.data[0].embedding, 16);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens);
  helloVector = r.data[0].embedding;
});

await check("embeddings as floats are the same numbers", async () => {
  const r = await client.embeddings.create({ model: "echo", input: "hello",
                                             encoding_format: "float" });
  const v = r.data[0].embedding;
  assertUnit(v, 16);
  assert.ok(helloVector, "no base64 answer to compare with");
  for (let i = 0; i < v.length; i++)
    assert.ok(Math.abs(v[i] - helloVector[i]) < 1e-6, `item ${i}: ${v[i]} vs ${helloVector[i]}`);
});

await check("embeddings with dimensions for a list of inputs", async () => {
  const r = await client.embeddings.create({ model: "echo", input: ["first", "second"],
                                             dimensions: 8 });
  assert.equal(r.data.length, 2);
  assert.deepEqual(r.data.map((d) => d.index), [0, 1]);
  for (const d of r.data) assertUnit(d.embedding, 8);
  assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
});

await check("embeddings through an OpenAI-compatible upstream", async () => {
  const r = await client.embeddings.create({ model: "fake-gpt", input: "hi" });
  assert.equal(r.model, "fake-gpt");
  assert.equal(r.data.length, 1);
  assert.deepEqual(r.data[0].embedding, upstreamVector);
  const last = seen.at(-1);
  assert.equal(last.url, "/v1/embeddings");
  assert.equal(last.auth, `Bearer ${upstreamKey}`);
  assert.deepEqual(JSON.parse(last.body),
                   { model: "gpt-fake-upstream", input: "hi", encoding_format: "base64" });
});

await check("embeddings on a chat-only model are a BadRequestError", async () => {
  const before = seen.length;
  await assert.rejects(
    client.embeddings.create({ model: "fake-claude", input: "hello" }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400
           && e.code === "endpoint_unsupported" && e.param === "model");
  assert.equal(seen.length, before);
});

// -- legacy text completions ------------------------------------------------------
await check("completions on the echo model", async () => {
  const r = await client.completions.create({ model: "echo", prompt: "hello from the sdk" });
  assert.equal(r.object, "text_completion");
  assert.equal(r.model, "echo");
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].index, 0);
  assert.equal(r.choices[0].text, "hello from the sdk");
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.completion_tokens, r.usage.prompt_tokens);
});

await check("completions on the echo model with a list of prompts", async () => {
  const r = await client.completions.create({ model: "echo", prompt: ["first", "second one"] });
  assert.deepEqual(r.choices.map((c) => [c.index, c.text, c.finish_reason]),
                   [[0, "first", "stop"], [1, "second one", "stop"]]);
});

await check("completions through an OpenAI-compatible upstream", async () => {
  const r = await client.completions.create({ model: "fake-gpt", prompt: "Say hi",
                                              max_tokens: 5, temperature: 0.2 });
  assert.equal(r.object, "text_completion");
  assert.equal(r.model, "fake-gpt");
  assert.equal(r.choices[0].text, "from upstream");
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.deepEqual(r.usage, completionUsage);
  const last = seen.at(-1);
  assert.equal(last.url, "/v1/completions");
  assert.equal(last.auth, `Bearer ${upstreamKey}`);
  assert.deepEqual(JSON.parse(last.body),
                   { model: "gpt-fake-upstream", prompt: "Say hi", max_tokens: 5, temperature: 0.2 });
});

// Streamed completions give the same text and finish reason as whole ones.
for (const model of ["echo", "fake-gpt"]) {
  await check(`streamed completions on ${model} match the non-streaming answer`, async () => {
    const prompt = "from upstream";
    const whole = await client.completions.create({ model, prompt });
    const before = seen.length;
    const stream = await client.completions.create({
      model, prompt, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, "text_completion");
      assert.equal(chunk.model, model);
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        assert.equal(choice.index, 0);
        text += choice.text ?? "";
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    assert.ok(chunks > 0);
    assert.equal(text, whole.choices[0].text);
    assert.equal(finish, whole.choices[0].finish_reason);
    assert.ok(usage && usage.total_tokens > 0, `usage ${JSON.stringify(usage)}`);
    if (model === "fake-gpt") {
      assert.equal(seen.length, before + 1);
      const sent = JSON.parse(seen.at(-1).body);
      assert.equal(seen.at(-1).url, "/v1/completions");
      assert.equal(sent.stream, true);
      assert.deepEqual(sent.stream_options, { include_usage: true });
      assert.deepEqual(usage, completionUsage);
    } else {
      assert.equal(seen.length, before);
    }
  });
}

await check("completions on a chat-only model are a BadRequestError", async () => {
  const before = seen.length;
  await assert.rejects(
    client.completions.create({ model: "fake-claude", prompt: "hello" }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400
           && e.code === "endpoint_unsupported" && e.param === "model");
  assert.equal(seen.length, before);
});

// Streams give the same text and finish reason as the non-streaming call.
for (const model of ["fake-gpt", "fake-claude", "echo"]) {
  await check(`streaming on ${model} matches the non-streaming answer`, async () => {
    const messages = [{ role: "user", content: "from upstream" }];
    const whole = await client.chat.completions.create({ model, messages });
    const stream = await client.chat.completions.create({
      model, messages, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.model, model);
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.delta?.content ?? "";
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finish, whole.choices[0].finish_reason);
    if (model !== "fake-gpt") assert.ok(usage && usage.total_tokens > 0);
  });
}

await check("a tool-calling round trip through the Anthropic model", async () => {
  const tools = [{ type: "function", function: { name: "get_weather",
    description: "Weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } },
                  required: ["city"] } } }];
  const messages = [{ role: "user", content: "Weather in Paris?" }];
  const first = await client.chat.completions.create({ model: "fake-claude", messages, tools });
  const call = first.choices[0].message.tool_calls?.[0];
  assert.equal(first.choices[0].finish_reason, "tool_calls");
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
  // The same call, streamed, assembles to the same arguments.
  const stream = await client.chat.completions.create({
    model: "fake-claude", messages, tools, stream: true });
  let args = "";
  let streamedName = "";
  for await (const chunk of stream)
    for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
      if (tc.function?.name) streamedName = tc.function.name;
      args += tc.function?.arguments ?? "";
    }
  assert.equal(streamedName, "get_weather");
  assert.deepEqual(JSON.parse(args), { city: "Paris" });
  messages.push(first.choices[0].message);
  messages.push({ role: "tool", tool_call_id: call.id, content: "18C" });
  const second = await client.chat.completions.create({ model: "fake-claude", messages, tools });
  assert.equal(second.choices[0].message.content, "It is 18C in Paris.");
  const sent = JSON.parse(seen.at(-1).body);
  assert.equal(sent.messages[1].content[0].type, "tool_use");
  assert.equal(sent.messages[2].content[0].type, "tool_result");
  assert.equal(sent.messages[2].content[0].tool_use_id, "toolu_1");
  assert.equal(seen.at(-1).key, upstreamKey);
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
           && typeof e.headers.get("x-request-id") === "string");
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

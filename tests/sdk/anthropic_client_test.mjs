// The official `@anthropic-ai/sdk` npm client against the real pw-router
// binary, on Anthropic's Messages API inbound (POST /v1/messages, POST
// /v1/messages/count_tokens): the echo model whole and streamed, a fake
// Anthropic upstream (a tool call and its result, a stream relayed event by
// event, a stream that breaks, token counts), a fake OpenAI-compatible
// upstream behind the same API (the request translated to a chat completion,
// the answer and its stream translated back: text, usage, a tool call and
// its result; count_tokens refused), and the SDK's error classes for the
// gateway's Anthropic error envelope.
//
// @anthropic-ai/sdk 1.17 sends its apiKey as `Authorization: Bearer`, not
// `x-api-key`. The main client here sends the key in `X-Api-Key`, as
// Anthropic's API documents it and as most Anthropic clients do, and drops
// `Authorization`; one check uses the SDK's own default. A recording fetch
// shows which header each request really carried. The SDK needs Node.js 20
// or later (its README); it streams with Node's built-in fetch.
//
// Usage: node anthropic_client_test.mjs /path/to/pw-router
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
let Anthropic;
try {
  const sdk = require("@anthropic-ai/sdk");
  Anthropic = sdk.default ?? sdk;
} catch {
  console.error(`the @anthropic-ai/sdk package is missing: run 'npm ci' in ${here}`);
  process.exit(1);
}

const binary = process.argv[2];
assert.ok(binary, "usage: node anthropic_client_test.mjs /path/to/pw-router");
const key = "sk-sdk-anthropic-test-3d9c27";
const echoOnlyKey = "sk-sdk-anthropic-echo-only-81f0";
const upstreamKey = "sk-sdk-anthropic-upstream-5a42";

// Nothing here may hang: the whole test has one bounded budget.
const budget = setTimeout(() => {
  console.error("anthropic SDK test: timed out");
  process.exit(1);
}, 60_000);

// -- a fake Anthropic upstream --------------------------------------------------
// Every request it gets, and the events of the last stream it sent.
const seen = [];
let lastStream = [];
const words = ["from", " up", "stream"];
const json = (res, status, body) => {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
};
const frame = ([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
// A Messages answer: a tool call when tools are offered and no tool result is
// in the conversation yet, text otherwise; SSE events for "stream": true. The
// provider model "claude-broken" breaks its stream after the first word.
function messages(request, res) {
  const last = request.messages.at(-1);
  const hasResult = Array.isArray(last.content)
    && last.content.some((b) => b.type === "tool_result");
  const useTool = Array.isArray(request.tools) && request.tools.length > 0 && !hasResult;
  const text = hasResult ? "It is 18C in Paris." : words.join("");
  if (!request.stream) {
    json(res, 200, {
      id: "msg_fake", type: "message", role: "assistant", model: request.model,
      content: useTool
        ? [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }]
        : [{ type: "text", text }],
      stop_reason: useTool ? "tool_use" : "end_turn", stop_sequence: null,
      usage: { input_tokens: 9, output_tokens: 3 },
    });
    return;
  }
  const events = [
    ["message_start", { type: "message_start", message: {
      id: "msg_fake", type: "message", role: "assistant", model: request.model, content: [],
      stop_reason: null, stop_sequence: null, usage: { input_tokens: 9, output_tokens: 1 } } }],
    ["content_block_start", { type: "content_block_start", index: 0,
      content_block: { type: "text", text: "" } }],
    ["ping", { type: "ping" }],
    ...words.map((w) => ["content_block_delta", { type: "content_block_delta", index: 0,
      delta: { type: "text_delta", text: w } }]),
    ["content_block_stop", { type: "content_block_stop", index: 0 }],
    ["message_delta", { type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 3 } }],
    ["message_stop", { type: "message_stop" }],
  ];
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  if (request.model === "claude-broken") {
    // message_start, content_block_start, ping, "from": then the connection
    // drops in the middle of the body.
    lastStream = events.slice(0, 4);
    res.write(lastStream.map(frame).join(""), () => res.socket.destroy());
    return;
  }
  lastStream = events;
  for (const e of events) res.write(frame(e));
  res.end();
}
// A chat completion (the OpenAI-compatible model behind /v1/messages): a
// tool call when tools are offered and no tool message is in the
// conversation yet, text otherwise; chunks for "stream": true, with a usage
// chunk when stream_options asks for one.
const chatUsage = { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 };
const chatCall = { id: "call_1", type: "function",
  function: { name: "get_weather", arguments: JSON.stringify({ city: "Paris" }) } };
function chat(request, res) {
  const hasResult = request.messages.some((m) => m.role === "tool");
  const useTool = Array.isArray(request.tools) && request.tools.length > 0 && !hasResult;
  const text = hasResult ? "It is 18C in Paris." : words.join("");
  if (!request.stream) {
    json(res, 200, {
      id: "chatcmpl-fake", object: "chat.completion", created: 1700000000, model: request.model,
      choices: [{ index: 0, finish_reason: useTool ? "tool_calls" : "stop",
        message: useTool ? { role: "assistant", content: null, tool_calls: [chatCall] }
                         : { role: "assistant", content: text } }],
      usage: chatUsage,
    });
    return;
  }
  const chunk = (delta, finish = null) => ({
    id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1700000000,
    model: request.model, choices: [{ index: 0, delta, finish_reason: finish }] });
  const chunks = [chunk({ role: "assistant", content: "" })];
  if (useTool) {
    // The id and name first, the arguments in pieces, as OpenAI sends them.
    const { arguments: args, ...rest } = chatCall.function;
    chunks.push(chunk({ tool_calls: [{ index: 0, id: chatCall.id, type: "function",
                                       function: { ...rest, arguments: "" } }] }));
    for (const piece of [args.slice(0, 8), args.slice(8)])
      chunks.push(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
  } else {
    for (const w of words) chunks.push(chunk({ content: w }));
  }
  chunks.push(chunk({}, useTool ? "tool_calls" : "stop"));
  if (request.stream_options?.include_usage)
    chunks.push({ id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1700000000,
                  model: request.model, choices: [], usage: chatUsage });
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  for (const c of chunks) res.write(`data: ${JSON.stringify(c)}\n\n`);
  res.end("data: [DONE]\n\n");
}
const upstream = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    seen.push({ method: req.method, url: req.url, headers: req.headers, body });
    let request;
    try {
      request = JSON.parse(body);
    } catch {
      json(res, 400, { type: "error", error: { type: "invalid_request_error", message: "not JSON" } });
      return;
    }
    if (req.method === "POST" && req.url === "/v1/messages/count_tokens")
      json(res, 200, { input_tokens: 17 });
    else if (req.method === "POST" && req.url === "/v1/messages") messages(request, res);
    else if (req.method === "POST" && req.url === "/v1/chat/completions") chat(request, res);
    else json(res, 404, { type: "error", error: { type: "not_found_error", message: req.url } });
  });
});
await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
const upstreamPort = upstream.address().port;

// -- the gateway ----------------------------------------------------------------
const dir = mkdtempSync(path.join(tmpdir(), "pw-router-anthropic-sdk-"));
const config = path.join(dir, "config.yaml");
writeFileSync(config, `
server:
  api_keys:
    - key: "${key}"
      name: "sdk"
      allowed_models: ["*"]
    - key: "${echoOnlyKey}"
      name: "echo-only"
      allowed_models: ["echo"]
models:
  echo:
    provider: echo
    endpoints: [chat, messages]
  fake-claude:
    provider: anthropic
    model: "claude-fake-upstream"
    api_key: "${upstreamKey}"
    base_url: "http://127.0.0.1:${upstreamPort}"
    endpoints: [chat, messages]
  fake-broken:
    provider: anthropic
    model: "claude-broken"
    api_key: "${upstreamKey}"
    base_url: "http://127.0.0.1:${upstreamPort}"
    endpoints: [messages]
  fake-gpt:
    provider: openai
    model: "gpt-fake-upstream"
    api_key: "${upstreamKey}"
    base_url: "http://127.0.0.1:${upstreamPort}/v1"
    endpoints: [chat, messages]
  chat-only:
    provider: anthropic
    model: "claude-chat-only"
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

// What the SDK really sent: every request's URL and headers.
const sdkSent = [];
const recordingFetch = (url, init = {}) => {
  sdkSent.push({ url: String(url), headers: new Headers(init.headers) });
  return fetch(url, init);
};
const baseURL = `http://127.0.0.1:${port}`;
const options = { baseURL, maxRetries: 0, timeout: 10_000, fetch: recordingFetch };
// The key in X-Api-Key, no Authorization.
const withXApiKey = (k) => new Anthropic({
  ...options, apiKey: k, defaultHeaders: { "X-Api-Key": k, Authorization: null } });
const client = withXApiKey(key);
const echoOnly = withXApiKey(echoOnlyKey);
// The SDK's own default: Authorization: Bearer.
const bearerClient = new Anthropic({ ...options, apiKey: key });

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

// The last request the fake upstream got, checked for the model's own key
// and for no client key anywhere in it.
function lastUpstream(url) {
  const last = seen.at(-1);
  assert.ok(last, "the upstream got nothing");
  assert.equal(last.method, "POST");
  assert.equal(last.url, url);
  assert.equal(last.headers["x-api-key"], upstreamKey);
  const everything = JSON.stringify(last.headers) + last.body;
  for (const secret of [key, echoOnlyKey])
    assert.ok(!everything.includes(secret), "a client key reached the upstream");
  return last;
}

const user = (content) => [{ role: "user", content }];
// The error body the SDK parsed: Anthropic's envelope with `type`.
const anthropicError = (e, status, type) => {
  assert.equal(e.status, status);
  assert.equal(e.error?.type, "error", JSON.stringify(e.error));
  assert.equal(e.error?.error?.type, type, JSON.stringify(e.error));
  assert.equal(typeof e.error?.error?.message, "string");
  assert.equal(e.type, type);
  return true;
};
const streamTypes = ["message_start", "content_block_start", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"];

// -- the echo model ---------------------------------------------------------------
await check("messages.create on the echo model, the key in x-api-key", async () => {
  const before = seen.length;
  const r = await client.messages.create({
    model: "echo", max_tokens: 64, messages: user("hello from the sdk") });
  const sent = sdkSent.at(-1);
  assert.equal(new URL(sent.url).pathname, "/v1/messages");
  assert.equal(sent.headers.get("x-api-key"), key);
  assert.equal(sent.headers.get("authorization"), null);
  assert.equal(r.type, "message");
  assert.equal(r.role, "assistant");
  assert.equal(r.model, "echo");
  assert.ok(r.id.startsWith("msg_echo_"), r.id);
  assert.equal(r.content.length, 1);
  assert.equal(r.content[0].type, "text");
  assert.equal(r.content[0].text, "hello from the sdk");
  assert.equal(r.stop_reason, "end_turn");
  assert.equal(r.stop_sequence, null);
  assert.ok(r.usage.input_tokens > 0);
  assert.ok(r.usage.output_tokens > 0);
  assert.equal(seen.length, before);
});

await check("messages.create with the SDK's default Authorization: Bearer", async () => {
  const r = await bearerClient.messages.create({
    model: "echo", max_tokens: 64, system: "ignored by echo",
    messages: [{ role: "user", content: [{ type: "text", text: "first" },
                                         { type: "text", text: "second" }] }] });
  const sent = sdkSent.at(-1);
  assert.equal(sent.headers.get("authorization"), `Bearer ${key}`);
  assert.equal(sent.headers.get("x-api-key"), null);
  assert.equal(r.model, "echo");
  assert.equal(r.content[0].text, "first\nsecond");
});

await check("messages.stream on the echo model", async () => {
  const prompt = "stream me back, please";
  const whole = await client.messages.create({ model: "echo", max_tokens: 64, messages: user(prompt) });
  const stream = client.messages.stream({ model: "echo", max_tokens: 64, messages: user(prompt) });
  let text = "";
  const types = [];
  stream.on("text", (delta) => (text += delta));
  stream.on("streamEvent", (event) => types.push(event.type));
  const final = await stream.finalMessage();
  assert.deepEqual(types, streamTypes);
  assert.equal(final.model, "echo");
  assert.ok(final.id.startsWith("msg_echo_"), final.id);
  assert.equal(final.content.length, 1);
  assert.equal(final.content[0].type, "text");
  assert.equal(final.content[0].text, prompt);
  assert.equal(text, prompt);
  assert.equal(final.stop_reason, "end_turn");
  assert.equal(final.usage.output_tokens, whole.usage.output_tokens);
  assert.equal(await stream.finalText(), prompt);
});

await check("messages.countTokens on the echo model", async () => {
  const before = seen.length;
  const r = await client.messages.countTokens({
    model: "echo", system: "be brief", messages: user("count these tokens") });
  assert.equal(typeof r.input_tokens, "number");
  assert.ok(r.input_tokens > 0);
  assert.equal(seen.length, before);
});

// -- the fake Anthropic upstream -----------------------------------------------------
const tools = [{ name: "get_weather", description: "Weather for a city",
  input_schema: { type: "object", properties: { city: { type: "string" } },
                  required: ["city"] } }];

await check("a tool call through an Anthropic upstream, and its result", async () => {
  const params = { model: "fake-claude", max_tokens: 200, system: "Be brief.", tools,
                   tool_choice: { type: "auto" }, temperature: 0.2,
                   metadata: { user_id: "sdk-user" }, messages: user("Weather in Paris?") };
  const first = await client.messages.create(params);
  assert.equal(first.id, "msg_fake");
  assert.equal(first.model, "fake-claude");
  assert.equal(first.stop_reason, "tool_use");
  assert.equal(first.content.length, 1);
  const call = first.content[0];
  assert.equal(call.type, "tool_use");
  assert.equal(call.id, "toolu_1");
  assert.equal(call.name, "get_weather");
  assert.deepEqual(call.input, { city: "Paris" });
  assert.deepEqual(first.usage, { input_tokens: 9, output_tokens: 3 });
  const got = lastUpstream("/v1/messages");
  // The body as the SDK sent it, the provider's model id in it.
  assert.deepEqual(JSON.parse(got.body), { ...params, model: "claude-fake-upstream" });
  // The SDK's API version reached the upstream.
  assert.equal(got.headers["anthropic-version"], sdkSent.at(-1).headers.get("anthropic-version"));
  // The result goes back, and the answer is text.
  const messages = [...params.messages, { role: "assistant", content: first.content },
    { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "18C" }] }];
  const second = await client.messages.create({ ...params, messages });
  assert.equal(second.stop_reason, "end_turn");
  assert.equal(second.content[0].type, "text");
  assert.equal(second.content[0].text, "It is 18C in Paris.");
  const sent = JSON.parse(lastUpstream("/v1/messages").body);
  assert.deepEqual(sent.messages, messages);
  assert.deepEqual(sent.tools, tools);
});

await check("a stream through an Anthropic upstream is relayed event by event", async () => {
  const before = seen.length;
  const stream = await client.messages.create({
    model: "fake-claude", max_tokens: 64, stream: true, messages: user("hi") });
  const got = [];
  for await (const event of stream) got.push(event);
  assert.equal(seen.length, before + 1);
  const forwarded = JSON.parse(lastUpstream("/v1/messages").body);
  assert.equal(forwarded.stream, true);
  assert.equal(forwarded.model, "claude-fake-upstream");
  // The SDK skips pings; everything else arrives unchanged but the model.
  const expected = lastStream.filter(([event]) => event !== "ping").map(([, data]) => data);
  expected[0] = { ...expected[0], message: { ...expected[0].message, model: "fake-claude" } };
  assert.deepEqual(got, expected);
});

await check("messages.stream through an Anthropic upstream", async () => {
  const stream = client.messages.stream({ model: "fake-claude", max_tokens: 64, messages: user("hi") });
  let text = "";
  stream.on("text", (delta) => (text += delta));
  const final = await stream.finalMessage();
  assert.equal(text, words.join(""));
  assert.equal(final.id, "msg_fake");
  assert.equal(final.model, "fake-claude");
  assert.deepEqual(final.content, [{ type: "text", text: words.join("") }]);
  assert.equal(final.stop_reason, "end_turn");
  assert.equal(final.usage.input_tokens, 9);
  assert.equal(final.usage.output_tokens, 3);
  assert.equal(JSON.parse(lastUpstream("/v1/messages").body).stream, true);
});

await check("a stream that breaks mid-way ends in an APIError of type api_error", async () => {
  const stream = await client.messages.create({
    model: "fake-broken", max_tokens: 64, stream: true, messages: user("hi") });
  let text = "";
  await assert.rejects(async () => {
    for await (const event of stream)
      if (event.type === "content_block_delta") text += event.delta.text;
  }, (e) => e instanceof Anthropic.APIError && e.error?.type === "error"
            && e.error?.error?.type === "api_error" && e.type === "api_error");
  assert.equal(text, words[0]);
  assert.equal(JSON.parse(lastUpstream("/v1/messages").body).model, "claude-broken");
});

await check("messages.countTokens through an Anthropic upstream", async () => {
  const params = { model: "fake-claude", system: "Be brief.", tools,
                   messages: [{ role: "user", content: [{ type: "text", text: "Count me" }] }] };
  const r = await client.messages.countTokens(params);
  assert.equal(r.input_tokens, 17);
  const got = lastUpstream("/v1/messages/count_tokens");
  assert.deepEqual(JSON.parse(got.body), { ...params, model: "claude-fake-upstream" });
});

// -- the fake OpenAI-compatible upstream ----------------------------------------------
// The last request the fake upstream got on chat/completions, checked for
// the model's own key as a bearer token, none of Anthropic's headers (the
// SDK sends anthropic-version on every request) and no client key.
function lastChat() {
  const last = seen.at(-1);
  assert.ok(last, "the upstream got nothing");
  assert.equal(last.method, "POST");
  assert.equal(last.url, "/v1/chat/completions");
  assert.equal(last.headers.authorization, `Bearer ${upstreamKey}`);
  for (const name of ["x-api-key", "anthropic-version", "anthropic-beta"])
    assert.equal(last.headers[name], undefined, `${name} reached the upstream`);
  const everything = JSON.stringify(last.headers) + last.body;
  for (const secret of [key, echoOnlyKey])
    assert.ok(!everything.includes(secret), "a client key reached the upstream");
  return JSON.parse(last.body);
}

await check("messages.create through an OpenAI-compatible upstream", async () => {
  const r = await client.messages.create({
    model: "fake-gpt", max_tokens: 100, system: "Be brief.", temperature: 0.2,
    stop_sequences: ["END"], metadata: { user_id: "sdk-user" }, messages: user("hi") });
  assert.equal(r.id, "msg_chatcmpl-fake");
  assert.equal(r.type, "message");
  assert.equal(r.role, "assistant");
  assert.equal(r.model, "fake-gpt");
  assert.deepEqual(r.content, [{ type: "text", text: words.join("") }]);
  assert.equal(r.stop_reason, "end_turn");
  assert.equal(r.stop_sequence, null);
  assert.deepEqual(r.usage, { input_tokens: 9, output_tokens: 3 });
  assert.deepEqual(lastChat(), {
    model: "gpt-fake-upstream",
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }],
    max_completion_tokens: 100, temperature: 0.2, stop: ["END"], user: "sdk-user" });
});

await check("messages.stream through an OpenAI-compatible upstream", async () => {
  const stream = client.messages.stream({ model: "fake-gpt", max_tokens: 64, messages: user("hi") });
  let text = "";
  const types = [];
  stream.on("text", (delta) => (text += delta));
  stream.on("streamEvent", (event) => types.push(event.type));
  const final = await stream.finalMessage();
  assert.deepEqual(types, ["message_start", "content_block_start",
    ...words.map(() => "content_block_delta"), "content_block_stop", "message_delta",
    "message_stop"]);
  assert.equal(text, words.join(""));
  assert.equal(final.id, "msg_chatcmpl-fake");
  assert.equal(final.model, "fake-gpt");
  assert.deepEqual(final.content, [{ type: "text", text: words.join("") }]);
  assert.equal(final.stop_reason, "end_turn");
  // The usage of the stream's last chunk, in message_delta.
  assert.equal(final.usage.input_tokens, 9);
  assert.equal(final.usage.output_tokens, 3);
  assert.equal(await stream.finalText(), words.join(""));
  const sent = lastChat();
  assert.equal(sent.stream, true);
  assert.deepEqual(sent.stream_options, { include_usage: true });
});

await check("a tool call through an OpenAI-compatible upstream, and its result", async () => {
  const params = { model: "fake-gpt", max_tokens: 200, tools, tool_choice: { type: "any" },
                   messages: user("Weather in Paris?") };
  const first = await client.messages.create(params);
  assert.equal(first.model, "fake-gpt");
  assert.equal(first.stop_reason, "tool_use");
  assert.equal(first.content.length, 1);
  const call = first.content[0];
  assert.equal(call.type, "tool_use");
  assert.equal(call.id, "call_1");
  assert.equal(call.name, "get_weather");
  assert.deepEqual(call.input, { city: "Paris" });
  const sent = lastChat();
  assert.deepEqual(sent.tools, [{ type: "function", function: {
    name: tools[0].name, description: tools[0].description, parameters: tools[0].input_schema } }]);
  assert.equal(sent.tool_choice, "required");
  // The result goes back as a tool message after the assistant's call.
  const messages = [...params.messages, { role: "assistant", content: first.content },
    { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "18C" }] }];
  const second = await client.messages.create({ ...params, tool_choice: { type: "auto" }, messages });
  assert.equal(second.stop_reason, "end_turn");
  assert.deepEqual(second.content, [{ type: "text", text: "It is 18C in Paris." }]);
  const round = lastChat();
  assert.equal(round.tool_choice, "auto");
  assert.equal(round.messages.length, 3);
  assert.deepEqual(round.messages[0], { role: "user", content: "Weather in Paris?" });
  const [assistant, result] = round.messages.slice(1);
  assert.equal(assistant.role, "assistant");
  assert.equal(assistant.content, null);
  assert.equal(assistant.tool_calls.length, 1);
  assert.equal(assistant.tool_calls[0].id, "call_1");
  assert.equal(assistant.tool_calls[0].type, "function");
  assert.equal(assistant.tool_calls[0].function.name, "get_weather");
  assert.deepEqual(JSON.parse(assistant.tool_calls[0].function.arguments), { city: "Paris" });
  assert.deepEqual(result, { role: "tool", tool_call_id: "call_1", content: "18C" });
});

await check("a streamed tool call through an OpenAI-compatible upstream", async () => {
  const stream = client.messages.stream({
    model: "fake-gpt", max_tokens: 200, tools, messages: user("Weather in Paris?") });
  let partialJson = "";
  stream.on("inputJson", (partial) => (partialJson += partial));
  const final = await stream.finalMessage();
  assert.equal(final.stop_reason, "tool_use");
  assert.equal(final.content.length, 1);
  const call = final.content[0];
  assert.equal(call.type, "tool_use");
  assert.equal(call.id, "call_1");
  assert.equal(call.name, "get_weather");
  assert.deepEqual(call.input, { city: "Paris" });
  assert.deepEqual(JSON.parse(partialJson), { city: "Paris" });
  assert.equal(final.usage.output_tokens, 3);
  assert.equal(lastChat().stream, true);
});

await check("messages.countTokens on an OpenAI-compatible model is a BadRequestError", async () => {
  const before = seen.length;
  await assert.rejects(
    client.messages.countTokens({ model: "fake-gpt", messages: user("x") }),
    (e) => e instanceof Anthropic.BadRequestError && anthropicError(e, 400, "invalid_request_error")
           && e.message.includes("only anthropic and echo models count tokens"));
  assert.equal(seen.length, before);
});

// -- errors ------------------------------------------------------------------------
await check("a model that does not exist is a NotFoundError", async () => {
  const before = seen.length;
  await assert.rejects(
    client.messages.create({ model: "claude-nope", max_tokens: 8, messages: user("x") }),
    (e) => e instanceof Anthropic.NotFoundError && anthropicError(e, 404, "not_found_error")
           && e.message.includes("claude-nope"));
  await assert.rejects(
    client.messages.countTokens({ model: "claude-nope", messages: user("x") }),
    (e) => e instanceof Anthropic.NotFoundError && anthropicError(e, 404, "not_found_error"));
  assert.equal(seen.length, before);
});

await check("a key that may not use the model is a PermissionDeniedError", async () => {
  const before = seen.length;
  await assert.rejects(
    echoOnly.messages.create({ model: "fake-claude", max_tokens: 8, messages: user("x") }),
    (e) => e instanceof Anthropic.PermissionDeniedError && anthropicError(e, 403, "permission_error"));
  await assert.rejects(
    echoOnly.messages.countTokens({ model: "fake-claude", messages: user("x") }),
    (e) => e instanceof Anthropic.PermissionDeniedError && anthropicError(e, 403, "permission_error"));
  // The same key may use echo.
  const r = await echoOnly.messages.create({ model: "echo", max_tokens: 8, messages: user("ok") });
  assert.equal(r.content[0].text, "ok");
  assert.equal(seen.length, before);
});

await check("a wrong key is an AuthenticationError", async () => {
  const bad = withXApiKey("sk-nope");
  await assert.rejects(
    bad.messages.create({ model: "echo", max_tokens: 8, messages: user("x") }),
    (e) => e instanceof Anthropic.AuthenticationError && anthropicError(e, 401, "authentication_error"));
});

await check("a bad body and a model that does not serve messages are BadRequestErrors", async () => {
  const before = seen.length;
  await assert.rejects(
    client.messages.create({ model: "echo", max_tokens: 0, messages: user("x") }),
    (e) => e instanceof Anthropic.BadRequestError && anthropicError(e, 400, "invalid_request_error")
           && e.message.includes("max_tokens"));
  await assert.rejects(
    client.messages.create({ model: "chat-only", max_tokens: 8, messages: user("x") }),
    (e) => e instanceof Anthropic.BadRequestError && anthropicError(e, 400, "invalid_request_error"));
  assert.equal(seen.length, before);
});

gw.kill("SIGTERM");
const code = await new Promise((r) => gw.on("exit", (c) => r(c)));
await check("the gateway exits 0 on SIGTERM", async () => assert.equal(code, 0));
await check("no key in the gateway's output", async () => {
  for (const secret of [key, echoOnlyKey, upstreamKey]) assert.ok(!(out + err).includes(secret));
});
upstream.close();
rmSync(dir, { recursive: true, force: true });
clearTimeout(budget);
process.exit(failed ? 1 : 0);

// The browser half of the Open WebUI test; run.sh starts everything it talks to and sets its environment.
//
// For each example model: a new chat in Open WebUI, one message typed into it, the streamed answer read
// from the page. The agent's tool call must show as a tool-call block (and its status line), chat_stream's
// reasoning as a Thinking block, rag's sources under its answer, and every chat must get, in the sidebar,
// the title the service's task answer gave. One screenshot per model goes to ARTIFACTS. Every wait is
// bounded.
//
// Then the service as Open WebUI's tool server, once over OpenAPI and once over MCP (run.sh configures both in
// TOOL_SERVER_CONNECTIONS): a chat with the `llm` model and that server's tools on, where the LLM calls the
// search tool (the rag example's typed entry). Open WebUI must call the service's route for it (the service's
// access log shows the call), hand the result back to the LLM, and show the answer and the tool call.
//
// With REAL_MODEL=1 the service behind Open WebUI talks to a real LLM (llama-server, see run.sh): one chat
// with SCENARIO.real_model, whose answer must appear in the page and finish. A small model's words are not
// stable, so they are not checked; the sidebar title (the service's, from the question) is.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const WEBUI_URL = requireEnv('WEBUI_URL');
const ARTIFACTS = requireEnv('ARTIFACTS');
const SCENARIO = JSON.parse(fs.readFileSync(requireEnv('SCENARIO'), 'utf8'));
const REAL_MODEL = process.env.REAL_MODEL === '1';
const SERVICE_URL = process.env.SERVICE_URL;
const SERVICE_KEY = process.env.SERVICE_KEY;
const SERVICE_LOG = process.env.SERVICE_LOG;
const STEP_TIMEOUT_MS = 90_000;
const TOTAL_TIMEOUT_MS = 10 * 60_000;
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

function requireEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through run.sh`);
  return value;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// Open WebUI shows its release notes once, shortly after the first page load; they cover the page.
async function dismissReleaseNotes(page, waitMs) {
  const button = page.getByRole('button', { name: "Okay, Let's Go!" });
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline && !(await button.isVisible())) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if (await button.isVisible()) {
    await button.click();
    await button.waitFor({ state: 'hidden', timeout: STEP_TIMEOUT_MS });
  }
}

async function openSidebar(page) {
  if (!(await page.getByRole('button', { name: 'Close Sidebar' }).first().isVisible())) {
    await page.getByRole('button', { name: 'Open Sidebar' }).first().click();
    await page.getByRole('button', { name: 'Close Sidebar' }).first().waitFor({ state: 'visible' });
  }
}

// Wait until `locator`'s text contains `expected`, a string or a RegExp (a streamed answer grows until it does).
async function waitForText(locator, expected, what) {
  const found = (text) => (expected instanceof RegExp ? expected.test(text) : text.includes(expected));
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let text = '';
  while (Date.now() < deadline) {
    text = (await locator.count()) ? await locator.first().innerText() : '';
    if (found(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what}: ${expected} did not appear; the page showed ${JSON.stringify(text)}`);
}

async function askModel(page, entry, first) {
  const via = entry.tool_id ? ` with the tool server ${entry.tool_id} (${entry.via})` : '';
  console.log(`-- ${entry.model}${via}: asking ${JSON.stringify(entry.question)}`);
  const tools = entry.tool_id ? `&tools=${encodeURIComponent(entry.tool_id)}` : '';
  await page.goto(`${WEBUI_URL}/?models=${encodeURIComponent(entry.model)}${tools}`);
  const input = page.locator('#chat-input');
  await input.waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  await dismissReleaseNotes(page, first ? 15_000 : 1_000);
  await openSidebar(page);
  await input.click();
  await page.keyboard.type(entry.question);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/c\/[\w-]+/, { timeout: STEP_TIMEOUT_MS });

  const answer = page.locator('#response-content-container').last();
  const text = await waitForText(answer, entry.answer, `${entry.model}'s answer`);
  console.log(`   answer in the page: ${JSON.stringify(text.slice(-160))}`);
  return answer;
}

async function checkToolCall(page, answer, entry) {
  // The service's details block, drawn by Open WebUI as one of its own tool calls.
  const toolCall = answer.getByRole('button').filter({ hasText: entry.tool });
  await toolCall.first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  await toolCall.first().click();
  const opened = await waitForText(answer, /Input[\s\S]*Output/i, `${entry.model}'s opened tool-call block`);
  for (const [key, value] of Object.entries(entry.tool_arguments)) {
    check(opened.includes(key) && opened.includes(value), `the tool-call block should show ${key}=${value}`);
  }
  check(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(opened), "the tool-call block should show the tool's result");
  // The status line above the answer, left at its last value.
  await waitForText(page.locator('.status-description'), `Used ${entry.tool}`, `${entry.model}'s status line`);
  const answerText = await answer.innerText();
  check(answerText.includes('(Europe/Berlin).'), "the answer should quote the tool's result");
  console.log('   tool call shown as a block with its arguments and result, status line done');
}

async function checkReasoning(answer, entry) {
  const thinking = answer.getByText(/Thought for|Thinking/).first();
  await thinking.waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  await thinking.click();
  await waitForText(answer, entry.reasoning, `${entry.model}'s Thinking block`);
  console.log('   reasoning shown in a Thinking block');
}

// The service's access log: the lines of successful calls of ROUTE ("POST /rag/run").
function routeCalls(route) {
  const [method, target] = route.split(' ');
  return fs
    .readFileSync(SERVICE_LOG, 'utf8')
    .split('\n')
    .filter((line) => line.includes(`"${method} ${target} 1.1" 200 `));
}

// A chat with the service's tools on: the tool call Open WebUI ran, drawn as its own tool-call block (the
// arguments the LLM gave, our route's result in it), the answer quoting the result, and the route in the log.
async function checkToolServerCall(answer, entry, callsBefore) {
  const toolCall = answer.getByRole('button').filter({ hasText: entry.tool });
  await toolCall.first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  await toolCall.first().click();
  const opened = await waitForText(answer, /Input[\s\S]*Output/i, `the ${entry.via} tool-call block`);
  check(opened.includes(entry.tool_arguments.query), `the ${entry.via} tool-call block should show the query`);
  check(opened.includes(entry.source), `the ${entry.via} tool-call block should show the passages found`);
  const calls = routeCalls(entry.route).slice(callsBefore);
  check(calls.length > 0, `the service's log shows no ${entry.route} answered during the ${entry.via} chat`);
  console.log(`   tool call block shows the query and the passages; the service logged: ${calls.at(-1)}`);
}

// The answer's sources, sent as Open WebUI source events: drawn by Open WebUI under the answer ("1 Source"),
// their names shown once that is opened; never as a Sources list in the text.
async function checkSources(answer, entry) {
  await waitForText(answer, /\d+ Sources?/, `${entry.model}'s sources button`);
  check(!(await answer.innerText()).includes('Sources:'), 'Open WebUI should get source events, not a Sources list');
  await answer.getByText(/\d+ Sources?/).first().click();
  const text = await waitForText(answer, entry.source, `${entry.model}'s opened sources`);
  console.log(`   sources under the answer: ${JSON.stringify(text.slice(-80))}`);
}

async function checkTitle(page, entry) {
  const item = page.locator('#sidebar').getByText(entry.title, { exact: true });
  await item.first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  console.log(`   sidebar title: ${JSON.stringify(entry.title)}`);
  // Let the chat list finish reloading, for a tidy screenshot (not a check).
  await page.locator('#sidebar').getByText('Loading...').waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => {});
}

// The real model's answer: some text, and Open WebUI done with it (it shows Regenerate once an answer is whole).
async function checkRealModelAnswer(page, answer) {
  await page.getByRole('button', { name: 'Regenerate' }).last().waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
  const text = (await answer.innerText()).trim();
  check(text.length > 0, 'the real model should have answered in the page');
  console.log(`   the whole answer: ${JSON.stringify(text.slice(0, 160))}`);
}

const toolNames = (body) => (body.tools ?? []).map((tool) => tool.function?.name);

// The service's operations, from its whole OpenAPI document (`?include=openai`): the typed entries, and the OpenAI
// routes (tagged so), which the tool server's document (`/openapi.json`) leaves out.
async function serviceOperations() {
  const response = await fetch(`${SERVICE_URL}/openapi.json?include=openai`, {
    headers: { Authorization: `Bearer ${SERVICE_KEY}` },
  });
  check(response.ok, `GET /openapi.json?include=openai answered ${response.status}`);
  const operations = Object.values((await response.json()).paths).flatMap((methods) => Object.values(methods));
  const ids = (openai) => operations.filter((op) => (op.tags ?? []).includes('OpenAI API') === openai);
  return { typed: ids(false).map((op) => op.operationId), openai: ids(true).map((op) => op.operationId) };
}

// What reached the LLM: only the models' own calls, never a background task or Open WebUI's tools but in the
// tool-server chats; there, over OpenAPI, each typed entry as a tool and none of the OpenAI routes.
async function checkLlmRequests() {
  const requests = fs
    .readFileSync(requireEnv('LLM_REQUESTS'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
  const tasks = requests.filter((body) =>
    (body.messages ?? []).some((m) => typeof m.content === 'string' && m.content.trimStart().startsWith('### Task:')),
  );
  check(tasks.length === 0, `${tasks.length} Open WebUI task requests reached the LLM`);
  const serviceTools = SCENARIO.tool_servers.map((entry) => entry.tool);
  const viaToolServer = (body) => toolNames(body).some((name) => serviceTools.includes(name));
  const modelRequests = requests.filter((body) => !viaToolServer(body));
  const names = new Set(modelRequests.flatMap(toolNames));
  // The agent offers its own tools (cancel_meeting too, behind approval); none of Open WebUI's may come along.
  const agentTools = SCENARIO.models.find((entry) => entry.tool).own_tools;
  check([...names].every((name) => agentTools.includes(name)), `tools reached the LLM: ${[...names]}`);
  // chat: one call; chat_stream: one; agent: the tool call, then the answer; rag: one.
  check(modelRequests.length === 5, `expected 5 LLM calls from the models, got ${modelRequests.length}`);
  console.log(`-- the models made ${modelRequests.length} LLM calls, none of them a task, no tool but ${agentTools}`);

  // Each tool-server chat: the tool call, then the answer.
  const { typed, openai } = await serviceOperations();
  check(openai.length > 0, '/openapi.json?include=openai should describe the OpenAI routes too');
  for (const entry of SCENARIO.tool_servers) {
    const calls = requests.filter((body) => toolNames(body).includes(entry.tool));
    check(calls.length === 2, `expected 2 LLM calls in the ${entry.via} chat, got ${calls.length}`);
    const offered = toolNames(calls[0]);
    const expected = entry.via === 'MCP' ? typed.map((id) => `haystack_${id}`) : typed;
    const missing = expected.filter((name) => !offered.includes(name));
    check(missing.length === 0, `${entry.via}: the typed entries ${missing} were not offered to the LLM`);
    const leaked = offered.filter((name) => openai.includes(name) || openai.includes(name.replace(/^haystack_/, '')));
    check(leaked.length === 0, `${entry.via}: OpenAI routes were offered to the LLM as tools: ${leaked}`);
    console.log(`   ${entry.via}: the LLM was offered ${expected} from the service, no OpenAI route (${openai.length})`);
  }
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'openwebui-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 860 },
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => console.log(`   page error: ${error.message.slice(0, 200)}`));
    const offLoopback = new Set();
    context.on('request', (request) => {
      const url = new URL(request.url());
      if (url.protocol.startsWith('http') && url.hostname !== '127.0.0.1') offLoopback.add(url.origin);
    });
    const entries = REAL_MODEL ? [{ ...SCENARIO.real_model, answer: /\S/ }] : SCENARIO.models;
    for (const entry of entries) {
      const answer = await askModel(page, entry, entry === entries[0]);
      if (REAL_MODEL) await checkRealModelAnswer(page, answer);
      if (entry.tool) await checkToolCall(page, answer, entry);
      if (entry.reasoning) await checkReasoning(answer, entry);
      if (entry.source) await checkSources(answer, entry);
      await checkTitle(page, entry);
      const shot = path.join(ARTIFACTS, `${REAL_MODEL ? 'real-model-' : ''}${entry.model}.png`);
      await page.screenshot({ path: shot, clip: { x: 0, y: 0, width: 1280, height: 500 } });
      console.log(`   screenshot: ${shot}`);
    }
    for (const entry of REAL_MODEL ? [] : SCENARIO.tool_servers) {
      const callsBefore = routeCalls(entry.route).length;
      const answer = await askModel(page, entry, false);
      await waitForText(answer, entry.source, `the ${entry.via} answer's passages`);
      await checkToolServerCall(answer, entry, callsBefore);
      const shot = path.join(ARTIFACTS, `tool-server-${entry.via.toLowerCase()}.png`);
      await page.screenshot({ path: shot, clip: { x: 0, y: 0, width: 1280, height: 500 } });
      console.log(`   screenshot: ${shot}`);
    }
    if (!REAL_MODEL) await checkLlmRequests();
    check(offLoopback.size === 0, `the page asked for addresses off loopback: ${[...offLoopback]}`);
    console.log('-- the page made no request off 127.0.0.1');
  } catch (error) {
    const pages = context.pages();
    if (pages.length) await pages[0].screenshot({ path: path.join(ARTIFACTS, 'failure.png') }).catch(() => {});
    throw error;
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

const overall = setTimeout(() => {
  console.error(`browser test: not done after ${TOTAL_TIMEOUT_MS / 1000}s`);
  process.exit(2);
}, TOTAL_TIMEOUT_MS);
try {
  await main();
  console.log('browser test passed');
} finally {
  clearTimeout(overall);
}

// Two turns of one conversation through the Vercel AI SDK (`ai` + `@ai-sdk/openai`), as its docs write them:
// `provider.responses(model)`, `messages` holding the first turn's `response.messages`, `store` at its default.
// tests/engine/test_vercel_ai.py runs it with node against the service on loopback. It prints one JSON line:
// {"first", "second": the answers' texts, "sent": the request bodies the SDK sent, in order}.
//
//   SERVICE_URL=http://127.0.0.1:1416 MODEL=llm STREAM=1 QUESTION=... FOLLOW_UP=... node vercel_ai_two_turns.mjs
// STORE=0 sets the SDK's `store` option off: it then sends the first answer's text instead of a reference.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const { SERVICE_URL, MODEL, STREAM, STORE, QUESTION, FOLLOW_UP } = process.env;
const providerOptions = STORE === "0" ? { openai: { store: false } } : undefined;
const sent = [];
const provider = createOpenAI({
  baseURL: `${SERVICE_URL}/v1`,
  apiKey: "unused",
  fetch: async (url, init) => {
    sent.push(JSON.parse(init.body));
    return fetch(url, init);
  },
});
const model = provider.responses(MODEL);

async function turn(messages) {
  if (STREAM !== "1") {
    const result = await generateText({ model, messages, providerOptions, maxRetries: 0 });
    return { text: result.text, messages: result.response.messages };
  }
  const errors = [];
  const onError = ({ error }) => errors.push(error);
  const result = streamText({ model, messages, providerOptions, maxRetries: 0, onError });
  let text = "";
  for await (const delta of result.textStream) text += delta;
  if (errors.length > 0) throw errors[0];
  return { text, messages: (await result.response).messages };
}

const question = { role: "user", content: QUESTION };
const first = await turn([question]);
const second = await turn([question, ...first.messages, { role: "user", content: FOLLOW_UP }]);
console.log(JSON.stringify({ first: first.text, second: second.text, sent }));

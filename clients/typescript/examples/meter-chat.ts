// Metering a streaming chat completion: hold an estimate, stream, capture what the tokens cost.
// The LLM is a fake stream so the example runs offline; swap in your provider's SDK.
//
//   CREDITD_URL=http://127.0.0.1:8080 CREDITD_KEY=cd_sk_… node build/examples/examples/meter-chat.js
import { Creditd, CreditdError, fromMicros } from 'creditd';

const creditd = new Creditd({ apiKey: process.env.CREDITD_KEY ?? '', baseUrl: process.env.CREDITD_URL ?? 'http://127.0.0.1:8080' });

/** A stand-in for an LLM SDK's streaming call: yields tokens, then reports usage. */
async function* fakeChatStream(prompt: string): AsyncGenerator<{ token?: string; usage?: { outputTokens: number } }> {
  const words = `You asked: "${prompt}". Here is a short answer, streamed word by word.`.split(' ');
  for (const word of words) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    yield { token: `${word} ` };
  }
  yield { usage: { outputTokens: words.length } };
}

/** 0.01 credits per output token, computed exactly in micro-credits (no floating point). */
const PRICE_PER_TOKEN_MICROS = 10_000n;

async function chat(user: string, prompt: string, requestId: string): Promise<string> {
  let answer = '';
  const hold = await creditd.meter({ customer: user, feature: 'chat', estimate: '2', requestId }, async () => {
    let tokens = 0;
    for await (const chunk of fakeChatStream(prompt)) {
      if (chunk.token) answer += chunk.token;
      if (chunk.usage) tokens = chunk.usage.outputTokens;
    }
    return fromMicros(BigInt(tokens) * PRICE_PER_TOKEN_MICROS);
  });
  console.log(`charged ${hold.captured} credits for ${requestId}; balance ${hold.balance}`);
  return answer;
}

const user = process.argv[2] ?? 'example_user';
await creditd.customers.create({ id: user });
console.log(await chat(user, 'What is creditd?', `${user}-chat-1`));
// The same request id again (a retried job, say) replays the capture instead of charging twice.
await chat(user, 'What is creditd?', `${user}-chat-1`);
const customer = await creditd.customers.retrieve(user);
console.log(`balance ${customer.balance}, available ${customer.available}`);
try {
  await creditd.usage.record({ customer: user, amount: '1000', feature: 'chat' });
} catch (error) {
  if (!(error instanceof CreditdError) || error.code !== 'insufficient_credits') throw error;
  console.log(`refused: ${error.code} (available ${error.available})`);
}

// Verifies creditd's deliveries with the official Standard Webhooks package (npm
// `standardwebhooks`). Same protocol as verify.py: a JSON request on stdin, one JSON result
// per message on stdout.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);
const webhook = new Webhook(request.secret);
for (const message of request.messages) {
  const headers = {
    "webhook-id": message.id,
    "webhook-timestamp": message.timestamp,
    "webhook-signature": message.signature,
  };
  try {
    const payload = webhook.verify(message.body, headers);
    console.log(JSON.stringify({ ok: true, type: payload.type }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: `${e.name}: ${e.message}` }));
  }
}

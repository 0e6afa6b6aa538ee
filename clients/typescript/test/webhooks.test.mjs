import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { WebhookVerificationError, webhooks } from '../dist/esm/index.js';
import { startApp, uniqueId } from './helpers.mjs';

let app;
let creditd;
let receiver;
const received = [];
before(async () => {
  app = await startApp();
  creditd = app.client();
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
});
after(() => {
  receiver?.close();
  return app?.stop();
});

/** The first delivery to `path` of `type` about `customer`, waiting up to 15 s for creditd's worker. */
async function delivery(path, type, customer) {
  for (let i = 0; i < 150; i++) {
    const found = received.find((d) => {
      const event = JSON.parse(d.body);
      return d.path === path && event.type === type && event.data.id === customer;
    });
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no ${type} delivery for ${customer}`);
}

const refused = (code) => (e) => e instanceof WebhookVerificationError && e.code === code;

test('a real customer.created delivery verifies; a tampered one does not', async () => {
  const url = `http://127.0.0.1:${receiver.address().port}/hooks`;
  const endpoint = await creditd.webhookEndpoints.create({ url, events: ['customer.created'] });
  const id = uniqueId();
  await creditd.customers.create({ id });
  const { headers, body } = await delivery('/hooks', 'customer.created', id);

  const event = await webhooks.verify(body, headers, endpoint.secret);
  assert.deepEqual([event.type, event.data.id, event.data.balance], ['customer.created', id, '5']);
  assert.equal((await webhooks.verify(new TextEncoder().encode(body), new Headers(headers), endpoint.secret)).data.id, id);

  await assert.rejects(webhooks.verify(body.replace(id, `${id}x`), headers, endpoint.secret), refused('bad_signature'));
  await assert.rejects(webhooks.verify(body, { ...headers, 'webhook-id': 'msg_other' }, endpoint.secret), refused('bad_signature'));
  const other = await creditd.webhookEndpoints.create({ url: 'http://127.0.0.1:9/x' });
  await assert.rejects(webhooks.verify(body, headers, other.secret), refused('bad_signature'));
  const late = Number(headers['webhook-timestamp']) + 301;
  await assert.rejects(webhooks.verify(body, headers, endpoint.secret, { now: late }), refused('timestamp_out_of_range'));
  assert.equal((await webhooks.verify(body, headers, endpoint.secret, { now: late - 2 })).type, 'customer.created');
  const { 'webhook-signature': _, ...unsigned } = headers;
  await assert.rejects(webhooks.verify(body, unsigned, endpoint.secret), refused('missing_header'));
  await assert.rejects(webhooks.verify(body, headers, 'not-a-secret'), refused('bad_secret'));
});

test('after a rotation both secrets verify (two signatures)', async () => {
  const url = `http://127.0.0.1:${receiver.address().port}/rotated`;
  const endpoint = await creditd.webhookEndpoints.create({ url, events: ['customer.created'] });
  const rotated = await creditd.webhookEndpoints.rotateSecret(endpoint.id);
  const id = uniqueId();
  await creditd.customers.create({ id });
  const { headers, body } = await delivery('/rotated', 'customer.created', id);
  assert.equal(headers['webhook-signature'].split(' ').length, 2);
  assert.equal((await webhooks.verify(body, headers, rotated.secret)).data.id, id);
  assert.equal((await webhooks.verify(body, headers, endpoint.secret)).data.id, id);
});

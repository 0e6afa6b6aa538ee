import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Creditd, CreditdError, compareCredits, credits, fromMicros, toMicros } from '../dist/esm/index.js';
import { startApp, uniqueId } from './helpers.mjs';

let app;
let creditd;
before(async () => {
  app = await startApp();
  creditd = app.client();
});
after(() => app?.stop());

describe('customers, grants and the ledger', () => {
  test('create, retrieve, create again returns the same customer', async () => {
    const id = uniqueId();
    const created = await creditd.customers.create({ id, email: 'ada@example.com', metadata: { plan: 'pro' } });
    assert.equal(created.id, id);
    assert.equal(created.balance, '5');
    assert.equal(typeof created.balance, 'string');
    const again = await creditd.customers.create({ id });
    assert.equal(again.email, 'ada@example.com');
    assert.deepEqual((await creditd.customers.retrieve(id)).metadata, { plan: 'pro' });
  });

  test('grants and the ledger page themselves when iterated', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    for (const amount of ['1', '2.5', '0.000001']) {
      await creditd.grants.create(id, { amount, reason: 'top-up' });
    }
    const grants = await creditd.grants.list(id, { limit: 2 }).toArray();
    assert.deepEqual(grants.map((g) => g.amount), ['0.000001', '2.5', '1', '5']);
    const entries = [];
    for await (const entry of creditd.ledger.list(id, { limit: 1 })) entries.push(entry);
    assert.equal(entries.length, 4);
    assert.equal(entries[0].balance_after, '8.500001');
    const first = await creditd.ledger.list(id, { limit: 3 }).firstPage();
    assert.equal(first.data.length, 3);
    assert.equal(first.has_more, true);
  });

  test('an unknown customer is a CreditdError 404', async () => {
    await assert.rejects(creditd.customers.retrieve('nobody_here'), (e) => {
      assert.ok(e instanceof CreditdError);
      assert.equal(e.status, 404);
      assert.equal(e.code, 'customer_not_found');
      return true;
    });
  });
});

describe('spending', () => {
  test('usage is deducted once per idempotency key', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    const first = await creditd.usage.record({ customer: id, amount: '1.25', feature: 'chat' }, { idempotencyKey: `${id}-req-1` });
    const replay = await creditd.usage.record({ customer: id, amount: '1.25', feature: 'chat' }, { idempotencyKey: `${id}-req-1` });
    assert.equal(replay.id, first.id);
    assert.equal((await creditd.customers.retrieve(id)).balance, '3.75');
  });

  test('insufficient credits: 402 with the balances, nothing deducted', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    const error = await creditd.usage.record({ customer: id, amount: '6', feature: 'chat' }).catch((e) => e);
    assert.ok(error instanceof CreditdError);
    assert.deepEqual([error.status, error.code, error.balance, error.available], [402, 'insufficient_credits', '5', '5']);
    assert.equal((await creditd.customers.retrieve(id)).balance, '5');
  });

  test('a bad amount is a 400 naming the field', async () => {
    const error = await creditd.usage.record({ customer: 'x', amount: '1.0000001', feature: 'chat' }).catch((e) => e);
    assert.deepEqual([error.status, error.code, error.param], [400, 'invalid_request', 'amount']);
  });

  test('holds: create, retrieve, capture, release; check changes nothing', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    const hold = await creditd.holds.create({ customer: id, amount: '2', feature: 'chat', ttl_seconds: 60 });
    assert.equal(hold.status, 'open');
    assert.equal(hold.available, '3');
    assert.equal((await creditd.holds.retrieve(hold.id)).id, hold.id);
    const captured = await creditd.holds.capture(hold.id, { amount: '1.5' });
    assert.deepEqual([captured.status, captured.captured, captured.balance], ['captured', '1.5', '3.5']);
    const other = await creditd.holds.create({ customer: id, amount: '1' });
    assert.equal((await creditd.holds.release(other.id)).status, 'released');
    const check = await creditd.check({ customer: id, amount: '3.5' });
    assert.deepEqual([check.allowed, check.available, check.amount], [true, '3.5', '3.5']);
    assert.equal((await creditd.check({ customer: id, amount: '3.6' })).allowed, false);
  });
});

describe('meter', () => {
  test('holds the estimate, captures what the call returns', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    let seen;
    const hold = await creditd.meter({ customer: id, feature: 'chat', estimate: '3' }, async (h) => {
      seen = h;
      assert.equal((await creditd.customers.retrieve(id)).available, '2');
      return '1.2';
    });
    assert.equal(seen.status, 'open');
    assert.deepEqual([hold.status, hold.captured, hold.balance], ['captured', '1.2', '3.8']);
  });

  test('releases the hold and rethrows when the call fails', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    let holdId;
    await assert.rejects(
      creditd.meter({ customer: id, feature: 'chat', estimate: '3' }, async (h) => {
        holdId = h.id;
        throw new Error('model overloaded');
      }),
      /model overloaded/,
    );
    assert.equal((await creditd.holds.retrieve(holdId)).status, 'released');
    assert.equal((await creditd.customers.retrieve(id)).available, '5');
  });

  test('a retried meter with the same request id never charges twice', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    let calls = 0;
    const run = () =>
      creditd.meter({ customer: id, feature: 'chat', estimate: '2', requestId: `${id}-call-1` }, async () => {
        calls += 1;
        return '1.5';
      });
    const first = await run();
    const second = await run();
    assert.equal(second.id, first.id);
    assert.equal(calls, 1, 'the completed call is not run again');
    assert.equal((await creditd.customers.retrieve(id)).balance, '3.5');
  });
});

describe('retries', () => {
  test('a lost answer is retried with the same idempotency key, and charged once', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    const keys = [];
    let lost = false;
    const flaky = async (url, init) => {
      keys.push(init.headers['idempotency-key']);
      const response = await fetch(url, init);
      if (!lost) {
        lost = true;
        throw new TypeError('fetch failed: connection reset');
      }
      return response;
    };
    const client = app.client({ fetch: flaky });
    const usage = await client.usage.record({ customer: id, amount: '2', feature: 'chat' });
    assert.equal(keys.length, 2);
    assert.ok(keys[0] && keys[0] === keys[1], 'both attempts carry one key');
    assert.equal(usage.balance, '3');
    assert.equal((await creditd.customers.retrieve(id)).balance, '3');
  });

  test('503 and 429 are retried after Retry-After; other errors are not', async () => {
    const answers = [503, 429];
    const seen = [];
    const busy = async (url, init) => {
      seen.push(init.headers['idempotency-key']);
      const status = answers.shift();
      if (status) {
        const body = JSON.stringify({ error: { code: 'overloaded', message: 'busy' } });
        return new Response(body, { status, headers: { 'retry-after': '0', 'content-type': 'application/json' } });
      }
      return fetch(url, init);
    };
    const id = uniqueId();
    const customer = await app.client({ fetch: busy }).customers.create({ id });
    assert.equal(customer.id, id);
    assert.equal(seen.length, 3);
    assert.equal(new Set(seen).size, 1);
    let attempts = 0;
    const counting = async (url, init) => {
      attempts += 1;
      return fetch(url, init);
    };
    await app.client({ fetch: counting }).customers.retrieve('nobody').catch(() => undefined);
    assert.equal(attempts, 1, 'a 404 is final');
  });

  test('gives up after maxRetries with the last error', async () => {
    const down = async () => {
      throw new TypeError('fetch failed');
    };
    const error = await app.client({ fetch: down, maxRetries: 1 }).customers.retrieve('x').catch((e) => e);
    assert.ok(error instanceof CreditdError);
    assert.deepEqual([error.status, error.code], [0, 'network_error']);
  });

  test('a request slower than timeoutMs is a timeout error', async () => {
    const slow = (url, init) =>
      new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
    const error = await app.client({ fetch: slow, timeoutMs: 50, maxRetries: 0 }).customers.retrieve('x').catch((e) => e);
    assert.deepEqual([error.status, error.code], [0, 'timeout']);
  });
});

describe('purchases', () => {
  test('packages, Checkout, PaymentIntents and payments', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id, email: 'buyer@example.com' });
    const packages = await creditd.packages.list();
    assert.equal(packages[0].credits, '100');
    const session = await creditd.checkoutSessions.create({ customer: id, package: app.pkg, quantity: 2 });
    assert.match(session.id, /^cs_/);
    assert.ok(session.url.startsWith(app.sandboxUrl));
    assert.equal(session.payment.credits, '200');
    const intent = await creditd.paymentIntents.create({ customer: id, package: app.pkg });
    assert.match(intent.client_secret, /^pi_/);
    const payments = await creditd.payments.list({ customer: id }).toArray();
    assert.equal(payments.length, 2);
    const unpaid = await creditd.checkoutSessions.fulfill(session.id);
    assert.equal(unpaid.status, 'pending');
    const made = await creditd.packages.create({ name: 'Big', credits: '1000', price: 4000, currency: 'usd' });
    assert.equal((await creditd.packages.archive(made.id)).active, false);
    const plan = await creditd.plans.create({ name: 'Pro', credits: '500', price: 2000, currency: 'usd' });
    assert.ok((await creditd.plans.list()).some((p) => p.id === plan.id));
    const archived = await creditd.checkoutSessions.create({ customer: id, package: made.id }).catch((e) => e);
    assert.deepEqual([archived.status, archived.code], [409, 'package_archived']);
    const events = await creditd.stripeEvents.list({ status: 'failed' }).toArray();
    assert.deepEqual(events, []);
  });
});

describe('the customer-token API', () => {
  test('me, its ledger, usage and a Checkout of its own', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    await creditd.usage.record({ customer: id, amount: '0.5', feature: 'chat' });
    const me = new Creditd({ apiKey: app.token(id), baseUrl: app.url });
    assert.equal((await me.me.retrieve()).balance, '4.5');
    assert.equal((await me.me.ledger().toArray()).length, 2);
    const usage = await me.me.usage({ groupBy: 'feature' });
    assert.deepEqual(usage.data.map((r) => [r.feature, r.credits]), [['chat', '0.5']]);
    const session = await me.me.createCheckoutSession({ package: app.pkg });
    assert.equal(session.payment.customer, id);
    assert.deepEqual(await me.me.payments().toArray().then((p) => p.length), 1);
    const refused = await me.customers.retrieve(id).catch((e) => e);
    assert.equal(refused.status, 401);
  });
});

describe('credits are decimal strings', () => {
  test('exact conversions, comparisons, and no numbers', () => {
    assert.equal(toMicros('2.5'), 2_500_000n);
    assert.equal(toMicros('-0.000001'), -1n);
    assert.equal(fromMicros(12_500_000n), '12.5');
    assert.equal(fromMicros(-1n), '-0.000001');
    assert.equal(compareCredits('10', '9.999999'), 1);
    assert.equal(compareCredits('0.1', '0.10'), 0);
    assert.equal(credits(3n), '0.000003');
    assert.throws(() => credits(5), /never numbers/);
    assert.throws(() => toMicros('1e3'), /not a credits amount/);
  });
});

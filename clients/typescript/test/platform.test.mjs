import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { CreditdError } from '../dist/esm/index.js';
import { startApp, uniqueId } from './helpers.mjs';

let app;
let creditd;
before(async () => {
  app = await startApp();
  creditd = app.client();
});
after(() => app?.stop());

describe('customers and usage', () => {
  test('customers.update changes the email, metadata and low-balance threshold', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id, email: 'old@example.com' });
    const updated = await creditd.customers.update(id, { email: 'new@example.com', metadata: { tier: 'gold' }, low_balance_threshold: '2.5' });
    assert.deepEqual([updated.email, updated.metadata, updated.low_balance_threshold], ['new@example.com', { tier: 'gold' }, '2.5']);
    assert.equal((await creditd.customers.retrieve(id)).email, 'new@example.com');
    await assert.rejects(creditd.customers.update(id, { low_balance_threshold: 'lots' }), (e) => e instanceof CreditdError && e.status === 400);
  });

  test('usage.recordBatch answers per record and replays with the same key', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    const params = {
      records: [
        { customer: id, amount: '1.5', feature: 'chat' },
        { customer: id, amount: '100', feature: 'chat' },
        { customer: id, amount: '0.25', feature: 'chat', idempotency_key: `${id}-own` },
      ],
    };
    const first = await creditd.usage.recordBatch(params, { idempotencyKey: `${id}-batch` });
    assert.deepEqual(first.data.map((r) => r.status), [200, 402, 200]);
    assert.equal(first.data[1].error.code, 'insufficient_credits');
    assert.equal(first.data[2].usage.balance, '3.25');
    const again = await creditd.usage.recordBatch(params, { idempotencyKey: `${id}-batch` });
    assert.equal(again.data[0].usage.id, first.data[0].usage.id);
    assert.equal((await creditd.customers.retrieve(id)).balance, '3.25');
  });
});

describe('features, budgets, entitlements, auto top-up', () => {
  test('features: create, list, update, archive', async () => {
    const fid = uniqueId('feat');
    const created = await creditd.features.create({ id: fid, name: 'GPT', per: 1000, prices: { input_tokens: '2.5' } });
    assert.deepEqual([created.id, created.prices, created.per, created.active], [fid, { input_tokens: '2.5' }, 1000, true]);
    assert.ok((await creditd.features.list()).some((f) => f.id === fid));
    const updated = await creditd.features.update(fid, { name: 'GPT-4o', prices: { input_tokens: '3' } });
    assert.deepEqual([updated.name, updated.prices.input_tokens], ['GPT-4o', '3']);
    assert.equal((await creditd.features.archive(fid)).active, false);
  });

  test('units of a priced feature: check, usage, hold and capture', async () => {
    const fid = uniqueId('feat');
    await creditd.features.create({ id: fid, name: 'GPT', per: 1000, prices: { input_tokens: '2.5', output_tokens: '10' } });
    const id = uniqueId();
    await creditd.customers.create({ id });
    const check = await creditd.check({ customer: id, feature: fid, units: { input_tokens: 1200 } });
    assert.deepEqual([check.allowed, check.amount], [true, '3'], '1200 × 2.5 / 1000');
    const short = await creditd.check({ customer: id, feature: fid, units: { output_tokens: 600 } });
    assert.deepEqual([short.allowed, short.reason, short.amount], [false, 'insufficient_credits', '6']);
    const used = await creditd.usage.record({ customer: id, feature: fid, units: { input_tokens: 400, output_tokens: 100 } });
    assert.deepEqual([used.amount, used.balance, used.priced?.units], ['2', '3', { input_tokens: 400, output_tokens: 100 }]);
    const hold = await creditd.holds.create({ customer: id, feature: fid, units: { output_tokens: 200 } });
    assert.deepEqual([hold.amount, hold.available], ['2', '1']);
    const captured = await creditd.holds.capture(hold.id, { units: { output_tokens: 150 } });
    assert.deepEqual([captured.status, captured.captured, captured.balance], ['captured', '1.5', '1.5']);
    const batch = await creditd.usage.recordBatch({ records: [{ customer: id, feature: fid, units: { input_tokens: 200 } }] });
    assert.deepEqual([batch.data[0].status, batch.data[0].usage?.amount, batch.data[0].usage?.balance], [200, '0.5', '1']);
  });

  test('budgets cap a key; entitlements list the features', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    const budget = await creditd.budgets.create(id, { id: 'key_a', limit: '2', period: 'month' });
    assert.deepEqual([budget.limit, budget.used, budget.remaining], ['2', '0', '2']);
    await creditd.usage.record({ customer: id, amount: '1.5', feature: 'chat', budget: 'key_a' });
    await assert.rejects(creditd.usage.record({ customer: id, amount: '1', feature: 'chat', budget: 'key_a' }), (e) => e instanceof CreditdError && e.status === 402);
    const [listed] = await creditd.budgets.list(id);
    assert.deepEqual([listed.id, listed.used, listed.remaining], ['key_a', '1.5', '0.5']);
    const fid = uniqueId('feat');
    await creditd.features.create({ id: fid, name: 'Search' });
    const entitlements = await creditd.entitlements.list(id);
    assert.equal(entitlements.object, 'list');
    assert.equal(entitlements.data.find((e) => e.feature === fid)?.allowed, true);
  });

  test('autoTopup: retrieve and update', async () => {
    const id = uniqueId();
    await creditd.customers.create({ id });
    const never = await creditd.autoTopup.retrieve(id);
    assert.deepEqual([never.enabled, never.package, never.threshold, never.quantity], [false, null, '10', 1], 'off until saved');
    const on = await creditd.autoTopup.update(id, { enabled: true, threshold: '10', package: app.pkg, quantity: 2 });
    assert.deepEqual([on.enabled, on.threshold, on.package, on.quantity], [true, '10', app.pkg, 2]);
    assert.equal((await creditd.autoTopup.retrieve(id)).threshold, '10');
    assert.equal((await creditd.autoTopup.update(id, { enabled: false, threshold: '10', package: app.pkg })).enabled, false);
  });
});

describe('webhook endpoints', () => {
  test('create, list, retrieve, update, rotateSecret, deliveries, del', async () => {
    // An event type no test sends: events recorded just before the endpoint exists are still
    // fanned out to it when the dispatcher gets to them, so a busier type would race.
    const created = await creditd.webhookEndpoints.create({ url: 'http://127.0.0.1:9/hooks', events: ['dispute.closed'] });
    assert.match(created.secret, /^whsec_/);
    assert.ok((await creditd.webhookEndpoints.list()).some((e) => e.id === created.id));
    assert.equal((await creditd.webhookEndpoints.retrieve(created.id)).url, 'http://127.0.0.1:9/hooks');
    assert.equal((await creditd.webhookEndpoints.update(created.id, { enabled: false })).enabled, false);
    const rotated = await creditd.webhookEndpoints.rotateSecret(created.id);
    assert.match(rotated.secret, /^whsec_/);
    assert.notEqual(rotated.secret, created.secret);
    assert.deepEqual(await creditd.webhookEndpoints.deliveries(created.id).toArray(), []);
    assert.deepEqual(await creditd.webhookEndpoints.del(created.id), { id: created.id, deleted: true });
    await assert.rejects(creditd.webhookEndpoints.retrieve(created.id), (e) => e instanceof CreditdError && e.status === 404);
  });
});

describe('outbound events', () => {
  test('list pages through a customer\'s events; redeliver queues them again', async () => {
    const endpoint = await creditd.webhookEndpoints.create({ url: 'http://127.0.0.1:9/outbound', events: ['customer.created', 'credits.granted'] });
    const id = uniqueId();
    await creditd.customers.create({ id });
    await creditd.grants.create(id, { amount: '3', reason: 'welcome' });
    const pager = creditd.outboundEvents.list({ customer: id, limit: 1 });
    const first = await pager.firstPage();
    assert.deepEqual([first.data.length, first.has_more], [1, true], 'one a page, more to come');
    const events = await pager.toArray();
    assert.ok(events.length >= 2, `signup bonus and grant: ${events.map((e) => e.type)}`);
    assert.ok(events.every((e) => e.customer === id && e.id.startsWith('msg_')));
    const created = events.find((e) => e.type === 'customer.created');
    assert.ok(created, 'customer.created listed');
    assert.equal(events.at(-1).id, created.id, 'newest first: the creation is last');
    const again = await creditd.outboundEvents.redeliver(created.id);
    assert.equal(again.id, created.id);
    assert.ok(again.queued >= 1, 'queued for the endpoint that wants it');
    const missing = await creditd.outboundEvents.redeliver('msg_nothing').catch((e) => e);
    assert.deepEqual([missing.status, missing.code], [404, 'event_not_found']);
    await creditd.webhookEndpoints.del(endpoint.id);
  });
});

describe('catalog from Stripe, plan entitlements', () => {
  /** A form POST to the sandbox's Stripe API, as Stripe's dashboard would make it. */
  async function stripe(path, form) {
    const response = await fetch(`${app.sandboxUrl}${path}`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk_test_creditd_sandbox', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    assert.ok(response.ok, `${path}: ${response.status}`);
    return response.json();
  }

  test('packages.sync imports a one-time Price with credits_amount and archives it when it goes', async () => {
    const product = await stripe('/v1/products', { name: 'Imported', 'metadata[credits_amount]': '250' });
    const price = await stripe('/v1/prices', { product: product.id, unit_amount: '900', currency: 'usd' });
    const report = await creditd.packages.sync();
    const imported = report.created.find((p) => p.stripe_price === price.id);
    assert.deepEqual([imported?.credits, imported?.price, imported?.currency], ['250', 900, 'usd']);
    assert.ok((await creditd.packages.list()).some((p) => p.id === imported.id));
    const again = await creditd.packages.sync();
    assert.ok(again.unchanged.includes(imported.id), 'nothing changed in Stripe');
    await stripe(`/v1/prices/${price.id}`, { active: 'false' });
    const gone = await creditd.packages.sync();
    assert.ok(gone.archived.includes(imported.id), 'archived once its Price is inactive');
  });

  test('plans.update replaces what a plan includes', async () => {
    const fid = uniqueId('feat');
    await creditd.features.create({ id: fid, name: 'Images' });
    const plan = await creditd.plans.create({ name: 'Team', credits: '100', price: 1500, currency: 'usd', features: { [fid]: true } });
    assert.deepEqual(plan.features, { [fid]: true });
    const limited = await creditd.plans.update(plan.id, { features: { [fid]: { limit: 3, period: 'day' } } });
    assert.deepEqual(limited.features, { [fid]: { limit: 3, period: 'day' } });
    const unknown = await creditd.plans.update(plan.id, { features: { nothing_here: true } }).catch((e) => e);
    assert.deepEqual([unknown.status, unknown.code], [404, 'feature_not_found']);
    const missing = await creditd.plans.update('plan_nothing', { features: {} }).catch((e) => e);
    assert.equal(missing.status, 404);
  });
});

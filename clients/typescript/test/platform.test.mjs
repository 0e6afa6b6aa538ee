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
    const on = await creditd.autoTopup.update(id, { enabled: true, threshold: '10', package: app.pkg, quantity: 2 });
    assert.deepEqual([on.enabled, on.threshold, on.package, on.quantity], [true, '10', app.pkg, 2]);
    assert.equal((await creditd.autoTopup.retrieve(id)).threshold, '10');
    assert.equal((await creditd.autoTopup.update(id, { enabled: false, threshold: '10', package: app.pkg })).enabled, false);
  });
});

describe('webhook endpoints', () => {
  test('create, list, retrieve, update, rotateSecret, deliveries, del', async () => {
    const created = await creditd.webhookEndpoints.create({ url: 'http://127.0.0.1:9/hooks', events: ['customer.created'] });
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

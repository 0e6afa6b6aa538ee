// The CommonJS build works with require() and talks to creditd like the ES module build.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

import { startApp, uniqueId } from './helpers.mjs';

const require = createRequire(import.meta.url);
let app;
before(async () => {
  app = await startApp();
});
after(() => app?.stop());

test('require("creditd") builds a working client', async () => {
  const { Creditd, CreditdError } = require('../dist/cjs/index.js');
  const creditd = new Creditd({ apiKey: app.key, baseUrl: app.url });
  const id = uniqueId('cjs');
  assert.equal((await creditd.customers.create({ id })).balance, '5');
  const error = await creditd.customers.retrieve('nobody').catch((e) => e);
  assert.ok(error instanceof CreditdError);
  const react = require('../dist/cjs/react/index.js');
  assert.equal(typeof react.CreditdProvider, 'function');
});

// The example app runs as written against a real creditd and charges what it says.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { startApp, uniqueId } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let app;
before(async () => {
  app = await startApp();
});
after(() => app?.stop());

test('examples/meter-chat.ts meters a streamed completion once', async () => {
  const user = uniqueId('example');
  const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'build/examples/examples/meter-chat.js'), user], {
    env: { ...process.env, CREDITD_URL: app.url, CREDITD_KEY: app.key },
  });
  assert.match(stdout, /You asked: "What is creditd\?"/);
  // 14 words at 0.01 credits: 5 - 0.14, charged once although the call ran twice.
  assert.match(stdout, /charged 0\.14 credits/);
  assert.match(stdout, /balance 4\.86, available 4\.86/);
  assert.match(stdout, /refused: insufficient_credits \(available 4\.86\)/);
  const customer = await app.client().customers.retrieve(user);
  assert.equal(customer.balance, '4.86');
});

// The operator's dashboard in headless Chromium: log in, see the overview, find a customer,
// adjust credits, retry a failed Stripe event. Screenshots land in artifacts/.
//
// Self-contained: starts `creditd serve` itself (temp SQLite database, built-in Stripe
// sandbox, free ports). Needs a debug build (`cargo build -p creditd`; the binary is taken
// from $CREDITD_BIN, else $CARGO_TARGET_DIR/debug/creditd, else target/debug/creditd) and
// `npm install --no-save playwright-core@1.56.1` in browser-tests/.
// Run: node --test browser-tests/admin.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const artifacts = join(repo, 'artifacts');
const bin =
  process.env.CREDITD_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(repo, 'target'), 'debug', 'creditd');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const EMAIL = 'ops@example.com';
const PASSWORD = 'browser tests password';
const WEBHOOK_SECRET = 'whsec_admin_browser_tests';

let dir, server, base, apiKey, browser;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function env() {
  return {
    ...process.env,
    DATABASE_URL: `sqlite://${join(dir, 'creditd.db')}`,
    CREDITD_SANDBOX_STATE: join(dir, 'sandbox.json'),
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    CREDITD_LOG: process.env.CREDITD_LOG ?? 'error',
  };
}

function cli(args, input) {
  const run = spawnSync(bin, args, { env: env(), input, encoding: 'utf8' });
  assert.equal(run.status, 0, `creditd ${args.join(' ')}: ${run.stdout}${run.stderr}`);
  return run.stdout.trim();
}

async function api(method, path, body, headers = {}) {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: text ? JSON.parse(text) : null };
}

/** Delivers a Stripe event signed as Stripe signs it. */
function deliver(payload) {
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${payload}`).digest('hex');
  return api('POST', '/v1/stripe/webhook', payload, { 'stripe-signature': `t=${t},v1=${v1}` });
}

before(async () => {
  assert.ok(existsSync(bin), `build creditd first (cargo build -p creditd): ${bin} is missing`);
  mkdirSync(artifacts, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'creditd-admin-browser-'));
  cli(['admin', 'create-user', '--email', EMAIL, '--password-stdin'], `${PASSWORD}\n`);
  apiKey = cli(['keys', 'create', '--name', 'browser-tests']).split('\n').pop();
  const [port, sandboxPort] = [await freePort(), await freePort()];
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--sandbox-listen', `127.0.0.1:${sandboxPort}`], {
    env: env(),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {}
    assert.ok(i < 200, 'creditd did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  // A small world: two customers who spent credits, a purchase, and a failed Stripe event.
  for (const id of ['ada', 'bob']) {
    assert.equal((await api('POST', '/v1/customers', { id, email: `${id}@example.com` })).status, 201);
  }
  await api('POST', '/v1/customers/ada/grants', { amount: '100', reason: 'welcome' });
  for (const [customer, amount, feature] of [['ada', '12.5', 'chat'], ['ada', '4', 'images'], ['bob', '1.25', 'chat']]) {
    assert.equal((await api('POST', '/v1/usage', { customer, amount, feature })).status, 200);
  }
  const pkg = await api('POST', '/v1/packages', { name: 'Starter', credits: '100', price: 500, currency: 'usd' });
  // bob buys the package on the sandbox's hosted Checkout page with a test card.
  const checkout = await api('POST', '/v1/checkout-sessions', { customer: 'bob', package: pkg.json.id, quantity: 1 });
  assert.equal(checkout.status, 201, checkout.text);
  const card = { method: 'card', card_number: '4242 4242 4242 4242', card_expiry: '12 / 34', card_cvc: '123', name: 'Bob' };
  await fetch(checkout.json.url, { method: 'POST', body: new URLSearchParams(card), redirect: 'manual' });
  for (let i = 0; (await api('GET', '/v1/customers/bob')).json.balance !== '103.75'; i++) {
    assert.ok(i < 100, 'the purchase was never granted');
    await new Promise((r) => setTimeout(r, 100));
  }
  const broken = JSON.stringify({
    id: 'evt_browser_broken', object: 'event', type: 'checkout.session.completed', created: 1,
    data: { object: { id: 'cs_test_gone_missing' } },
  });
  // Acknowledged at once; its handling fails in the background and is recorded as failed.
  assert.equal((await deliver(broken)).status, 200);
  for (let i = 0; ; i++) {
    const failed = await api('GET', '/v1/stripe/events?status=failed');
    if (failed.json.data.some((e) => e.id === 'evt_browser_broken')) break;
    assert.ok(i < 100, 'the broken event was never recorded as failed');
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGINT');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('an admin logs in, reads the overview, adjusts a customer and retries a failed event', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const shot = (name) => page.screenshot({ path: join(artifacts, `admin-${name}.png`), fullPage: true });

  // Anonymous visitors are sent to the login page.
  await page.goto(`${base}/admin`);
  assert.match(page.url(), /\/admin\/login$/);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong email or password' }).waitFor();
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'creditd_admin');
  assert.ok(session.httpOnly && session.sameSite === 'Strict');

  // Overview: the books balance on screen; usage by feature is charted.
  assert.equal(await page.locator('[data-books="balanced"]').count(), 1);
  // 5 + 5 signup bonuses + 100 granted + 100 bought − 17.75 spent
  assert.equal(await page.locator('[data-line="outstanding"]').innerText(), '= 192.25');
  assert.equal(await page.locator('[data-total="net-usd"]').innerText(), '5.00 USD');
  assert.ok(await page.getByRole('img', { name: /Credits spent by feature/ }).isVisible());
  await shot('1-overview');

  // Find a customer by email and open their page.
  await page.getByRole('link', { name: 'Customers' }).click();
  await page.getByLabel('Customer id or email').fill('ada@example');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: 'ada', exact: true }).click();
  await page.getByRole('heading', { name: 'Customer ada' }).waitFor();
  assert.equal(await page.locator('[data-balance]').innerText(), '88.5 credits');
  await shot('2-customer');

  // Adjust: grant, then deduct; each needs a reason and is recorded with the admin's email.
  await page.getByLabel('Grant (add credits)').check();
  await page.getByLabel('Credits', { exact: true }).fill('11.5');
  await page.getByLabel(/^Reason/).fill('Service credit for the outage');
  await page.getByRole('button', { name: 'Adjust' }).click();
  await page.getByRole('status').filter({ hasText: 'Credits adjusted' }).waitFor();
  assert.equal(await page.locator('[data-balance]').innerText(), '100 credits');
  await page.getByLabel(/Deduct \(take credits/).check();
  await page.getByLabel('Credits', { exact: true }).fill('30');
  await page.getByLabel(/^Reason/).fill('Duplicate account');
  await page.getByRole('button', { name: 'Adjust' }).click();
  await page.getByRole('status').filter({ hasText: 'Credits adjusted' }).waitFor();
  assert.equal(await page.locator('[data-balance]').innerText(), '70 credits');
  const ledger = await page.locator('section', { has: page.getByRole('heading', { name: /^Ledger/ }) }).innerText();
  assert.match(ledger, /ops@example\.com/);
  assert.match(ledger, /Duplicate account/);
  await shot('3-adjusted');

  // Stripe events: the failed one is listed first with its error; Retry runs it again.
  await page.getByRole('link', { name: 'Stripe events' }).click();
  const row = page.locator('tr[data-event="evt_browser_broken"]');
  // Its attempts so far: the background worker retries it with back-off too.
  const attempts = (text) => Number(text.match(/cs_test_gone_missing'?\t(\d+)\t/)[1]);
  const before = await row.innerText();
  assert.match(before, /failed[\s\S]*cs_test_gone_missing[\s\S]*\t\d+\t/);
  assert.ok(await page.locator('[data-reconciliation="never"]').isVisible());
  await shot('4-events');
  await row.getByRole('button', { name: 'Retry evt_browser_broken' }).click();
  await page.getByRole('heading', { name: 'Stripe events' }).waitFor();
  // Stripe still does not know the session: the retry is counted and the error kept.
  const retried = await page.locator('tr[data-event="evt_browser_broken"]').innerText();
  assert.match(retried, /failed[\s\S]*cs_test_gone_missing/);
  assert.ok(attempts(retried) > attempts(before), `${before} → ${retried}`);
  await shot('5-events-retried');

  // Logging out ends the session.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.goto(`${base}/admin/customers`);
  assert.match(page.url(), /\/admin\/login$/);
});

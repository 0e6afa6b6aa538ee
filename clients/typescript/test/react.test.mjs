// creditd/react in headless Chromium: the components render a real creditd's answers through
// CORS with a customer token; a page on an origin creditd does not allow gets nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';
import { chromium } from 'playwright-core';

import { artifactPath, CHROMIUM, freePort } from '../../../browser-tests/lib.mjs';
import { startApp, uniqueId } from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
let app;
let page;
let browser;
let allowed;
let stranger;

/** Serves the test page and its bundle on 127.0.0.1:port. */
async function serve(port, bundle) {
  const html = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>creditd/react</title>' +
    '<style>body{font-family:sans-serif;margin:2rem} .creditd-low-credits{color:#a40} .creditd-usage-chart{color:#36c} ' +
    'table{border-collapse:collapse} td,th{padding:2px 8px;border:1px solid #ccc}</style></head>' +
    '<body><div id="root"></div><script src="/bundle.js"></script></body></html>';
  const server = createServer((req, res) => {
    const js = req.url === '/bundle.js';
    res.writeHead(200, { 'content-type': js ? 'text/javascript' : 'text/html' });
    res.end(js ? bundle : html);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

before(async () => {
  const [allowedPort, strangerPort] = [await freePort(), await freePort()];
  app = await startApp({ env: { CREDITD_CORS_ALLOWED_ORIGINS: `http://127.0.0.1:${allowedPort}` } });
  const bundled = await build({
    entryPoints: [join(here, 'react', 'page.tsx')],
    bundle: true,
    write: false,
    format: 'iife',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  const bundle = bundled.outputFiles[0].text;
  allowed = await serve(allowedPort, bundle);
  stranger = await serve(strangerPort, bundle);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  await allowed?.close();
  await stranger?.close();
  await app?.stop();
});

async function open(origin, customer) {
  page = await browser.newPage({ viewport: { width: 800, height: 700 } });
  const hash = new URLSearchParams({ token: app.token(customer), base: app.url, pkg: app.pkg });
  await page.goto(`${origin}/#${hash}`);
  return page;
}

test('the components show the balance, the low-credits alert, usage and payments, and start Checkout', async () => {
  const creditd = app.client();
  const customer = uniqueId('react');
  await creditd.customers.create({ id: customer });
  await creditd.usage.record({ customer, amount: '0.5', feature: 'chat' });
  await creditd.usage.record({ customer, amount: '1.25', feature: 'image:gen' });
  await creditd.checkoutSessions.create({ customer, package: app.pkg });
  const page = await open(allowed.origin, customer);

  const balance = page.locator('.creditd-balance');
  await balance.locator('.creditd-balance-amount').waitFor();
  assert.equal((await balance.textContent()).trim(), '3.25 credits');
  assert.match(await page.getByRole('alert').textContent(), /You have 3\.25 credits left/);

  const table = page.locator('.creditd-usage-chart-table tbody tr');
  await table.first().waitFor();
  assert.deepEqual(await table.allTextContents(), ['chat0.51', 'image:gen1.251']);
  assert.equal(await page.locator('.creditd-usage-chart-caption').textContent(), '1.75 credits used');
  assert.equal(await page.locator('svg[role=img] rect').count(), 2);
  assert.equal(await page.locator('.payments li').first().textContent(), '100 credits · pending');

  await page.getByRole('button', { name: 'Buy 100 credits' }).click();
  await page.locator('#checkout', { hasText: app.sandboxUrl }).waitFor();
  const sessions = await creditd.payments.list({ customer }).toArray();
  assert.equal(sessions.length, 2, 'the button started a second Checkout');

  await page.screenshot({ path: artifactPath('creditd-react.png'), fullPage: true });
  await page.close();
});

test('a page on an origin creditd does not allow cannot read the customer', async () => {
  const customer = uniqueId('react');
  await app.client().customers.create({ id: customer });
  const page = await open(stranger.origin, customer);
  await page.locator('.creditd-balance-error').waitFor();
  assert.equal(await page.locator('.creditd-balance[role=status]').textContent(), 'Balance unavailable');
  await page.close();
});

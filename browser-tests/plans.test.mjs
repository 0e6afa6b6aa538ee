// The billing page's plans in headless Chromium: a customer on the free plan sees what each
// plan includes, subscribes to Pro through the sandbox's hosted Checkout, comes back to see
// Pro as its plan (and GPT-4o included), then cancels at the period's end.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';

import { artifactPath, launchBrowser, startCreditd } from './lib.mjs';

let app;
let browser;
after(async () => {
  await browser?.close();
  await app?.stop();
});

test('subscribe to a plan from the billing page and see the plan change', async (t) => {
  browser = await launchBrowser(t);
  if (!browser) return;
  app = await startCreditd({
    setup: [['plans', 'create', '--name', 'Pro', '--credits', '1000', '--price', '2000', '--currency', 'usd']],
  });
  for (const [id, name] of [['chat', 'Chat'], ['gpt-4o', 'GPT-4o'], ['images', 'Images']]) {
    await app.api('POST', '/v1/features', { id, name });
  }
  await app.api('POST', '/v1/plans', {
    name: 'Free', free: true, credits: '5', features: { chat: true, images: { limit: 1, period: 'day' } },
  });
  const pro = (await app.api('GET', '/v1/plans')).data.find((p) => p.name === 'Pro');
  await app.api('POST', `/v1/plans/${pro.id}`, { features: { chat: true, 'gpt-4o': true, images: { limit: 20, period: 'day' } } });
  await app.api('POST', '/v1/customers', { id: 'ada', email: 'ada@example.com' });
  await app.api('POST', '/v1/usage', { customer: 'ada', amount: '1', feature: 'images' });

  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${app.url}/billing?token=${app.token('ada')}`);
  assert.equal(await page.locator('#balance').innerText(), '9 credits', 'signup bonus and free credits, one spent');
  assert.match(await page.locator('#current-plan').innerText(), /Your plan: Free/);
  const plans = page.locator('#plans');
  assert.match(await plans.innerText(), /20\.00 USD \/ month/);
  assert.match(await plans.innerText(), /GPT-4o/);
  const images = page.locator('#entitlements tr', { hasText: 'Images' });
  assert.match(await images.innerText(), /1 per day\s+1 of 1/);
  await page.screenshot({ path: artifactPath('billing-plans-free.png'), fullPage: true });

  await page.getByRole('button', { name: 'Subscribe to Pro' }).click();
  await page.waitForURL((url) => url.href.startsWith(app.sandboxUrl));
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByLabel('Expiry (MM/YY)').fill('12 / 34');
  await page.getByLabel('CVC').fill('123');
  await page.getByLabel('Name on card').fill('Ada Lovelace');
  await page.getByRole('button', { name: /^(Pay|Subscribe)/ }).click();
  await page.waitForURL((url) => url.pathname === '/billing/success');
  await page.getByText('Subscription active').waitFor();

  await page.getByRole('link', { name: 'Back to billing' }).click();
  await page.waitForURL((url) => url.pathname === '/billing');
  assert.match(await page.locator('#current-plan').innerText(), /Your plan: Pro\s+Active/);
  assert.equal(await page.locator('#balance').innerText(), '1,009 credits');
  const gpt = page.locator('#entitlements tr', { hasText: 'GPT-4o' });
  assert.match(await gpt.innerText(), /Yes/);
  assert.match(await page.locator('#entitlements tr', { hasText: 'Images' }).innerText(), /20 per day\s+1 of 20/);
  await page.screenshot({ path: artifactPath('billing-plans-pro.png'), fullPage: true });

  await page.getByRole('button', { name: 'Cancel Pro' }).click();
  await page.waitForURL((url) => url.pathname === '/billing');
  assert.match(await page.locator('#current-plan').innerText(), /Cancels at the end of the period/);
  assert.equal(await page.getByRole('button', { name: 'Cancel Pro' }).count(), 0);
});

// The billing page in headless Chromium: open it with a customer token, see the balance, buy a
// package through the sandbox's hosted Checkout page with 4242 4242 4242 4242, come back and
// see the new balance and the payment. Screenshots at desktop and phone widths go to artifacts/.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';

import { artifactPath, launchBrowser, startCreditd } from './lib.mjs';

let app;
let browser;
after(async () => {
  await browser?.close();
  await app?.stop();
});

/** Every request the page makes must go to creditd or its sandbox: nothing from the internet. */
function watchRequests(page, allowed) {
  const outside = [];
  page.on('request', (request) => {
    const url = request.url();
    if (!allowed.some((origin) => url.startsWith(origin)) && !url.startsWith('data:')) outside.push(url);
  });
  return outside;
}

test('buy credits from the billing page and see them arrive', async (t) => {
  browser = await launchBrowser(t);
  if (!browser) return;
  app = await startCreditd({
    setup: [['packages', 'create', '--name', 'Starter', '--credits', '100', '--price', '500', '--currency', 'usd']],
  });
  await app.api('POST', '/v1/customers', { id: 'ada', email: 'ada@example.com' });
  await app.api('POST', '/v1/customers/ada/grants', { amount: '20', reason: 'welcome' });
  for (const [amount, feature] of [['3', 'chat'], ['1.5', 'image'], ['0.75', 'chat']]) {
    await app.api('POST', '/v1/usage', { customer: 'ada', amount, feature });
  }

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const outside = watchRequests(page, [app.url, app.sandboxUrl]);

  await page.goto(`${app.url}/billing?token=${app.token('ada')}`);
  assert.equal(new URL(page.url()).pathname, '/billing');
  assert.equal(new URL(page.url()).search, '', 'the token is gone from the address bar');
  assert.equal(await page.locator('#balance').innerText(), '19.75 credits');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.match(await page.locator('svg.chart title').first().textContent(), /Credits spent per day/);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'creditd_billing');
  assert.ok(session?.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Lax');
  assert.equal(await page.evaluate(() => typeof document.cookie === 'string' && document.cookie.includes('creditd_billing')), false);
  await page.screenshot({ path: artifactPath('billing-desktop.png'), fullPage: true });

  // The Buy button is reachable from the keyboard.
  let focusedBuy = false;
  for (let i = 0; i < 10 && !focusedBuy; i++) {
    await page.keyboard.press('Tab');
    focusedBuy = await page.evaluate(() => document.activeElement?.textContent?.startsWith('Buy'));
  }
  assert.ok(focusedBuy, 'Tab reaches the Buy button');

  await page.getByRole('button', { name: 'Buy Starter' }).click();
  await page.waitForURL((url) => url.href.startsWith(app.sandboxUrl));
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByLabel('Expiry (MM/YY)').fill('12 / 34');
  await page.getByLabel('CVC').fill('123');
  await page.getByLabel('Name on card').fill('Ada Lovelace');
  await page.getByRole('button', { name: 'Pay', exact: true }).click();
  await page.waitForURL((url) => url.pathname === '/billing/success');
  await page.getByText('Payment received').waitFor();
  assert.match(await page.locator('main').innerText(), /100 credits were added for 5\.00 USD/);

  await page.getByRole('link', { name: 'Back to billing' }).click();
  await page.waitForURL((url) => url.pathname === '/billing');
  assert.equal(await page.locator('#balance').innerText(), '119.75 credits');
  const payments = page.locator('section', { has: page.getByRole('heading', { name: 'Payments' }) });
  const row = payments.locator('tbody tr').first();
  assert.match(await row.innerText(), /100\s+5\.00 USD\s+Paid/);
  assert.equal(await row.getByRole('link', { name: /Receipt/ }).count(), 1);
  await page.screenshot({ path: artifactPath('billing-desktop-after-purchase.png'), fullPage: true });
  assert.deepEqual(outside, [], 'no request leaves creditd and its sandbox');

  // A phone: same page, readable without sideways scrolling.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  await small.goto(`${app.url}/billing?token=${app.token('ada')}`);
  assert.equal(await small.locator('#balance').innerText(), '119.75 credits');
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - 390);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);
  await small.screenshot({ path: artifactPath('billing-phone.png'), fullPage: true });

  // Another customer's token shows that customer, not ada.
  await app.api('POST', '/v1/customers', { id: 'grace', email: 'grace@example.com' });
  const other = await (await browser.newContext()).newPage();
  await other.goto(`${app.url}/billing?token=${app.token('grace')}`);
  assert.equal(await other.locator('#balance').innerText(), '5 credits');
  assert.match(await other.locator('body').innerText(), /No payments yet/);
  assert.doesNotMatch(await other.content(), /ada@example\.com/);
});

test('a forged or missing token shows a way back, not the page', async (t) => {
  const b = browser ?? (await launchBrowser(t));
  if (!b) return;
  browser = b;
  app ??= await startCreditd();
  const page = await (await b.newContext()).newPage();
  const response = await page.goto(`${app.url}/billing?token=${app.token('ada').slice(0, -4)}AAAA`);
  assert.equal(response.status(), 401);
  assert.match(await page.locator('h1').innerText(), /This billing link does not work/);
  const bare = await page.goto(`${app.url}/billing`);
  assert.equal(bare.status(), 401);
  assert.match(await page.locator('h1').innerText(), /Open billing from the app/);
});

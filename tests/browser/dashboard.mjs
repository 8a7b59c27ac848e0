// The dashboard in a real browser, driven by tests/tests/dashboard.rs (which starts `rezef
// serve` with API keys, publishes a scripted day and reads the API's figures): the page must
// ask for a key, then show the API's figures, and follow one customer's tracker live while the
// Rust side publishes more. Speaks with it by lines: prints `tracking` once the tracker shows the customer, then
// waits for `published` on its standard input. Screenshots go to $SCREENSHOTS.
//
// Environment: DASHBOARD_URL (the page, with ?tenant=&day=), API_KEY (a supervisor and
// auditor key of the tenant), EXPECTED_REPORT (the API's GetReportResponse for the day, proto3
// JSON), TRACK_PHONE, SCREENSHOTS, CHROMIUM.
import { createInterface } from 'node:readline';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { count, inTarget, percent } from '../../crates/rezef-server/src/dashboard/assets/format.js';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function check(what, seen, expected) {
  if (seen !== expected) throw new Error(`${what}: the page shows ${JSON.stringify(seen)}, the API ${JSON.stringify(expected)}`);
  console.error(`ok: ${what} = ${seen}`);
}

async function shot(page, name) {
  const file = path.join(env('SCREENSHOTS'), `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.error(`screenshot: ${file}`);
}

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'), headless: true, args: ['--no-sandbox'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  const errors = [];
  page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
  await page.goto(env('DASHBOARD_URL'));

  // The server wants a key: the page says so, and takes one.
  await page.waitForFunction(
    () => document.getElementById('status').textContent.includes('enter an API key'), null, { timeout: 15000 },
  );
  check('the key field has the focus', await page.evaluate(() => document.activeElement.id), 'key');
  await page.keyboard.type(env('API_KEY'));
  await page.keyboard.press('Enter');

  // The day's figures, as the API gave them.
  await page.waitForFunction(
    () => document.getElementById('status').textContent.startsWith('Live:'), null, { timeout: 15000 },
  );
  errors.length = 0; // the browser logged the refusal without a key
  const row = JSON.parse(env('EXPECTED_REPORT')).rows?.[0] ?? {};
  const text = (selector) => page.textContent(selector);
  check('classic service level', await text('#sl-classic'), percent(row.classic?.ratio));
  check('classic counts', await text('#sl-classic-counts'), inTarget(row.classic));
  check('journey-true service level', await text('#sl-journey'), percent(row.journeyTrue?.ratio));
  check('journey-true counts', await text('#sl-journey-counts'), inTarget(row.journeyTrue));
  check('contacts', await text('#contacts'), String(count(row.contacts)));
  const reasons = await page.locator('#differences li').count();
  check('reasons', reasons, Math.max(1, (row.differences ?? []).length));
  const points = await page.locator('#chart circle').count();
  if (points === 0) throw new Error('the chart shows no quarter hour');
  await shot(page, 'laptop');

  // The tracker: found by phone, followed live.
  await page.selectOption('#find-kind', 'phone');
  await page.fill('#find-value', env('TRACK_PHONE'));
  await page.keyboard.press('Enter');
  await page.waitForSelector('.stations li.current', { timeout: 15000 });
  const before = await text('.stations li.current');
  if (!before.startsWith('queue')) throw new Error(`the customer should be waiting in the queue: ${before}`);
  await page.waitForSelector('#history tbody tr:nth-child(2)', { timeout: 15000 });
  const historyBefore = await page.locator('#history tbody tr').count();
  console.log('tracking');
  const answer = await lines.next();
  if (answer.value !== 'published') throw new Error(`expected "published", got ${answer.value}`);
  await page.waitForFunction(
    () => document.querySelector('.stations li.current')?.textContent.startsWith('talk'),
    null, { timeout: 15000 },
  );
  await page.waitForFunction(
    (n) => document.querySelectorAll('#history tbody tr').length > n,
    historyBefore, { timeout: 15000 },
  );
  console.error(`ok: the tracker moved from "${before}" to "${await text('.stations li.current')}"`);
  await shot(page, 'tracker');

  // The wall screen: large type on a big display.
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.click('#wall');
  check('wall mode', await page.getAttribute('#wall', 'aria-pressed'), 'true');
  await shot(page, 'wall');
  if (errors.length) throw new Error(`the page logged errors: ${errors.join('; ')}`);
  console.log('done');
} finally {
  await browser.close();
}
process.exit(0);

// The dashboard in a real browser, driven by tests/tests/dashboard.rs (which starts `rezef
// serve` with API keys, publishes a scripted day and reads the API's figures): the page must
// ask for a key, then show the API's figures, follow one customer's tracker live while the
// Rust side publishes more, say that the connection is lost when the server is killed and
// resume by itself when it is back, and stay readable on a phone, on a wall screen and in
// the dark scheme. Screenshots go to $SCREENSHOTS.
//
// Speaks with the Rust side by lines. Prints `tracking` once the tracker shows the customer,
// then waits for `published`; prints `followed` once the tracker moved (the server may be
// killed), `lost` once the page says the connection is lost, then waits for `restarted
// <GetReportResponse JSON>` (the server back, with more events); prints `done` at the end.
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
const WAIT = { timeout: 15000 };
/** The contrast docs/dashboard.md promises for text, in both schemes (WCAG AAA). */
const CONTRAST = 7;

function check(what, seen, expected) {
  if (seen !== expected) throw new Error(`${what}: the page shows ${JSON.stringify(seen)}, the API ${JSON.stringify(expected)}`);
  console.error(`ok: ${what} = ${seen}`);
}

async function said(expected) {
  const line = (await lines.next()).value ?? '';
  if (!line.startsWith(expected)) throw new Error(`expected "${expected}", got "${line}"`);
  return line.slice(expected.length).trim();
}

async function shot(page, name) {
  const file = path.join(env('SCREENSHOTS'), `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.error(`screenshot: ${file}`);
}

const status = (page) => page.textContent('#status');

async function live(page) {
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Live:'), null, WAIT);
}

/** The page's figures are the API's `report` (proto3 JSON). */
async function sameFigures(page, report) {
  const row = report.rows?.[0] ?? {};
  const text = (selector) => page.textContent(selector);
  check('classic service level', await text('#sl-classic'), percent(row.classic?.ratio));
  check('classic counts', await text('#sl-classic-counts'), inTarget(row.classic));
  check('journey-true service level', await text('#sl-journey'), percent(row.journeyTrue?.ratio));
  check('journey-true counts', await text('#sl-journey-counts'), inTarget(row.journeyTrue));
  check('contacts', await text('#contacts'), String(count(row.contacts)));
  const reasons = await page.locator('#differences li').count();
  check('reasons', reasons, Math.max(1, (row.differences ?? []).length));
}

async function trackCaller(page) {
  await page.selectOption('#find-kind', 'phone');
  await page.fill('#find-value', env('TRACK_PHONE'));
  await page.press('#find-value', 'Enter');
  await page.waitForSelector('.stations li.current', WAIT);
}

/** Text and background of every shown element `selectors` match, as WCAG's contrast ratio. */
function contrasts(selectors) {
  const rgba = (css) => {
    const [r, g, b, a = 1] = css.match(/[\d.]+/g).map(Number);
    return [r, g, b, a];
  };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const background = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const color = rgba(getComputedStyle(e).backgroundColor);
      if (color[3] > 0) layers.push(color);
      if (color[3] === 1) break;
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  const luminance = (rgb) => {
    const [r, g, b] = rgb.slice(0, 3).map((c) => {
      const s = c / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const shown = (element) => element.getClientRects().length > 0 && element.textContent.trim();
  return selectors.flatMap((selector) => [...document.querySelectorAll(selector)].filter(shown).map((element) => {
    const below = background(element);
    const [light, dark] = [luminance(over(rgba(getComputedStyle(element).color), below)), luminance(below)]
      .sort((x, y) => y - x);
    const text = element.textContent.trim().slice(0, 30);
    return { selector, text, ratio: (light + 0.05) / (dark + 0.05) };
  }));
}

/** On this screen: nothing wider than it (nor any panel), the key figures on it, the chart's
 * labels and every text readable. */
async function readable(page, name) {
  // As the screen shows it once laid out at its size: the chart redraws on a resize, in the
  // next frame (a check right after a viewport change saw the old drawing scaled down).
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  }));
  if (scrollWidth > innerWidth) throw new Error(`${name}: the page is ${scrollWidth} px wide on a ${innerWidth} px screen`);
  const sideways = await page.evaluate(() => [...document.querySelectorAll('.panel')]
    .filter((panel) => panel.scrollWidth > panel.clientWidth)
    .map((panel) => `${panel.className} (${panel.scrollWidth} px in ${panel.clientWidth})`));
  if (sideways.length) throw new Error(`${name}: these panels scroll sideways: ${sideways}`);
  const labels = await page.evaluate(() => Math.min(
    ...[...document.querySelectorAll('#chart .tick')].map((tick) => tick.getBoundingClientRect().height),
  ));
  if (!(labels >= 12)) throw new Error(`${name}: the chart's labels are ${labels} px high`);
  for (const id of ['#status', '#sl-classic', '#sl-journey', '#contacts', '.stations li.current']) {
    const box = await page.locator(id).boundingBox();
    if (!box || box.width === 0 || box.x < 0 || box.x + box.width > innerWidth) {
      throw new Error(`${name}: ${id} is not on the screen: ${JSON.stringify(box)}`);
    }
  }
  const texts = ['#status', 'h1', 'h2', '.big', '.counts', 'figcaption', '.help', '#differences li',
    '#queues th', '#queues td', '#agents li', '.tracked', '.stations li', '#history td', 'button', 'label'];
  const measured = await page.evaluate(contrasts, texts);
  const poor = measured.filter((m) => m.ratio < CONTRAST);
  if (poor.length) throw new Error(`${name}: text below ${CONTRAST}:1: ${JSON.stringify(poor)}`);
  const lowest = Math.min(...measured.map((m) => m.ratio));
  console.error(`ok: ${name}: ${innerWidth} px, no overflow, ${measured.length} texts at ${lowest.toFixed(1)}:1 or more`);
  await shot(page, name);
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
    () => document.getElementById('status').textContent.includes('enter an API key'), null, WAIT,
  );
  check('the key field has the focus', await page.evaluate(() => document.activeElement.id), 'key');
  await page.keyboard.type(env('API_KEY'));
  await page.keyboard.press('Enter');

  // The day's figures, as the API gave them.
  await live(page);
  errors.length = 0; // the browser logged the refusal without a key
  await sameFigures(page, JSON.parse(env('EXPECTED_REPORT')));
  const points = await page.locator('#chart circle').count();
  if (points === 0) throw new Error('the chart shows no quarter hour');
  await shot(page, 'laptop');

  // The tracker: found by phone, followed live.
  await trackCaller(page);
  const before = await page.textContent('.stations li.current');
  if (!before.startsWith('queue')) throw new Error(`the customer should be waiting in the queue: ${before}`);
  await page.waitForSelector('#history tbody tr:nth-child(2)', WAIT);
  const historyBefore = await page.locator('#history tbody tr').count();
  console.log('tracking');
  await said('published');
  await page.waitForFunction(
    () => document.querySelector('.stations li.current')?.textContent.startsWith('talk'), null, WAIT,
  );
  await page.waitForFunction(
    (n) => document.querySelectorAll('#history tbody tr').length > n, historyBefore, WAIT,
  );
  console.error(`ok: the tracker moved from "${before}" to "${await page.textContent('.stations li.current')}"`);
  await shot(page, 'tracker');

  // The server killed: the page says so where screen readers hear it, keeping the figures.
  console.log('followed');
  await page.waitForFunction(
    () => /lost.*reconnecting/.test(document.getElementById('status').textContent), null, WAIT,
  );
  const region = await page.evaluate(() => {
    const box = document.getElementById('status');
    return `${box.getAttribute('role')} ${box.getAttribute('aria-live')}`;
  });
  check('the status is a live region', region, 'status polite');
  console.error(`ok: the page says "${await status(page)}"`);
  await shot(page, 'connection-lost');
  console.log('lost');

  // Back on the same address with more events: the page resumes by itself, with the API's
  // figures, and the tracker too.
  const report = JSON.parse(await said('restarted'));
  await page.waitForFunction(
    (contacts) => document.getElementById('status').textContent.startsWith('Live:')
      && document.getElementById('contacts').textContent === contacts,
    String(count(report.rows?.[0]?.contacts)), WAIT,
  );
  await sameFigures(page, report);
  await page.waitForFunction(
    () => document.querySelector('.stations li.current')?.textContent.startsWith('talk'), null, WAIT,
  );
  console.error(`ok: resumed: "${await status(page)}"`);
  // While the server was down, the browser logged each refused connection.
  errors.length = 0;

  // Readable on a phone, in the dark, and on a wall screen across the room (its address).
  await page.setViewportSize({ width: 390, height: 844 });
  await readable(page, 'phone');
  await page.setViewportSize({ width: 1366, height: 900 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await readable(page, 'dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.goto(`${env('DASHBOARD_URL')}&wall=1`);
  await live(page);
  check('wall mode', await page.getAttribute('#wall', 'aria-pressed'), 'true');
  await trackCaller(page);
  await readable(page, 'wall');
  if (errors.length) throw new Error(`the page logged errors: ${errors.join('; ')}`);
  console.log('done');
} finally {
  await browser.close();
}
process.exit(0);

// The web chat widget in a real browser, driven by crates/rezef-webchat/tests/browser.rs
// (which starts `rezef serve`, the adapter and an agent desktop): the visitor opens the demo
// page, types to the bot and gets its answer, asks for an agent and is told to wait; the Rust
// side's agent accepts and replies, and the page must show the reply with the agent's name
// and status. Then the widget must stay usable: the log is a live region, Escape closes the
// panel and gives the focus back, and on a phone the panel fits the screen. Screenshots go to
// $SCREENSHOTS (webchat-*.png).
//
// Speaks with the Rust side by lines: prints `waiting` once the page says it waits for an
// agent, then waits for `replied <text>`; prints `done` at the end.
//
// Environment: CHAT_URL (the adapter's demo page), SCREENSHOTS, CHROMIUM.
import { createInterface } from 'node:readline';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const WAIT = { timeout: 15000 };

async function said(expected) {
  const line = (await lines.next()).value ?? '';
  if (!line.startsWith(expected)) throw new Error(`expected "${expected}", got "${line}"`);
  return line.slice(expected.length).trim();
}

async function shot(page, name) {
  const file = path.join(env('SCREENSHOTS'), `webchat-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.error(`screenshot: ${file}`);
}

function check(what, ok, detail = '') {
  if (!ok) throw new Error(`${what} ${detail}`);
  console.error(`ok: ${what}`);
}

const statusIs = (page, text) => page.waitForFunction(
  (expected) => document.getElementById('rzc-status')?.textContent === expected, text, WAIT);

/** Types `text` in the message box as a person would, and sends it with Enter. */
async function type(page, text) {
  const box = page.getByLabel('Your message');
  await box.focus();
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

const browser = await chromium.launch({ executablePath: env('CHROMIUM'), args: ['--no-sandbox'] });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('console', (message) => console.error(`page: ${message.text()}`));
  await page.goto(env('CHAT_URL'));

  // The panel is open, connected to the bot, and greets.
  await statusIs(page, 'You are chatting with our assistant');
  await page.locator('.rzc-from-bot').first().waitFor(WAIT);
  check('the bot greets', (await page.locator('.rzc-from-bot').count()) === 1);

  // A keyword is answered.
  await type(page, 'What are your opening hours?');
  await page.locator('.rzc-from-customer').filter({ hasText: 'opening hours' }).waitFor(WAIT);
  await page.locator('.rzc-from-bot').filter({ hasText: 'We are open' }).waitFor(WAIT);
  check('the message was acknowledged', (await page.locator('.rzc-pending').count()) === 0);
  await shot(page, 'bot');

  // Asking for an agent: the chat waits for one.
  await type(page, 'I would like to talk to an agent');
  await statusIs(page, 'Waiting for an agent…');
  console.log('waiting');
  const reply = await said('replied');

  // The agent accepted and replied: the page shows it, and who it is from.
  await statusIs(page, 'An agent is with you');
  const fromAgent = page.locator('.rzc-from-agent').filter({ hasText: reply });
  await fromAgent.waitFor(WAIT);
  const sender = await fromAgent.locator('.rzc-sender').textContent();
  check('the reply names the agent', sender.includes('Agent dana'), sender);
  const log = page.locator('#rzc-log');
  check('new messages are announced', (await log.getAttribute('aria-live')) === 'polite'
    && (await log.getAttribute('role')) === 'log');
  await shot(page, 'agent');

  // Keyboard: Escape closes the panel and gives the focus back to its button; Enter opens it.
  await page.getByLabel('Your message').focus();
  await page.keyboard.press('Escape');
  check('Escape closes the panel', await page.locator('#rzc-panel').isHidden());
  const focused = await page.evaluate(() => document.activeElement?.className);
  check('the focus is back on the launcher', focused === 'rzc-launcher', focused);
  await page.keyboard.press('Enter');
  check('Enter opens it again', await page.locator('#rzc-panel').isVisible());

  // On a phone the panel takes the screen and nothing overflows sideways.
  await page.setViewportSize({ width: 375, height: 667 });
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const box = await page.locator('#rzc-panel').boundingBox();
  check('the panel fits a phone', box && box.x >= 0 && box.width <= 375 && box.height <= 667,
    JSON.stringify(box));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  check('nothing overflows sideways', !overflow);
  const tap = await page.locator('.rzc-send').boundingBox();
  check('the send button is big enough to tap', tap && tap.height >= 44, JSON.stringify(tap));
  await shot(page, 'phone');
  console.log('done');
} finally {
  await browser.close();
}

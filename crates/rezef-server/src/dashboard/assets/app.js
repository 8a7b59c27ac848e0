// The dashboard page: what to show (tenant, day, key; from the form or the address, e.g.
// `/?tenant=acme&day=2026-12-01&wall=1`), the live stream feeding the panels, and the
// customer tracker with the customer's events. Both streams reconnect by themselves after a
// drop (not after a refusal: a bad key or request stays refused); the figures stay drawn
// meanwhile, and the status says the connection is lost once, not at every try (it is an
// aria-live region: the same words again would be read out again).
import {
  Refused, events, getKey, read, setKey,
} from './api.js';
import * as panels from './panels.js';

const $ = (id) => document.getElementById(id);
const RETRY_MS = 3000;
const RECONNECTING = `reconnecting every ${RETRY_MS / 1000} s…`;
let live = null;
let tracking = null;

/** Shows `text` in `box` (an aria-live region) unless it already says so. */
function note(box, text) {
  if (box.textContent === text) return;
  box.replaceChildren(Object.assign(document.createElement('p'), { textContent: text }));
}

function say(text) {
  if ($('status').textContent !== text) $('status').textContent = text;
}

function day() {
  return $('day').value;
}

/** The day's range, UTC. */
function range() {
  const from = new Date(`${day()}T00:00:00Z`);
  const to = new Date(from.getTime() + 86400000);
  return { from: from.toISOString(), to: to.toISOString(), start: from.getTime() };
}

function explain(error) {
  if (error instanceof Refused && error.status === 401) {
    $('key').focus();
    return `${error.message}: enter an API key.`;
  }
  if (error instanceof Refused) return `${error.code}: ${error.message}`;
  return `Connection to the server lost; ${RECONNECTING}`;
}

/** The live panels; `again` after a drop, when the status already says so. */
async function follow(again = false) {
  live?.abort();
  const controller = new AbortController();
  live = controller;
  const tenantId = $('tenant').value.trim();
  if (!tenantId || !day()) return;
  const { from, to, start } = range();
  $('range').textContent = `on ${day()} (UTC)`;
  if (!again) say(`Connecting to ${tenantId}…`);
  try {
    for await (const { name, data } of events('/api/live', { tenantId, from, to }, controller.signal)) {
      if (name === 'report') { panels.report(data); say(`Live: ${tenantId}, ${day()}.`); }
      else if (name === 'spread') panels.spread(data, start);
      else if (name === 'queues') panels.queues(data);
      else if (name === 'agents') panels.agents(data);
      else if (name === 'problem') panels.problem(data.source, data);
    }
    if (!controller.signal.aborted) say(`The server closed the stream; ${RECONNECTING}`);
  } catch (error) {
    if (controller.signal.aborted) return;
    say(explain(error));
    if (error instanceof Refused && error.status < 500) return;
  }
  if (!controller.signal.aborted) setTimeout(() => live === controller && follow(true), RETRY_MS);
}

function customer() {
  const value = $('find-value').value.trim();
  const kind = $('find-kind').value;
  if (kind === 'id') return { customerId: value };
  const identity = kind === 'phone' ? 'IDENTITY_KIND_PHONE' : 'IDENTITY_KIND_EMAIL';
  return { identity: { kind: identity, value } };
}

let asked = 0;

/** The customer's events again; only the latest answer is drawn. */
async function history(tenantId, who, signal) {
  asked += 1;
  const mine = asked;
  try {
    const answer = await read('/api/history', { tenantId, customer: who, limit: 500 }, signal);
    if (mine === asked) panels.history(answer);
  } catch (error) {
    if (!signal.aborted && mine === asked) panels.refusedHistory(explain(error));
  }
}

/** The customer's tracker; `again` after a drop, keeping what the panel says. */
async function track(again = false) {
  tracking?.abort();
  const controller = new AbortController();
  tracking = controller;
  const tenantId = $('tenant').value.trim();
  const who = customer();
  if (!again) note($('tracker'), 'Looking…');
  try {
    for await (const { name, data } of events('/api/track', { tenantId, customer: who }, controller.signal)) {
      if (name === 'tracker') {
        panels.tracker(data, Date.now());
        history(tenantId, who, controller.signal);
      } else if (name === 'problem') {
        $('tracker').firstElementChild.textContent = `${data.code}: ${data.message}`;
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
    note($('tracker'), explain(error));
    if (error instanceof Refused && error.status < 500) return;
  }
  if (!controller.signal.aborted) setTimeout(() => tracking === controller && track(true), RETRY_MS);
}

function wall(on) {
  document.documentElement.classList.toggle('wall', on);
  $('wall').setAttribute('aria-pressed', String(on));
}

function start() {
  const asked = new URLSearchParams(window.location.search);
  $('tenant').value = asked.get('tenant') ?? localStorage.getItem('rezef.tenant') ?? '';
  $('day').value = asked.get('day') ?? new Date().toISOString().slice(0, 10);
  $('key').value = getKey();
  wall(asked.get('wall') === '1');
  $('settings').addEventListener('submit', (event) => {
    event.preventDefault();
    localStorage.setItem('rezef.tenant', $('tenant').value.trim());
    setKey($('key').value);
    follow();
  });
  $('wall').addEventListener('click', () => wall(!document.documentElement.classList.contains('wall')));
  $('station').addEventListener('change', panels.redrawSpread);
  // The chart is drawn at its width: again when that changes (a window resized, wall mode).
  let chartWidth = 0;
  new ResizeObserver(([seen]) => {
    if (Math.round(seen.contentRect.width) === chartWidth) return;
    chartWidth = Math.round(seen.contentRect.width);
    panels.redrawSpread();
  }).observe($('chart'));
  $('find').addEventListener('submit', (event) => {
    event.preventDefault();
    track();
  });
  follow();
}

start();

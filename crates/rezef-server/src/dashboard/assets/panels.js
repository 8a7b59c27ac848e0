// Each panel drawn from the API's answer as it arrives (the messages of proto/rezef/v1 in
// their proto3 JSON form).
import * as chart from './chart.js';
import {
  camelWords, count, duration, inTarget, percent, seconds, time, words,
} from './format.js';

const $ = (id) => document.getElementById(id);

function cell(row, text, header) {
  const td = document.createElement(header ? 'th' : 'td');
  if (header) td.scope = 'row';
  td.textContent = text;
  row.append(td);
}

function rows(tbody, items, columns, empty) {
  const drawn = items.map((item) => {
    const tr = document.createElement('tr');
    columns(item).forEach((text, i) => cell(tr, String(text), i === 0));
    return tr;
  });
  if (!drawn.length) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = tbody.closest('table').querySelectorAll('thead th').length;
    td.textContent = empty;
    tr.append(td);
    drawn.push(tr);
  }
  tbody.replaceChildren(...drawn);
}

function list(ul, items, empty) {
  const drawn = (items.length ? items : [empty]).map((text) => {
    const li = document.createElement('li');
    li.textContent = text;
    return li;
  });
  ul.replaceChildren(...drawn);
}

/** `report`: the range's figures (one row: the report is asked without grouping). */
export function report(answer) {
  const row = answer.rows?.[0] ?? {};
  $('sl-classic').textContent = percent(row.classic?.ratio);
  $('sl-classic-counts').textContent = inTarget(row.classic);
  $('sl-journey').textContent = percent(row.journeyTrue?.ratio);
  $('sl-journey-counts').textContent = inTarget(row.journeyTrue);
  $('contacts').textContent = String(count(row.contacts));
  const reasons = (row.differences ?? []).map(
    (d) => `${words(d.reason, 'DIFFERENCE_REASON_')}: ${count(d.contacts)}`,
  );
  list($('differences'), reasons, 'No difference.');
}

let lastSpread = { rows: [] };
let lastDayStart = 0;

/** `spread`: the range by quarter hour; the chart of the station chosen. */
export function spread(answer, dayStart) {
  lastSpread = answer;
  lastDayStart = dayStart;
  redrawSpread();
}

export function redrawSpread() {
  const select = $('station');
  const station = select.value;
  const data = chart.points(lastSpread.rows ?? [], station, lastDayStart);
  const name = select.selectedOptions[0]?.textContent ?? station;
  chart.draw($('chart'), data, `${name}: p50, p90 and p99 per quarter hour`);
  rows($('spread-table').tBodies[0], data, (p) => [
    time(p.start).slice(0, 5), p.count, duration(p.p50), duration(p.p90), duration(p.p99),
  ], 'Nothing measured yet.');
}

/** `queues`: Routing's figures now. */
export function queues(answer) {
  rows($('queues').tBodies[0], answer.queues ?? [], (q) => [
    q.queueId, count(q.waiting), duration(seconds(q.longestWait)), count(q.scheduled),
    Object.values(q.available ?? {}).reduce((a, b) => a + count(b), 0),
  ], 'No queues.');
}

/** `agents`: how many agents in each presence. */
export function agents(answer) {
  const by = new Map();
  for (const agent of answer.agents ?? []) {
    const presence = words(agent.presence ?? 'PRESENCE_UNSPECIFIED', 'PRESENCE_');
    by.set(presence, (by.get(presence) ?? 0) + 1);
  }
  list($('agents'), [...by].map(([presence, n]) => `${presence}: ${n}`), 'No agents.');
}

/** A panel's source failed: say so where its figures would be. */
export function problem(source, said) {
  const text = `${said.code}: ${said.message}`;
  if (source === 'queues') rows($('queues').tBodies[0], [], () => [], text);
  else if (source === 'agents') list($('agents'), [], text);
  else list($('differences'), [], text);
}

/** `tracker`: the customer's open conversation, station by station. */
export function tracker(answer, now) {
  const box = $('tracker');
  const conversation = answer.conversation;
  const head = document.createElement('p');
  head.className = 'tracked';
  if (!conversation) {
    head.textContent = `Customer ${answer.customerId}: no open conversation.`;
    box.replaceChildren(head);
    return;
  }
  const intent = conversation.intent ? `, about ${conversation.intent}` : '';
  head.textContent = `Customer ${answer.customerId}: conversation since ${time(conversation.openedAt)}${intent}.`;
  const contacts = document.createElement('ol');
  contacts.className = 'contacts';
  for (const contact of conversation.contacts ?? []) {
    const li = document.createElement('li');
    const title = document.createElement('p');
    const channel = words(contact.channel ?? '', 'CHANNEL_');
    const queue = contact.queueId ? ` in ${contact.queueId}` : '';
    const ended = contact.endedAt ? `, ended ${time(contact.endedAt)}` : ', going on';
    const arrived = contact.callbackArrivalAt
      ? `, a callback: first arrived ${time(contact.callbackArrivalAt)}` : '';
    title.textContent = `${channel} ${contact.interactionId}${queue}${arrived}${ended}`;
    const stations = document.createElement('ol');
    stations.className = 'stations';
    for (const station of contact.stations ?? []) {
      const item = document.createElement('li');
      const until = station.until ? Date.parse(station.until) : now;
      const took = duration((until - Date.parse(station.enteredAt)) / 1000);
      item.className = station.until ? 'done' : 'current';
      item.textContent = `${words(station.station, 'STATION_')}: ${took}${station.until ? '' : ' so far'}`;
      stations.append(item);
    }
    li.append(title, stations);
    contacts.append(li);
  }
  box.replaceChildren(head, contacts);
}

const ENVELOPE = new Set([
  'eventId', 'tenantId', 'occurredAt', 'recordedAt', 'source', 'schemaVersion', 'customer',
  'conversationId', 'interactionId', 'channel', 'forwardedToCustomerId',
]);

/** The customer's events from the audit log, oldest first. */
export function history(answer) {
  rows($('history').tBodies[0], answer.events ?? [], (replayed) => {
    const event = replayed.event ?? {};
    const what = Object.keys(event).find((k) => !ENVELOPE.has(k)) ?? '';
    return [
      count(replayed.offset), time(event.occurredAt), camelWords(what),
      words(event.channel ?? '', 'CHANNEL_'), event.interactionId ?? '',
    ];
  }, 'No events.');
}

/** A panel's read was refused. */
export function refusedHistory(text) {
  rows($('history').tBodies[0], [], () => [], text);
}

// The Rezef chat widget: embed it with <script src="https://chat.example.com/widget.js" defer>.
// It speaks the adapter's WebSocket protocol (docs/adapters.md, "The web chat adapter"),
// keeps the visitor's id (and the open chat's) in localStorage so that a visitor coming back
// carries on, sends again the messages not yet acknowledged after a reconnect (same ids: they
// are recorded once), and is usable by keyboard and screen readers (labels, a live log).
// Options on the script tag: data-endpoint (the WebSocket URL; default /chat beside this
// script), data-title, data-language (BCP 47; default the page's lang), data-open="true".
(() => {
  'use strict';
  const script = document.currentScript;
  const base = new URL(script.src, location.href);
  const options = script.dataset;
  const endpoint = options.endpoint
    || `${base.protocol === 'https:' ? 'wss:' : 'ws:'}//${base.host}/chat`;
  const title = options.title || 'Chat with us';
  const language = options.language || document.documentElement.lang || undefined;
  const KEYS = { visitor: 'rezef-chat-visitor', chat: 'rezef-chat-id' };
  const STATUS = {
    connecting: 'Connecting…',
    reconnecting: 'Connection lost; reconnecting…',
    bot: 'You are chatting with our assistant',
    waiting: 'Waiting for an agent…',
    agent: 'An agent is with you',
    ended: 'The chat has ended',
  };

  const store = {
    get: (key) => { try { return localStorage.getItem(key); } catch { return null; } },
    set: (key, value) => { try { localStorage.setItem(key, value); } catch { /* private mode */ } },
    remove: (key) => { try { localStorage.removeItem(key); } catch { /* private mode */ } },
  };
  const randomId = (prefix) => {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  };
  const visitor = store.get(KEYS.visitor) || randomId('v-');
  store.set(KEYS.visitor, visitor);

  const css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = new URL('widget.css', base).href;
  document.head.append(css);

  const el = (tag, attributes = {}, text = '') => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  };
  const root = el('div', { class: 'rzc' });
  const launcher = el('button', { type: 'button', class: 'rzc-launcher', 'aria-expanded': 'false', 'aria-controls': 'rzc-panel' }, title);
  const panel = el('section', { id: 'rzc-panel', class: 'rzc-panel', role: 'dialog', 'aria-labelledby': 'rzc-title' });
  panel.hidden = true;
  const header = el('header', { class: 'rzc-header' });
  const heading = el('h2', { id: 'rzc-title' }, title);
  const status = el('p', { id: 'rzc-status', class: 'rzc-status', role: 'status' }, STATUS.connecting);
  const hide = el('button', { type: 'button', class: 'rzc-hide', 'aria-label': 'Close the chat window' }, '×');
  header.append(heading, status, hide);
  const log = el('ol', { id: 'rzc-log', class: 'rzc-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' });
  const form = el('form', { class: 'rzc-form' });
  const label = el('label', { for: 'rzc-input' }, 'Your message');
  const input = el('textarea', { id: 'rzc-input', rows: '2', maxlength: '2000', autocomplete: 'off', 'aria-describedby': 'rzc-hint' });
  const hint = el('span', { id: 'rzc-hint', class: 'rzc-hint' }, 'Enter sends; Shift+Enter starts a new line.');
  const sendButton = el('button', { type: 'submit', class: 'rzc-send' }, 'Send');
  const endButton = el('button', { type: 'button', class: 'rzc-end' }, 'End chat');
  form.append(label, input, hint, sendButton);
  panel.append(header, log, form, endButton);
  root.append(launcher, panel);
  document.body.append(root);

  const who = { customer: 'You', bot: 'Assistant', agent: 'Agent', system: 'Notice' };
  /** Shows a message; `pending` ones are marked until acknowledged. */
  function show(entry, id) {
    const item = el('li', { class: `rzc-msg rzc-from-${entry.from}` });
    if (id) item.dataset.id = id;
    const sender = entry.from === 'agent' && entry.sender ? `Agent ${entry.sender}` : who[entry.from] || entry.from;
    const viaOther = entry.channel && entry.channel !== 'webchat' ? ` (by ${entry.channel})` : '';
    item.append(el('span', { class: 'rzc-sender' }, `${sender}${viaOther}: `));
    item.append(el('span', { class: 'rzc-text', dir: 'auto' }, entry.text));
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }
  function setStatus(name) {
    status.textContent = STATUS[name] || name;
    panel.dataset.status = name;
  }

  let socket = null;
  let delay = 1000;
  let ended = false;
  /** Messages sent and not yet acknowledged, by id, in order. */
  const pending = new Map();

  function connect() {
    ended = false;
    socket = new WebSocket(endpoint);
    socket.addEventListener('open', () => {
      delay = 1000;
      const hello = { type: 'hello', visitor, page: location.href };
      const chat = store.get(KEYS.chat);
      if (chat) hello.chat = chat;
      if (language) hello.language = language;
      socket.send(JSON.stringify(hello));
    });
    socket.addEventListener('message', (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      receive(frame);
    });
    socket.addEventListener('close', () => {
      if (ended) return;
      setStatus('reconnecting');
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    });
  }

  function receive(frame) {
    switch (frame.type) {
      case 'welcome':
        store.set(KEYS.chat, frame.chat);
        log.replaceChildren();
        for (const entry of frame.transcript) show(entry);
        for (const [id, text] of pending) {
          show({ from: 'customer', text }, id).classList.add('rzc-pending');
          socket.send(JSON.stringify({ type: 'message', id, text }));
        }
        break;
      case 'message':
        show(frame);
        break;
      case 'ack': {
        pending.delete(frame.id);
        const item = log.querySelector(`[data-id="${CSS.escape(frame.id)}"]`);
        if (item) item.classList.remove('rzc-pending');
        break;
      }
      case 'status':
        setStatus(frame.status);
        if (frame.status === 'ended') finish();
        break;
      case 'error':
        show({ from: 'system', text: frame.reason === 'unavailable'
          ? 'Your message could not be sent; it will be tried again.'
          : `Something went wrong (${frame.reason}).` });
        break;
      default:
        break;
    }
  }

  /** The chat is over: the next message starts a new one. */
  function finish() {
    ended = true;
    store.remove(KEYS.chat);
    endButton.textContent = 'Start a new chat';
    if (socket) socket.close();
  }

  function send() {
    const text = input.value.trim();
    if (!text) return;
    const id = randomId('m-');
    pending.set(id, text);
    show({ from: 'customer', text }, id).classList.add('rzc-pending');
    input.value = '';
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'message', id, text }));
    }
  }

  form.addEventListener('submit', (event) => { event.preventDefault(); send(); });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); send(); }
  });
  endButton.addEventListener('click', () => {
    if (ended) {
      endButton.textContent = 'End chat';
      setStatus('connecting');
      connect();
    } else if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'end' }));
    }
  });

  function toggle(open) {
    panel.hidden = !open;
    launcher.setAttribute('aria-expanded', String(open));
    if (open) {
      if (!socket) connect();
      input.focus();
    } else {
      launcher.focus();
    }
  }
  launcher.addEventListener('click', () => toggle(panel.hidden));
  hide.addEventListener('click', () => toggle(false));
  panel.addEventListener('keydown', (event) => { if (event.key === 'Escape') toggle(false); });
  if (options.open === 'true') toggle(true);
})();

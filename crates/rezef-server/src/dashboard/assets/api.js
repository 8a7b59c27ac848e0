// The dashboard's reads (docs/dashboard.md): each is a POST of a gRPC request in its proto3
// JSON form; a refusal answers the gRPC code and message. Event streams are read with fetch,
// not EventSource, so that the API key goes along.

/** A refused read: the HTTP status, and the gRPC code and message. */
export class Refused extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let key = sessionStorage.getItem('rezef.key') || '';

/** The API key sent as `Authorization: Bearer`, kept for this tab only. */
export function setKey(value) {
  key = value;
  if (value) sessionStorage.setItem('rezef.key', value);
  else sessionStorage.removeItem('rezef.key');
}

export function getKey() {
  return key;
}

async function post(path, body, signal) {
  const headers = { 'Content-Type': 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, {
    method: 'POST', headers, body: JSON.stringify(body), signal,
  });
  if (!response.ok) {
    let said = { code: `HTTP ${response.status}`, message: response.statusText };
    try { said = await response.json(); } catch { /* not JSON: the status says it */ }
    throw new Refused(response.status, said.code, said.message);
  }
  return response;
}

/** One answer, as JSON. */
export async function read(path, body, signal) {
  return (await post(path, body, signal)).json();
}

/** The events of a stream, `{name, data}`, until it ends or `signal` aborts. */
export async function* events(path, body, signal) {
  const response = await post(path, body, signal);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) yield { name, data: JSON.parse(data.join('\n')) };
    }
  }
}

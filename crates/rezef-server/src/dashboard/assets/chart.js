// The spread of a station's durations over the day: p50, p90 and p99 per quarter hour as
// three lines in an inline SVG drawn here (no chart library: nothing to fetch), with the
// same figures in a table beside it for screen readers. It is drawn at the size it is shown
// (one unit a pixel, sizes in the page's `em`): its labels keep the page's type size on a
// phone and on a wall screen alike, and it is drawn again when its width changes.
import { duration, seconds } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const QUARTERS = 96;

function node(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) element.setAttribute(k, v);
  if (text !== undefined) element.textContent = text;
  return element;
}

/** The station's spread per quarter of the day starting at `dayStart` (ms). */
export function points(rows, station, dayStart) {
  return rows.flatMap((row) => {
    const spread = (row.stations ?? []).find((s) => s.station === station);
    if (!spread) return [];
    const quarter = Math.round((Date.parse(row.start) - dayStart) / 900000);
    return [{
      quarter, start: row.start, count: Number(spread.count ?? 0),
      p50: seconds(spread.p50), p90: seconds(spread.p90), p99: seconds(spread.p99),
    }];
  });
}

/** Draws `data` (from `points`) into `container`, described by `label`, as wide as it is. */
export function draw(container, data, label) {
  const em = parseFloat(getComputedStyle(container).fontSize) || 16;
  const width = Math.max(container.clientWidth, 18 * em);
  const height = 16 * em;
  const pad = { left: 4 * em, right: 1.75 * em, top: 0.75 * em, bottom: 1.75 * em };
  // Fewer hours named where they would not fit side by side.
  const every = width < 36 * em ? 6 : 3;
  const top = Math.max(60, ...data.map((p) => p.p99));
  const x = (q) => pad.left + ((width - pad.left - pad.right) * q) / QUARTERS;
  const y = (s) => height - pad.bottom - ((height - pad.top - pad.bottom) * s) / top;
  const svg = node('svg', {
    viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label, class: 'chart-svg',
  });
  for (let i = 0; i <= 4; i += 1) {
    const s = (top * i) / 4;
    svg.append(node('line', { x1: pad.left, x2: width - pad.right, y1: y(s), y2: y(s), class: 'grid' }));
    svg.append(node('text', { x: pad.left - 0.4 * em, y: y(s) + 0.3 * em, class: 'tick end' }, duration(s)));
  }
  for (let h = 0; h <= 24; h += every) {
    svg.append(node('text', { x: x(h * 4), y: height - 0.5 * em, class: 'tick middle' }, `${String(h).padStart(2, '0')}:00`));
  }
  for (const p of ['p50', 'p90', 'p99']) {
    const line = data.map((d) => `${x(d.quarter + 0.5).toFixed(1)},${y(d[p]).toFixed(1)}`).join(' ');
    if (data.length > 1) svg.append(node('polyline', { points: line, class: `line ${p}` }));
    for (const d of data) {
      svg.append(node('circle', { cx: x(d.quarter + 0.5), cy: y(d[p]), r: 0.2 * em, class: `dot ${p}` }));
    }
  }
  if (!data.length) {
    svg.append(node('text', { x: width / 2, y: height / 2, class: 'tick middle' }, 'Nothing measured yet'));
  }
  container.replaceChildren(svg);
}

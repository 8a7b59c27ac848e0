// The spread of a station's durations over the day: p50, p90 and p99 per quarter hour as
// three lines in an inline SVG drawn here (no chart library: nothing to fetch), with the
// same figures in a table beside it for screen readers.
import { duration, seconds } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 960;
const HEIGHT = 300;
const PAD = { left: 64, right: 28, top: 12, bottom: 28 };
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

/** Draws `data` (from `points`) into `container`, described by `label`. */
export function draw(container, data, label) {
  const top = Math.max(60, ...data.map((p) => p.p99));
  const x = (q) => PAD.left + ((WIDTH - PAD.left - PAD.right) * q) / QUARTERS;
  const y = (s) => HEIGHT - PAD.bottom - ((HEIGHT - PAD.top - PAD.bottom) * s) / top;
  const svg = node('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': label, class: 'chart-svg',
  });
  for (let i = 0; i <= 4; i += 1) {
    const s = (top * i) / 4;
    svg.append(node('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(s), y2: y(s), class: 'grid' }));
    svg.append(node('text', { x: PAD.left - 6, y: y(s) + 4, class: 'tick end' }, duration(s)));
  }
  for (let h = 0; h <= 24; h += 3) {
    svg.append(node('text', { x: x(h * 4), y: HEIGHT - 8, class: 'tick middle' }, `${String(h).padStart(2, '0')}:00`));
  }
  for (const p of ['p50', 'p90', 'p99']) {
    const line = data.map((d) => `${x(d.quarter + 0.5).toFixed(1)},${y(d[p]).toFixed(1)}`).join(' ');
    if (data.length > 1) svg.append(node('polyline', { points: line, class: `line ${p}` }));
    for (const d of data) {
      svg.append(node('circle', { cx: x(d.quarter + 0.5), cy: y(d[p]), r: 3, class: `dot ${p}` }));
    }
  }
  if (!data.length) {
    svg.append(node('text', { x: WIDTH / 2, y: HEIGHT / 2, class: 'tick middle' }, 'Nothing measured yet'));
  }
  container.replaceChildren(svg);
}

// Corridor performance (CAREC CPMM): time at each BCP (median, p90) as a table and a bar
// chart, its course over time when the server gives a series, and speed per corridor section.

import * as api from '/assets/js/api.js';
import { t } from '/assets/js/i18n.js';
import { h, s, duration, number, dateTime, unavailable, errorBox } from '/assets/js/format.js';

let body = null;

export function mount(container) {
  body = h('div', { class: 'perf' }, h('p', { class: 'muted' }, t('loading')));
  container.append(h('div', { class: 'view' }, h('h1', {}, t('view_performance')), body));
  load();
}

export function unmount() {
  body = null;
}

function stat(row, key) {
  return row[key] ?? row.distribution?.[key] ?? row.stats?.[key] ?? null;
}

async function load() {
  const target = body;
  try {
    const data = await api.get('/api/v1/stats/bcp-times');
    if (target !== body) return;
    const bcps = api.listOf(data, 'bcps', 'items', 'bcp_times').filter((r) => stat(r, 'median_s') !== null);
    const sections = api.listOf(data, 'sections', 'section_speeds');
    body.replaceChildren(
      h('section', { class: 'panel' }, h('h2', {}, t('bcp_times')),
        data?.from || data?.to ? h('p', { class: 'muted' }, `${dateTime(data.from)} – ${dateTime(data.to)}`) : null,
        bcps.length ? [legend(), chart(bcps), table(bcps), bcps.filter((r) => r.series?.length).map(history)] : h('p', { class: 'empty' }, t('no_bcp_times'))),
      h('section', { class: 'panel' }, h('h2', {}, t('section_speeds')),
        sections.length ? sectionTable(sections) : h('p', { class: 'empty' }, t('no_section_speeds'))));
  } catch (error) {
    if (target !== body) return;
    body.replaceChildren(error instanceof api.NotAvailable ? unavailable(t('view_performance')) : errorBox(error));
  }
}

function name(row) {
  return row.name ?? row.bcp_name ?? row.bcp_id ?? row.id;
}

function legend() {
  return h('p', { class: 'chart-legend' },
    h('span', {}, h('span', { class: 'swatch median', 'aria-hidden': 'true' }), t('median')),
    h('span', {}, h('span', { class: 'swatch p90', 'aria-hidden': 'true' }), t('p90')));
}

/** Horizontal bars: p90 (light, full) under the median (dark), each with its value written. */
function chart(rows) {
  const max = Math.max(...rows.map((r) => stat(r, 'p90_s') ?? stat(r, 'median_s'))) || 1;
  const rowH = 34; const left = 170; const width = 760; const top = 10;
  const height = top + rows.length * rowH + 24;
  const x = (v) => left + (v / max) * (width - left - 190);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': t('bcp_chart_label'), width: '100%' });
  for (let i = 0; i <= 4; i += 1) {
    const v = (max * i) / 4;
    svg.append(s('line', { class: 'grid', x1: x(v), x2: x(v), y1: top, y2: height - 20 }),
      s('text', { x: x(v), y: height - 6, 'text-anchor': 'middle' }, duration(v)));
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const median = stat(r, 'median_s'); const p90 = stat(r, 'p90_s');
    svg.append(s('text', { x: left - 8, y: y + 19, 'text-anchor': 'end' }, name(r)));
    if (p90 !== null) svg.append(s('rect', { class: 'bar-p90', x: left, y: y + 4, width: Math.max(1, x(p90) - left), height: 22 }));
    svg.append(s('rect', { class: 'bar-median', x: left, y: y + 9, width: Math.max(1, x(median) - left), height: 12 }),
      s('text', { x: x(p90 ?? median) + 6, y: y + 19 }, `${duration(median)} / ${duration(p90)}`));
  });
  svg.append(s('line', { class: 'axis', x1: left, x2: left, y1: top, y2: height - 20 }));
  return svg;
}

function table(rows) {
  return h('table', {}, h('caption', { class: 'visually-hidden' }, t('bcp_times')),
    h('thead', {}, h('tr', {}, ['bcp', 'passages', 'median', 'p90'].map((c) => h('th', { scope: 'col' }, t(c))))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', {}, name(r)), h('td', {}, number(stat(r, 'count'))),
      h('td', {}, duration(stat(r, 'median_s'))), h('td', {}, duration(stat(r, 'p90_s')))))));
}

/** A BCP's median and p90 over time, as two lines. */
function history(row) {
  const points = row.series.map((p) => ({ at: Date.parse(p.t ?? p.period ?? p.from), median: stat(p, 'median_s'), p90: stat(p, 'p90_s') }))
    .filter((p) => !Number.isNaN(p.at)).sort((a, b) => a.at - b.at);
  if (points.length < 2) return null;
  const width = 760; const height = 200; const pad = 80;
  const t0 = points[0].at; const t1 = points[points.length - 1].at;
  const max = Math.max(...points.map((p) => p.p90 ?? p.median)) || 1;
  const x = (at) => pad + ((at - t0) / (t1 - t0 || 1)) * (width - 2 * pad);
  const y = (v) => height - pad + 10 - (v / max) * (height - pad - 10);
  const path = (key) => points.filter((p) => p[key] !== null).map((p, i) => `${i ? 'L' : 'M'}${x(p.at).toFixed(1)},${y(p[key]).toFixed(1)}`).join('');
  return h('figure', {}, h('figcaption', {}, t('bcp_history', { bcp: name(row) })),
    s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-label': t('bcp_history', { bcp: name(row) }) },
      s('line', { class: 'axis', x1: pad, x2: width - pad, y1: y(0), y2: y(0) }),
      s('path', { d: path('p90'), fill: 'none', stroke: '#9db7d8', 'stroke-width': 3, 'stroke-dasharray': '6 3' }),
      s('path', { d: path('median'), fill: 'none', stroke: 'var(--accent)', 'stroke-width': 3 }),
      s('text', { x: pad, y: height - 8 }, dateTime(new Date(t0).toISOString())),
      s('text', { x: width - pad, y: height - 8, 'text-anchor': 'end' }, dateTime(new Date(t1).toISOString())),
      s('line', { class: 'grid', x1: pad, x2: width - pad, y1: y(max), y2: y(max) }),
      s('text', { x: pad - 6, y: y(max) + 4, 'text-anchor': 'end' }, duration(max)),
      s('text', { x: pad - 6, y: y(0) + 4, 'text-anchor': 'end' }, duration(0))));
}

function sectionTable(rows) {
  return h('table', {}, h('caption', { class: 'visually-hidden' }, t('section_speeds')),
    h('thead', {}, h('tr', {}, ['section', 'runs', 'speed_with_delay', 'speed_without_delay'].map((c) => h('th', { scope: 'col' }, t(c))))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', {}, `${r.from} → ${r.to}`), h('td', {}, number(r.runs)),
      h('td', {}, t('kmh', { v: number(r.speed_with_delay_kmh, 1) })),
      h('td', {}, t('kmh', { v: number(r.speed_without_delay_kmh, 1) }))))));
}

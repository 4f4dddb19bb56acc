// Corridor performance (CAREC CPMM): time at each BCP (median, p90) as a table and a bar
// chart, its course week by week, and speed per corridor section.

import * as api from '/assets/js/api.js';
import { t } from '/assets/js/i18n.js';
import { h, s, duration, number, dateTime, unavailable, errorBox } from '/assets/js/format.js';
import { loadMaps } from '/assets/js/geo.js';
import { bcpShortName, placeName, nameOfId } from '/assets/js/places.js';

const PRESETS = [7, 30, 90, 365];
const DAY_MS = 86400000;
/** Kept across visits: the period asked for (whole UTC days, `to` included). */
const period = { days: 30, from: '', to: '' };
let body = null;

/** `YYYY-MM-DD` of a time, in UTC. */
function day(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The period as the API's `from` and `to` instants: from the start of the first UTC day to
 * the end of the last. */
function range() {
  if (period.days) {
    const to = Date.now();
    return { from: new Date(to - period.days * DAY_MS).toISOString(), to: new Date(to).toISOString() };
  }
  const from = Date.parse(`${period.from}T00:00:00Z`);
  const to = Date.parse(`${period.to}T00:00:00Z`) + DAY_MS;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}

function picker() {
  const preset = h('select', { name: 'preset' },
    PRESETS.map((d) => h('option', { value: String(d) }, t('last_days', { count: d }))),
    h('option', { value: 'custom' }, t('period_custom')));
  preset.value = period.days ? String(period.days) : 'custom';
  const today = day(Date.now());
  const from = h('input', { type: 'date', name: 'from', value: period.from, max: today });
  const to = h('input', { type: 'date', name: 'to', value: period.to || today, max: today });
  const custom = () => preset.value === 'custom';
  // The dates show the preset's days, and become editable for a period of one's own.
  const sync = () => {
    from.disabled = !custom();
    to.disabled = !custom();
    if (!custom()) {
      from.value = day(Date.now() - Number(preset.value) * DAY_MS);
      to.value = today;
    }
  };
  sync();
  preset.addEventListener('change', sync);
  const message = h('span', { class: 'error-text', role: 'alert' });
  const form = h('form', { class: 'filters panel period-picker', 'aria-label': t('period') },
    h('label', {}, t('period'), preset), h('label', {}, t('period_from'), from), h('label', {}, t('period_to'), to),
    h('button', { type: 'submit' }, t('apply')), message);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    message.textContent = '';
    if (custom()) {
      if (!from.value || !to.value || from.value > to.value) {
        message.textContent = t('period_invalid');
        return;
      }
      Object.assign(period, { days: 0, from: from.value, to: to.value });
    } else {
      Object.assign(period, { days: Number(preset.value), from: '', to: '' });
    }
    load();
  });
  return form;
}

export function mount(container) {
  body = h('div', { class: 'perf' }, h('p', { class: 'muted' }, t('loading')));
  container.append(h('div', { class: 'view' }, h('h1', {}, t('view_performance')), picker(), body));
  load();
}

export function unmount() {
  body = null;
}

function stat(row, key) {
  return row[key] ?? row.distribution?.[key] ?? row.stats?.[key] ?? null;
}

/** The BCPs of the network, from the map data: the stats are asked for one BCP at a time. */
async function bcpList() {
  const maps = await loadMaps();
  return maps.bcps.features.filter((f) => f.properties.kind === 'bcp')
    .map((f) => ({ id: f.properties.id, name: placeName({ id: f.properties.id, name: bcpShortName(f.properties.name) }) }));
}

async function load() {
  const target = body;
  body.replaceChildren(h('p', { class: 'muted' }, t('loading')));
  try {
    const bcps = await bcpList();
    const query = range();
    const results = await Promise.all(bcps.map((b) => api.get(api.withQuery(`/api/v1/stats/bcps/${encodeURIComponent(b.id)}`, query))
      .then((data) => ({ b, data }), (error) => ({ b, error }))));
    if (target !== body) return;
    const failed = results.find((r) => r.error);
    if (failed && results.every((r) => r.error)) throw failed.error;
    const answered = results.filter((r) => r.data);
    const rows = answered.filter((r) => r.data.time_at_bcp).map(({ b, data }) => ({
      bcp_id: b.id, name: b.name, ...data.time_at_bcp, series: weekly(data.passages ?? []),
    }));
    const sections = new Map();
    for (const { data } of answered) {
      for (const run of [data.section_into, data.section_out_of]) if (run) sections.set(`${run.from}>${run.to}`, run);
    }
    const covered = answered[0]?.data;
    body.replaceChildren(
      h('section', { class: 'panel' }, h('h2', {}, t('bcp_times')),
        covered ? h('p', { class: 'muted', id: 'period-shown' }, `${dateTime(covered.from)} – ${dateTime(covered.to)}`) : null,
        rows.length ? [legend(), chart(rows), table(rows), rows.filter((r) => r.series.length > 1).map(history)] : h('p', { class: 'empty' }, t('no_bcp_times'))),
      h('section', { class: 'panel' }, h('h2', {}, t('section_speeds')),
        sections.size ? sectionTable([...sections.values()]) : h('p', { class: 'empty' }, t('no_section_speeds'))));
  } catch (error) {
    if (target !== body) return;
    body.replaceChildren(error instanceof api.NotAvailable ? unavailable(t('view_performance')) : errorBox(error));
  }
}

function percentile(sorted, p) {
  const rank = p * (sorted.length - 1);
  const lo = Math.floor(rank); const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

/** Median and p90 of the passages completed in each week, oldest first. */
function weekly(passages) {
  const weeks = new Map();
  for (const p of passages) {
    if (!p.left_at) continue;
    const left = Date.parse(p.left_at);
    const week = Math.floor(left / (7 * 86400000)) * 7 * 86400000;
    if (!weeks.has(week)) weeks.set(week, []);
    weeks.get(week).push((left - Date.parse(p.entered_at)) / 1000);
  }
  return [...weeks.entries()].sort((a, b) => a[0] - b[0]).map(([week, values]) => {
    values.sort((a, b) => a - b);
    return { t: new Date(week).toISOString(), median_s: percentile(values, 0.5), p90_s: percentile(values, 0.9) };
  });
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
      h('td', {}, `${nameOfId(r.from)} → ${nameOfId(r.to)}`), h('td', {}, number(r.runs)),
      h('td', {}, t('kmh', { v: number(r.speed_with_delay_kmh, 1) })),
      h('td', {}, t('kmh', { v: number(r.speed_without_delay_kmh, 1) }))))));
}

// Transits: a table with filters (status, corridor, country, risk lane, open alert) and search
// by plate or declaration; a row opens the transit's detail beside the table.

import * as api from '/assets/js/api.js';
import { t, label } from '/assets/js/i18n.js';
import { h, badge, dateTime, unavailable, errorBox } from '/assets/js/format.js';
import { loadMaps } from '/assets/js/geo.js';
import { renderTransit } from '/assets/js/views/detail.js';
import { placeName } from '/assets/js/places.js';
import { evidenceSection } from '/assets/js/views/evidence.js';

const STATUSES = ['declared', 'departed', 'in_transit', 'at_bcp', 'suspended', 'arrived', 'closed', 'cancelled'];
const LANES = ['green', 'yellow', 'red'];
/** Kept across visits: the filters the user set. */
const filters = { status: '', country: '', lane: '', corridor: '', q: '', alert: false };
let body = null;
let detail = null;
let live = null;

export function mount(container, context) {
  live = context?.live ?? null;
  body = h('div', { class: 'table-wrap' }, h('p', { class: 'muted' }, t('loading')));
  detail = h('section', { class: 'panel detail', hidden: true, 'aria-live': 'polite' });
  const form = h('form', { class: 'filters panel', role: 'search', onsubmit: (e) => { e.preventDefault(); read(form); load(); } },
    select('status', t('status'), STATUSES.map((v) => [v, label('transit', v)])),
    select('country', t('country'), []),
    select('lane', t('lane'), LANES.map((v) => [v, label('lane', v)])),
    select('corridor', t('corridor'), []),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'alert', checked: filters.alert }), t('has_open_alert')),
    h('label', {}, t('search'), h('input', { type: 'search', name: 'q', value: filters.q, placeholder: t('search_placeholder') })),
    h('button', { type: 'submit' }, t('apply')));
  container.append(h('div', { class: 'view' }, h('h1', {}, t('view_transits')), form,
    h('div', { class: 'split' }, body, detail)));
  loadMaps().then((maps) => {
    fill(form.elements.country, maps.countries.features.map((f) => [f.properties.id, label('country', f.properties.id)]));
    fill(form.elements.corridor, maps.corridors.features.map((f) => [f.properties.id, placeName(f.properties)]));
  });
  load();
}

export function unmount() {
  body = null;
}

function select(name, text, options) {
  const el = h('select', { name }, h('option', { value: '' }, t('any')));
  fill(el, options);
  return h('label', {}, text, el);
}

function fill(el, options) {
  for (const [value, text] of options) el.append(h('option', { value }, text));
  el.value = filters[el.name] ?? '';
}

function read(form) {
  for (const key of ['status', 'country', 'lane', 'corridor', 'q']) filters[key] = form.elements[key].value.trim();
  filters.alert = form.elements.alert.checked;
}

function openAlerts(transit) {
  if (typeof transit.open_alerts === 'number') return transit.open_alerts;
  return (transit.alerts ?? []).filter((a) => a.state !== 'resolved').length;
}

/**
 * The open alerts of a transit as the alert desk counts them: those on this principal's desk,
 * and apart, those another country's authority holds (a transit crosses several).
 */
function openAlertsText(transit) {
  const open = (transit.alerts ?? []).filter((a) => a.state !== 'resolved');
  if (!open.length || !live?.alertsAvailable) return String(openAlerts(transit));
  const desk = new Set(live.alerts.map((a) => a.id));
  const mine = open.filter((a) => desk.has(a.id)).length;
  const elsewhere = open.filter((a) => !desk.has(a.id));
  if (!elsewhere.length) return String(mine);
  const where = [...new Set(elsewhere.map((a) => a.jurisdiction).filter(Boolean))].map((c) => label('country', c)).join(', ');
  return t('open_alerts_elsewhere', { count: mine, elsewhere: elsewhere.length, where: where || '—' });
}

/** The status users see: the stage, or suspended while a critical alert is unresolved. */
export function statusOf(transit) {
  if (transit.status) return transit.status;
  const final = ['closed', 'cancelled'].includes(transit.stage);
  const critical = (transit.alerts ?? []).some((a) => a.severity === 'critical' && a.state !== 'resolved');
  return !final && critical ? 'suspended' : transit.stage;
}

function countries(transit) {
  return new Set([transit.issuing_country, ...(transit.itinerary?.legs ?? []).map((l) => l.country)]);
}

function matches(transit, query) {
  if (!query) return true;
  const needle = query.toLowerCase().replace(/\s+/g, '');
  const hay = [transit.id, transit.reference, transit.vehicle_plate, ...(transit.trailer_plates ?? [])];
  return hay.some((v) => String(v ?? '').toLowerCase().replace(/\s+/g, '').includes(needle));
}

function onCorridor(transit, corridor) {
  return (transit.itinerary?.route?.legs ?? []).some((leg) => leg.corridor_id === corridor);
}

async function load() {
  const target = body;
  try {
    const data = await api.get('/api/v1/transits?limit=1000');
    let transits = api.listOf(data, 'transits', 'items')
      .filter((tr) => !filters.status || statusOf(tr) === filters.status)
      .filter((tr) => !filters.country || countries(tr).has(filters.country))
      .filter((tr) => !filters.lane || (tr.risk?.lane ?? tr.lane) === filters.lane)
      .filter((tr) => matches(tr, filters.q));
    if (filters.alert) transits = transits.filter((tr) => openAlerts(tr) > 0);
    if (filters.corridor) transits = transits.filter((tr) => onCorridor(tr, filters.corridor));
    if (target === body) render(transits);
  } catch (error) {
    if (target !== body) return;
    body.replaceChildren(error instanceof api.NotAvailable ? unavailable(t('view_transits')) : errorBox(error));
  }
}

function route(transit) {
  const cps = transit.itinerary?.checkpoints ?? [];
  if (!cps.length) return '—';
  const name = (c) => placeName({ id: c.id, name: c.name ?? c.id });
  return `${name(cps[0])} → ${name(cps[cps.length - 1])}`;
}

function render(transits) {
  if (!transits.length) return body.replaceChildren(h('p', { class: 'empty pad' }, t('no_transits')));
  const columns = ['reference', 'plates', 'carrier', 'status', 'lane', 'route', 'next_checkpoint', 'open_alerts', 'deadline'];
  body.replaceChildren(h('table', {},
    h('caption', { class: 'visually-hidden' }, t('view_transits')),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, t(c))))),
    h('tbody', {}, transits.map((tr) => {
      const lane = tr.risk?.lane ?? tr.lane;
      const cps = tr.itinerary?.checkpoints ?? [];
      const nextCp = cps[(tr.leg ?? 0) + 1];
      const next = nextCp ? placeName({ id: nextCp.id, name: nextCp.name ?? nextCp.id }) : tr.next_checkpoint;
      return h('tr', {},
        h('td', {}, h('button', { type: 'button', class: 'secondary', onclick: () => open(tr) }, tr.reference ?? tr.id)),
        h('td', {}, tr.vehicle_plate ?? '—'),
        h('td', {}, tr.carrier ?? '—'),
        h('td', {}, badge('transit', statusOf(tr))),
        h('td', {}, lane ? badge('lane', lane) : '—'),
        h('td', {}, route(tr)),
        h('td', {}, next ?? '—'),
        h('td', {}, openAlertsText(tr)),
        h('td', { class: 'nowrap' }, dateTime(tr.deadline)));
    }))));
}

async function open(summary) {
  detail.hidden = false;
  detail.replaceChildren(h('p', { class: 'muted' }, t('loading')));
  try {
    const transit = await api.get(`/api/v1/transits/${encodeURIComponent(summary.id)}`);
    const box = h('div', {});
    detail.replaceChildren(h('h2', { tabindex: -1 }, transit.reference ?? transit.id), box);
    renderTransit(box, transit);
    box.append(evidenceSection(transit.id));
    detail.querySelector('h2').focus();
  } catch (error) {
    detail.replaceChildren(errorBox(error));
  }
}

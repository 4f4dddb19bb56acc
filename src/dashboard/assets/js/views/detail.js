// The detail of a vehicle (state, seal, track, events) and of the transit it carries
// (itinerary with progress, seals, alerts, inspections).

import * as api from '/assets/js/api.js';
import { t, label } from '/assets/js/i18n.js';
import { h, badge, dateTime, ago, number, duration, unavailable, errorBox } from '/assets/js/format.js';
import { placeName, nameOfId } from '/assets/js/places.js';
import { riskReason } from '/assets/js/reasons.js';

function row(term, ...value) {
  return [h('dt', {}, term), h('dd', {}, ...value)];
}

function section(title, ...content) {
  return h('div', {}, h('h3', {}, title), ...content);
}

export function renderVehicle(el, device, { live, postIds, onTrack, onClose, elsewhere = false }) {
  const status = live.status(device, postIds);
  const p = device.position;
  const geo = device.geo;
  const corridor = geo?.corridor;
  const transitBox = h('div', {}, h('p', { class: 'muted' }, t('loading')));
  const eventsBox = h('div', {}, h('p', { class: 'muted' }, t('loading')));
  const trackNote = h('p', { class: 'muted' });
  el.replaceChildren(
    h('div', { class: 'detail-head' },
      h('h2', { tabindex: -1 }, device.plate || device.device_id, ' ', badge('vehicle', status)),
      h('button', { type: 'button', class: 'secondary', onclick: onClose }, t('back_to_list'))),
    h('dl', {},
      row(t('device'), device.device_id),
      row(t('carrier'), device.carrier ?? '—'),
      // The device's own time of its latest fix (what the list and the status go by), and
      // when the server last received anything from it: a backlog arrives late.
      row(t('last_fix'), p?.t ? [dateTime(p.t), ' (', ago(p.t), ')'] : t('no_position')),
      row(t('last_received'), dateTime(device.last_seen_at), ' (', ago(device.last_seen_at), ')'),
      row(t('speed'), p?.speed_kmh !== undefined ? t('kmh', { v: number(p.speed_kmh) }) : '—'),
      row(t('position'), p ? `${number(p.lat, 4)}, ${number(p.lon, 4)}` : t('no_position')),
      row(t('country'), geo?.country ? label('country', geo.country) : '—'),
      row(t('corridor'), corridor ? `${corridor.id} · ${t('km', { v: number((corridor.chainage_m ?? 0) / 1000) })} · ${t('off_route', { v: number(corridor.distance_m ?? 0) })}` : '—'),
      row(t('zones'), geo?.zones?.length ? geo.zones.map(nameOfId).join(', ') : '—'),
      row(t('battery'), device.battery_pct ? `${number(device.battery_pct.value)} %` : '—'),
      row(t('seal'), device.seal ? [device.seal.seal_id, ' · ', badge('seal', device.seal.event), ' · ', dateTime(device.seal.t)] : '—')),
    trackNote,
    section(t('transit'), transitBox),
    section(t('events'), eventsBox));
  if (elsewhere) {
    // A post sees an expected truck still abroad through its transit only.
    trackNote.textContent = t('track_elsewhere');
    eventsBox.replaceChildren();
    loadTransitOf(transitBox, device);
    return;
  }
  api.get(`/api/v1/devices/${encodeURIComponent(device.device_id)}/track`).then((track) => {
    trackNote.textContent = t('track_fixes', { count: track?.properties?.fixes ?? 0 });
    onTrack(track);
  }).catch((error) => { trackNote.textContent = t('error_generic', { message: error.message }); });
  loadEvents(eventsBox, device.device_id);
  loadTransitOf(transitBox, device);
}

async function loadEvents(box, deviceId) {
  try {
    const data = await api.get(`/api/v1/devices/${encodeURIComponent(deviceId)}/events?limit=1000`);
    const events = api.listOf(data, 'events').slice(-15).reverse();
    if (!events.length) return box.replaceChildren(h('p', { class: 'empty' }, t('no_events')));
    box.replaceChildren(h('ul', { class: 'events' }, events.map((e) => h('li', {},
      h('strong', {}, label('event', e.kind)), ' · ', dateTime(e.occurred_at),
      e.late ? [' · ', h('span', { class: 'status warning' }, t('late'))] : null,
      summary(e.body) ? h('div', { class: 'muted' }, summary(e.body)) : null))));
  } catch (error) {
    box.replaceChildren(error instanceof api.NotAvailable ? unavailable(t('events')) : errorBox(error));
  }
}

function summary(body) {
  if (!body || typeof body !== 'object') return '';
  const keys = ['zone', 'zone_id', 'event', 'seal_id', 'country', 'from', 'to', 'corridor', 'kind'];
  return keys.filter((k) => typeof body[k] === 'string' || typeof body[k] === 'number').map((k) => `${k}: ${body[k]}`).join(' · ');
}

async function loadTransitOf(box, device) {
  try {
    const data = await api.get('/api/v1/transits?open=true&limit=1000');
    const found = api.listOf(data, 'transits', 'items')
      .find((tr) => (tr.devices ?? []).includes(device.device_id));
    if (!found) return box.replaceChildren(h('p', { class: 'empty' }, t('no_transit_for_vehicle')));
    const transit = await api.get(`/api/v1/transits/${encodeURIComponent(found.id)}`);
    renderTransit(box, transit ?? found);
  } catch (error) {
    box.replaceChildren(error instanceof api.NotAvailable ? unavailable(t('view_transits')) : errorBox(error));
  }
}

/** The transit's declaration, progress along its itinerary, seals, alerts and inspections. */
export function renderTransit(el, transit) {
  const status = transit.status ?? transit.stage;
  const exchangeBox = h('div', { class: 'exchange' });
  const checkpoints = transit.itinerary?.checkpoints ?? [];
  const leg = transit.leg ?? 0;
  const lane = transit.risk?.lane ?? transit.lane;
  el.replaceChildren(
    h('dl', {},
      row(t('reference'), transit.reference ?? transit.id),
      row(t('status'), badge('transit', status)),
      row(t('lane'), lane ? badge('lane', lane) : '—',
        ...(transit.risk?.reasons ?? []).map((r) => h('div', { class: 'muted' }, `${riskReason(r.reason)} (+${r.points})`))),
      row(t('carrier'), transit.carrier ?? '—'),
      row(t('plates'), [transit.vehicle_plate, ...(transit.trailer_plates ?? [])].filter(Boolean).join(', ') || '—'),
      row(t('driver'), transit.driver?.name ?? '—'),
      row(t('deadline'), dateTime(transit.deadline))),
    section(t('itinerary'), checkpoints.length
      ? h('ol', { class: 'itinerary' }, checkpoints.map((c, i) => h('li', {
        class: i <= leg && status !== 'declared' ? 'done' : (i === leg + 1 ? 'next' : ''),
      }, placeName({ id: c.id, name: c.name ?? c.id }), ' ', h('span', { class: 'muted' }, `${label('checkpoint', c.kind)} · ${t('km', { v: number((c.chainage_m ?? 0) / 1000) })}`),
      i === leg + 1 ? h('span', { class: 'visually-hidden' }, ` (${t('next_checkpoint')})`) : null)))
      : h('p', { class: 'empty' }, '—')),
    section(t('seals'), listOrEmpty(transit.seals, (seal) => [seal.id, ' · ', badge('seal_condition', seal.state), ' · ', seal.applied_at_place ? nameOfId(seal.applied_at_place) : ''])),
    section(t('transit_alerts'), listOrEmpty(transit.alerts, (a) => [badge('severity', a.severity), ' ', label('alert', a.kind), ' · ', label('alert_state', a.state),
      a.outcome ? ` · ${label('outcome', a.outcome)}` : null,
      a.jurisdiction ? ` · ${label('country', a.jurisdiction)}` : null, ' · ', dateTime(a.occurred_at),
      resolutionNote(a) ? h('div', { class: 'muted' }, resolutionNote(a)) : null])),
    section(t('inspections'), listOrEmpty(transit.inspections, (i) => [
      dateTime(i.at), ' · ', nameOfId(i.place), ' · ', label('inspection_result', i.result),
      i.seals_removed?.length ? ` · ${t('seals_removed')}: ${i.seals_removed.join(', ')}` : '',
      i.seals_applied?.length ? ` · ${t('seals_applied')}: ${i.seals_applied.map((x) => x.id ?? x).join(', ')}` : '',
      i.notes ? h('div', { class: 'muted' }, i.notes) : null,
      i.checklist?.length ? h('div', { class: 'muted' }, t('checklist_summary', { count: i.checklist.length, ok: i.checklist.filter((c) => c.ok).length }),
        ...i.checklist.filter((c) => !c.ok).map((c) => h('div', {}, `✗ ${c.item}${c.note ? ` (${c.note})` : ''}`))) : null,
      i.attested ? h('div', { class: 'muted' }, t(i.attested.verified === true ? 'attested_verified' : (i.attested.verified === false ? 'attested_failed' : 'attested_unchecked'), { peer: i.attested.peer })) : null])),
    transit.passages?.length
      ? section(t('bcp_times'), listOrEmpty(transit.passages, (p) => [nameOfId(p.bcp_id), ' · ', p.left_at ? duration((Date.parse(p.left_at) - Date.parse(p.entered_at)) / 1000) : t('at_bcp_now')]))
      : '',
    exchangeBox);
  loadExchange(exchangeBox, transit);
}

/** Which other national instances the transit was shared with, what each took and when,
 * and a flag on a peer that cannot be reached. Empty where there is no exchange. */
async function loadExchange(box, transit) {
  let data;
  try {
    data = await api.get(`/api/v1/transits/${encodeURIComponent(transit.id)}/exchange`);
  } catch {
    return; // Carriers, and servers without the exchange, show nothing here.
  }
  const peers = data?.peers ?? [];
  if (!peers.length) return;
  box.replaceChildren(section(t('exchange_title'),
    data.held_by ? h('p', { class: 'muted' }, t('exchange_held_by', { peer: data.held_by })) : null,
    h('ul', { class: 'events' }, peers.map((p) => {
      const last = p.delivered.map((d) => d.delivered_at).sort().at(-1);
      const waiting = p.waiting.length;
      return h('li', { 'data-peer': p.peer },
        h('strong', {}, p.peer), (p.countries ?? []).length ? ` (${p.countries.map((c) => label('country', c)).join(', ')})` : '',
        ' · ', last ? t('exchange_taken', { at: dateTime(last) }) : t('exchange_nothing_taken'),
        waiting ? ` · ${t('exchange_waiting', { count: waiting, since: dateTime(p.waiting[0].queued_at) })}` : '',
        !p.reachable && (waiting || p.failing_since)
          ? h('div', { class: 'status alert' }, t('exchange_unreachable', { since: p.failing_since ? dateTime(p.failing_since) : '—' }),
            p.last_error ? h('span', { class: 'muted' }, ` (${p.last_error})`) : null)
          : null);
    }))));
}

/** What the officer wrote when resolving the alert. */
function resolutionNote(alert) {
  return (alert.history ?? []).findLast((step) => step.action === 'resolved')?.note;
}

function listOrEmpty(items, render) {
  if (!items?.length) return h('p', { class: 'empty' }, t('none'));
  return h('ul', { class: 'events' }, items.map((item) => h('li', {}, render(item))));
}

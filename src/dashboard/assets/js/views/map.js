// Map: live vehicles on Caravan's own base map, framed on the signed-in principal's part of
// the region; a vehicle opens its detail beside the map and the map moves to it.

import * as api from '/assets/js/api.js';
import { t, label } from '/assets/js/i18n.js';
import { h, s, badge, ago } from '/assets/js/format.js';
import { loadMaps, regionBounds, homeBounds, projection, drawBaseMap, drawPlaces, posts, KM_PER_UNIT } from '/assets/js/geo.js';
import { declutter } from '/assets/js/labels.js';
import { renderVehicle } from '/assets/js/views/detail.js';

const STATUS_ORDER = ['alert', 'silent', 'at_bcp', 'stopped', 'moving'];
const MIN_ZOOM_W = 40;
/** The width of the view (map units, about 1.1 km each) the map zooms to on a selected truck. */
const FOCUS_W = 360;
const EXPECTED_REFRESH_MS = 30000;
/** Kept across visits to the view: where the user was looking and what was selected. */
const state = { view: null, selected: null, role: null };
let ctx = null;
let dom = null;
let cleanup = [];

export function mount(container, context) {
  ctx = context;
  const role = context.session.me?.role ?? '';
  if (state.role !== role) Object.assign(state, { view: null, selected: null, role });
  state.selected = context.params.get('device') ?? state.selected;
  const bar = h('progress', { max: 5, value: 0 });
  const barText = h('span', {}, t('map_loading', { done: 0, total: 5 }));
  const stage = h('div', { class: 'map-stage' },
    h('div', { class: 'map-progress', role: 'status' }, barText, bar));
  const list = h('ul', { class: 'vehicle-list', id: 'vehicle-list' });
  const count = h('span', { class: 'muted' });
  const heading = h('h2', {}, t('vehicles'), ' ', count);
  const listBox = h('section', { class: 'vehicles-box' }, heading, list);
  const detail = h('section', { class: 'detail', id: 'detail', 'aria-live': 'polite', hidden: true });
  const side = h('aside', { class: 'side', 'aria-label': t('map_side_label') }, listBox, detail);
  container.append(h('div', { class: 'map-view' }, h('h1', { class: 'visually-hidden' }, t('view_map')), stage, side));
  dom = { stage, list, listBox, count, heading, detail, markers: new Map(), expected: null };
  const live = context.live;
  const onDevices = () => renderVehicles();
  live.addEventListener('devices', onDevices);
  live.addEventListener('alerts', onDevices);
  cleanup.push(() => live.removeEventListener('devices', onDevices), () => live.removeEventListener('alerts', onDevices));
  const onProgress = (done, total) => {
    bar.max = total;
    bar.value = done;
    barText.textContent = t('map_loading', { done, total });
  };
  loadMaps(onProgress).then((maps) => {
    if (!dom) return;
    drawMap(maps);
    watchExpected(maps);
    renderVehicles();
    if (state.selected) select(state.selected, false);
  }).catch((error) => stage.replaceChildren(h('p', { class: 'error-text', role: 'alert' }, t('error_generic', { message: error.message }))));
}

/**
 * A post sees on its map the trucks it expects (those of the transits whose next stop is its
 * BCP), not every device its country may see.
 */
function watchExpected(maps) {
  const [kind, bcp, country] = String(state.role).split(':');
  if (kind !== 'post') return;
  const post = posts(maps).find((p) => p.bcp === bcp && p.country === country);
  if (!post) return;
  dom.expected = [];
  dom.expectedAt = post;
  const load = async () => {
    try {
      const data = await api.get(`/api/v1/posts/${encodeURIComponent(post.id)}/expected-arrivals?limit=200`);
      if (!dom) return;
      dom.expected = api.listOf(data, 'expected');
      renderVehicles();
    } catch {
      // The list keeps what it had; the next refresh tries again.
    }
  };
  load();
  const timer = setInterval(load, EXPECTED_REFRESH_MS);
  cleanup.push(() => clearInterval(timer));
}

export function unmount() {
  cleanup.forEach((f) => f());
  cleanup = [];
  dom = null;
}

/** The view (map units) that shows `box` (degrees). */
function viewOf(box, proj) {
  const [x0, y0] = proj.project([box[0], box[3]]);
  const [x1, y1] = proj.project([box[2], box[1]]);
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

function drawMap(maps) {
  const bounds = regionBounds(maps);
  const proj = projection(bounds);
  dom.proj = proj;
  dom.postIds = new Set(posts(maps).map((p) => p.id));
  const full = viewOf(homeBounds(maps, state.role), proj);
  state.view ??= { ...full };
  const { base, countryLabels } = drawBaseMap(maps, proj, bounds);
  dom.track = s('g', { class: 'track-layer' });
  dom.vehicles = s('g', { class: 'vehicles' });
  const defs = s('defs', {}, s('pattern', { id: 'gap-hatch', width: 12, height: 12, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
    s('rect', { width: 12, height: 12, fill: '#e9edf2', 'fill-opacity': 0.5 }),
    s('line', { x1: 0, y1: 0, x2: 0, y2: 12, stroke: '#8a949f', 'stroke-width': 2 })));
  const svg = s('svg', {
    id: 'map', tabindex: 0, role: 'group', 'aria-label': t('map_label'),
    'aria-describedby': 'map-keys', preserveAspectRatio: 'xMidYMid meet',
  }, defs, s('rect', { x: -1e5, y: -1e5, width: 2e5, height: 2e5, fill: '#e3e6e9' }), base, countryLabels,
  drawPlaces(maps, proj), dom.track, dom.vehicles);
  dom.svg = svg;
  const zoomBy = (factor) => zoom(factor, state.view.x + state.view.w / 2, state.view.y + state.view.h / 2);
  const controls = h('div', { class: 'map-controls' },
    h('button', { type: 'button', 'aria-label': t('zoom_in'), title: t('zoom_in'), onclick: () => zoomBy(0.6) }, '+'),
    h('button', { type: 'button', 'aria-label': t('zoom_out'), title: t('zoom_out'), onclick: () => zoomBy(1 / 0.6) }, '−'),
    h('button', { type: 'button', 'aria-label': t('zoom_reset'), title: t('zoom_reset'), onclick: () => setView({ ...full }) }, '⤢'));
  const legend = h('div', { class: 'legend' },
    h('ul', { 'aria-label': t('legend') }, STATUS_ORDER.map((st) => h('li', {}, badge('vehicle', st)))),
    h('p', { id: 'map-keys', class: 'visually-hidden' }, t('map_keys')));
  dom.scaleBar = h('span', { class: 'scale-bar-line' });
  dom.scaleText = h('span', { class: 'scale-bar-text' });
  const scale = h('div', { class: 'scale-bar', id: 'scale-bar', 'aria-hidden': 'true' }, dom.scaleText, dom.scaleBar);
  dom.stage.replaceChildren(svg, controls, legend, scale);
  attachPanZoom(svg, full);
  const onResize = () => applyView();
  window.addEventListener('resize', onResize);
  cleanup.push(() => window.removeEventListener('resize', onResize));
  applyView();
}

function unitsPerPixel() {
  const box = dom.svg.getBoundingClientRect();
  if (!box.width || !box.height) return 1;
  return Math.max(state.view.w / box.width, state.view.h / box.height);
}

function applyView() {
  if (!dom?.svg) return;
  const v = state.view;
  dom.svg.setAttribute('viewBox', `${v.x} ${v.y} ${v.w} ${v.h}`);
  const u = unitsPerPixel();
  for (const el of dom.svg.querySelectorAll('[data-x]')) {
    el.setAttribute('transform', `translate(${el.dataset.x},${el.dataset.y}) scale(${u})`);
  }
  declutter(dom.svg, state.view, u);
  drawScale(u);
}

/** A scale bar of a round length, about 80–200 px long. */
function drawScale(u) {
  const kmPerPx = u * KM_PER_UNIT;
  const steps = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000];
  const km = steps.find((k) => k / kmPerPx >= 80) ?? steps[steps.length - 1];
  dom.scaleBar.style.width = `${Math.round(km / kmPerPx)}px`;
  dom.scaleText.textContent = t('scale_km', { km });
  dom.stage.querySelector('.scale-bar').dataset.km = String(km);
}

function setView(view) {
  state.view = view;
  applyView();
}

function zoom(factor, cx, cy) {
  const v = state.view;
  const w = Math.max(MIN_ZOOM_W, Math.min(dom.proj.width * 1.5, v.w * factor));
  const k = w / v.w;
  setView({ x: cx - (cx - v.x) * k, y: cy - (cy - v.y) * k, w, h: v.h * k });
}

function toMap(svg, clientX, clientY) {
  const box = svg.getBoundingClientRect();
  const u = unitsPerPixel();
  const v = state.view;
  return [v.x + v.w / 2 + (clientX - box.left - box.width / 2) * u, v.y + v.h / 2 + (clientY - box.top - box.height / 2) * u];
}

function attachPanZoom(svg, full) {
  let drag = null;
  svg.addEventListener('wheel', (e) => {
    e.preventDefault();
    const [x, y] = toMap(svg, e.clientX, e.clientY);
    zoom(e.deltaY < 0 ? 0.8 : 1.25, x, y);
  }, { passive: false });
  svg.addEventListener('pointerdown', (e) => {
    if (e.target.closest('.vehicle')) return;
    drag = { x: e.clientX, y: e.clientY, view: { ...state.view }, u: unitsPerPixel() };
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener('pointermove', (e) => {
    if (!drag) return;
    setView({ ...drag.view, x: drag.view.x - (e.clientX - drag.x) * drag.u, y: drag.view.y - (e.clientY - drag.y) * drag.u });
  });
  svg.addEventListener('pointerup', () => { drag = null; });
  svg.addEventListener('keydown', (e) => {
    if (e.target !== svg) return;
    const v = state.view;
    const step = v.w * 0.1;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) setView({ ...v, x: v.x + moves[e.key][0], y: v.y + moves[e.key][1] });
    else if (e.key === '+' || e.key === '=') zoom(0.6, v.x + v.w / 2, v.y + v.h / 2);
    else if (e.key === '-') zoom(1 / 0.6, v.x + v.w / 2, v.y + v.h / 2);
    else if (e.key === '0') setView({ ...full });
    else return;
    e.preventDefault();
  });
}

function markerShape(status, heading) {
  switch (status) {
    case 'moving':
      return s('path', { class: 'shape', d: 'M0,-10L8,8L0,4L-8,8Z', fill: 'var(--moving)', transform: `rotate(${heading ?? 0})` });
    case 'at_bcp':
      return s('rect', { class: 'shape', x: -8, y: -8, width: 16, height: 16, fill: 'var(--at_bcp)' });
    case 'alert':
      return s('g', {}, s('path', { class: 'shape', d: 'M0,-11L11,0L0,11L-11,0Z', fill: 'var(--alert)' }),
        s('text', { 'text-anchor': 'middle', y: 5, fill: '#fff', 'font-weight': 700, 'font-size': 13 }, '!'));
    case 'silent':
      return s('circle', { class: 'shape', r: 8, fill: '#c4c9cf', stroke: 'var(--silent)', 'stroke-width': 3, 'stroke-dasharray': '3 2' });
    default:
      return s('circle', { class: 'shape', r: 7, fill: 'var(--stopped)' });
  }
}

function plate(device) {
  return device.plate || device.device_id;
}

/**
 * The devices this map shows: a post's expected trucks, or all that the principal may see.
 * A truck still in another country is not among the devices a post may list; its transit's
 * latest fix stands in for it where the post may see it (docs/access.md: positions abroad are
 * withheld), and otherwise it is listed without a place on the map.
 */
function shown(devices) {
  if (!dom.expected) return devices;
  const byId = new Map(devices.map((d) => [d.device_id, d]));
  const out = new Map();
  for (const row of dom.expected) {
    for (const id of row.devices ?? []) {
      const fix = row.last_fix;
      const d = byId.get(id) ?? {
        device_id: id, plate: row.vehicle_plate, carrier: row.carrier, last_seen_at: fix?.t ?? null,
        position: fix ? { lat: fix.lat, lon: fix.lon, t: fix.t } : null,
      };
      out.set(id, d);
    }
  }
  return [...out.values()];
}

function deviceById(id) {
  return ctx.live.devices.get(id) ?? dom.shown?.find((d) => d.device_id === id);
}

function renderVehicles() {
  if (!dom?.vehicles) return;
  const live = ctx.live;
  const devices = shown([...live.devices.values()]);
  dom.shown = devices;
  const rows = devices.map((d) => ({ d, status: live.status(d, dom.postIds) }))
    .sort((a, b) => STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) || plate(a.d).localeCompare(plate(b.d)));
  const seen = new Set();
  for (const { d, status } of rows) {
    if (!d.position) continue;
    seen.add(d.device_id);
    const [x, y] = dom.proj.project([d.position.lon, d.position.lat]);
    const name = `${plate(d)}: ${label('vehicle', status)}`;
    let marker = dom.markers.get(d.device_id);
    if (!marker) {
      marker = s('g', {
        'data-device-id': d.device_id, tabindex: 0, role: 'button',
        onclick: () => select(d.device_id, true),
        onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(d.device_id, true); } },
      });
      dom.vehicles.append(marker);
    }
    const selected = state.selected === d.device_id;
    marker.setAttribute('class', `anchored vehicle ${status}${selected ? ' selected' : ''}`);
    marker.dataset.x = x.toFixed(1);
    marker.dataset.y = y.toFixed(1);
    marker.dataset.status = status;
    // The selected truck's label first, then alerts, then the rest; places after them.
    marker.dataset.labelRank = selected ? 0 : (status === 'alert' ? 0.5 : 1);
    marker.setAttribute('aria-label', name);
    marker.replaceChildren(s('circle', { class: 'halo', r: 14, fill: 'none' }), markerShape(status, d.position.heading_deg),
      s('g', { class: 'vehicle-tag map-label' },
        s('text', { class: 'vehicle-label', x: 0, y: 0 }, plate(d)),
        s('text', { class: 'vehicle-label status-word', x: 0, y: 13 }, label('vehicle', status))),
      s('title', {}, name));
    dom.markers.set(d.device_id, marker);
  }
  for (const [id, marker] of dom.markers) {
    if (!seen.has(id)) { marker.remove(); dom.markers.delete(id); }
  }
  applyView();
  renderList(rows);
}

function renderList(rows) {
  const focused = document.activeElement?.closest?.('#vehicle-list button')?.dataset.deviceId;
  dom.count.textContent = `(${rows.length})`;
  if (dom.expectedAt) dom.heading.firstChild.textContent = t('vehicles_expected_at', { post: dom.expectedAt.name });
  if (!rows.length) {
    dom.list.replaceChildren(h('li', { class: 'empty' }, dom.expected ? t('no_expected_vehicles') : t('no_vehicles')));
    return;
  }
  dom.list.replaceChildren(...rows.map(({ d, status }) => h('li', {},
    h('button', { type: 'button', 'data-device-id': d.device_id, 'aria-pressed': String(state.selected === d.device_id), onclick: () => select(d.device_id, true) },
      h('span', {}, h('strong', {}, plate(d)),
        h('span', { class: 'sub' }, [d.carrier, d.geo?.country ? label('country', d.geo.country) : null, d.position ? null : t('no_position')].filter(Boolean).join(' · '),
          ' · ', lastFix(d))),
      badge('vehicle', status)))));
  if (focused) dom.list.querySelector(`button[data-device-id="${CSS.escape(focused)}"]`)?.focus();
}

/** When the device last sent a fix (device time), as the list and the detail both say it. */
export function lastFix(device) {
  return device.position?.t ? t('fix_ago', { ago: ago(device.position.t) }) : t('heard_ago', { ago: ago(device.last_seen_at) });
}

/** Moves the map to a truck, zooming in to about 400 km across unless already closer. */
function focusOn(device) {
  if (!device?.position || !dom.proj) return;
  const [x, y] = dom.proj.project([device.position.lon, device.position.lat]);
  const v = state.view;
  const w = Math.min(v.w, FOCUS_W);
  const hgt = v.h * (w / v.w);
  setView({ x: x - w / 2, y: y - hgt / 2, w, h: hgt });
}

function select(deviceId, fromUser) {
  state.selected = deviceId;
  history.replaceState(null, '', `#/map?device=${encodeURIComponent(deviceId)}`);
  renderVehicles();
  const device = deviceById(deviceId);
  if (!device) return;
  dom.detail.hidden = false;
  dom.listBox.hidden = true;
  focusOn(device);
  renderVehicle(dom.detail, device, {
    live: ctx.live,
    postIds: dom.postIds,
    // Not among the principal's devices, or (on a post's map) an expected truck whose
    // position is withheld because it lies in another country (docs/access.md).
    elsewhere: !ctx.live.devices.has(deviceId) || (dom.expected != null && !device.position),
    onTrack: drawTrack,
    onClose: () => {
      state.selected = null;
      dom.detail.hidden = true;
      dom.listBox.hidden = false;
      dom.track.replaceChildren();
      history.replaceState(null, '', '#/map');
      renderVehicles();
      dom.list.querySelector(`button[data-device-id="${CSS.escape(deviceId)}"]`)?.focus();
    },
  });
  if (fromUser) dom.detail.querySelector('h2')?.focus();
}

function drawTrack(geojson) {
  if (!dom?.track) return;
  dom.track.replaceChildren();
  const line = geojson?.features?.find((f) => f.geometry?.type === 'LineString');
  if (line) {
    const d = line.geometry.coordinates.map((c, i) => `${i ? 'L' : 'M'}${dom.proj.project(c).map((v) => v.toFixed(1)).join(',')}`).join('');
    dom.track.append(s('path', { class: 'track', d }));
  }
  const fixes = (geojson?.features ?? []).filter((f) => f.geometry?.type === 'Point').slice(-200);
  for (const f of fixes) {
    const [x, y] = dom.proj.project(f.geometry.coordinates);
    dom.track.append(s('g', { class: 'anchored', 'data-x': x.toFixed(1), 'data-y': y.toFixed(1) }, s('circle', { class: 'track-fix', r: 3 })));
  }
  applyView();
}

// Map: live vehicles on Caravan's own base map; a vehicle opens its detail beside the map.

import { t, label } from '/assets/js/i18n.js';
import { h, s, badge, ago } from '/assets/js/format.js';
import { loadMaps, regionBounds, projection, drawBaseMap, drawPlaces, posts } from '/assets/js/geo.js';
import { renderVehicle } from '/assets/js/views/detail.js';

const STATUS_ORDER = ['alert', 'silent', 'at_bcp', 'stopped', 'moving'];
const MIN_ZOOM_W = 80;
/** Kept across visits to the view: where the user was looking and what was selected. */
const state = { view: null, selected: null };
let ctx = null;
let dom = null;
let cleanup = [];

export function mount(container, context) {
  ctx = context;
  state.selected = context.params.get('device') ?? state.selected;
  const stage = h('div', { class: 'map-stage' }, h('p', { class: 'muted' }, t('loading')));
  const list = h('ul', { class: 'vehicle-list', id: 'vehicle-list' });
  const count = h('span', { class: 'muted' });
  const detail = h('section', { class: 'detail', id: 'detail', 'aria-live': 'polite', hidden: true });
  const side = h('aside', { class: 'side', 'aria-label': t('map_side_label') },
    h('section', {}, h('h2', {}, t('vehicles'), ' ', count), list),
    detail);
  container.append(h('div', { class: 'map-view' }, h('h1', { class: 'visually-hidden' }, t('view_map')), stage, side));
  dom = { stage, list, count, detail, markers: new Map() };
  const live = context.live;
  const onDevices = () => renderVehicles();
  live.addEventListener('devices', onDevices);
  live.addEventListener('alerts', onDevices);
  cleanup.push(() => live.removeEventListener('devices', onDevices), () => live.removeEventListener('alerts', onDevices));
  loadMaps().then((maps) => {
    if (!dom) return;
    drawMap(maps);
    renderVehicles();
    if (state.selected) select(state.selected, false);
  }).catch((error) => stage.replaceChildren(h('p', { class: 'error-text', role: 'alert' }, t('error_generic', { message: error.message }))));
}

export function unmount() {
  cleanup.forEach((f) => f());
  cleanup = [];
  dom = null;
}

function drawMap(maps) {
  const bounds = regionBounds(maps);
  const proj = projection(bounds);
  dom.proj = proj;
  dom.postIds = new Set(posts(maps).map((p) => p.id));
  const full = { x: 0, y: 0, w: proj.width, h: proj.height };
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
  dom.stage.replaceChildren(svg, controls, legend);
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
  dom.svg.classList.toggle('zoomed', u < 2.2);
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

function renderVehicles() {
  if (!dom?.vehicles) return;
  const live = ctx.live;
  const devices = [...live.devices.values()];
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
    marker.setAttribute('class', `anchored vehicle ${status}${state.selected === d.device_id ? ' selected' : ''}`);
    marker.dataset.x = x.toFixed(1);
    marker.dataset.y = y.toFixed(1);
    marker.dataset.status = status;
    marker.setAttribute('aria-label', name);
    marker.replaceChildren(s('circle', { class: 'halo', r: 14, fill: 'none' }), markerShape(status, d.position.heading_deg),
      s('text', { class: 'vehicle-label', x: 13, y: -2 }, plate(d)),
      s('text', { class: 'vehicle-label status-word', x: 13, y: 12 }, label('vehicle', status)),
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
  if (!rows.length) {
    dom.list.replaceChildren(h('li', { class: 'empty' }, t('no_vehicles')));
    return;
  }
  dom.list.replaceChildren(...rows.map(({ d, status }) => h('li', {},
    h('button', { type: 'button', 'data-device-id': d.device_id, 'aria-pressed': String(state.selected === d.device_id), onclick: () => select(d.device_id, true) },
      h('span', {}, h('strong', {}, plate(d)),
        h('span', { class: 'sub' }, [d.carrier, d.geo?.country ? label('country', d.geo.country) : null, d.position ? null : t('no_position')].filter(Boolean).join(' · '),
          ' · ', ago(d.position?.t ?? d.last_seen_at))),
      badge('vehicle', status)))));
  if (focused) dom.list.querySelector(`button[data-device-id="${CSS.escape(focused)}"]`)?.focus();
}

function select(deviceId, fromUser) {
  state.selected = deviceId;
  history.replaceState(null, '', `#/map?device=${encodeURIComponent(deviceId)}`);
  renderVehicles();
  const device = ctx.live.devices.get(deviceId);
  if (!device) return;
  dom.detail.hidden = false;
  renderVehicle(dom.detail, device, {
    live: ctx.live,
    postIds: dom.postIds,
    onTrack: drawTrack,
    onClose: () => {
      state.selected = null;
      dom.detail.hidden = true;
      dom.track.replaceChildren();
      history.replaceState(null, '', '#/map');
      renderVehicles();
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

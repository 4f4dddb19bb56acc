// Border post board: the transits expected at one post, in ETA order, with times in the
// post's own zone, and the post's actions: confirm arrival and exit, record an inspection.

import * as api from '/assets/js/api.js';
import { t, label } from '/assets/js/i18n.js';
import { h, badge, postLocalTime, unavailable, errorBox } from '/assets/js/format.js';
import { loadMaps, posts } from '/assets/js/geo.js';
import { nameOfId } from '/assets/js/places.js';

const RESULTS = ['cleared', 'discrepancy', 'detained'];
const REFRESH_MS = 30000;
let ctx = null;
let board = null;
let inspection = null;
let timer = null;
let post = null;

export function mount(container, context) {
  ctx = context;
  board = h('div', { class: 'table-wrap' }, h('p', { class: 'muted' }, t('loading')));
  inspection = h('section', { class: 'panel', hidden: true });
  const picker = h('div', { class: 'filters panel' });
  container.append(h('div', { class: 'view' }, h('h1', {}, t('view_post')), picker, board, inspection));
  loadMaps().then((maps) => {
    const all = posts(maps);
    const [kind, bcp, country] = String(ctx.session.me?.role ?? '').split(':');
    const own = kind === 'post' ? all.find((p) => p.bcp === bcp && p.country === country) : null;
    const visible = kind === 'customs' ? all.filter((p) => p.country === bcp) : all;
    post = own ?? visible.find((p) => p.id === ctx.args[0]) ?? visible.find((p) => p.id === 'irkeshtam-kg') ?? visible[0];
    if (!post) return board.replaceChildren(h('p', { class: 'empty' }, t('no_posts')));
    if (own) {
      const bcp = post.bcpName !== post.name ? ` · ${t('bcp')} ${post.bcpName}` : '';
      picker.replaceChildren(h('p', { class: 'post-title' }, h('strong', {}, post.name),
        `${bcp} · ${label('country', post.country)}`));
    }
    else picker.replaceChildren(postPicker(visible));
    load();
    timer = setInterval(load, REFRESH_MS);
  });
}

export function unmount() {
  clearInterval(timer);
  board = null;
}

function postPicker(visible) {
  const select = h('select', { id: 'post-select', onchange: () => { location.hash = `#/post/${encodeURIComponent(select.value)}`; } },
    visible.map((p) => h('option', { value: p.id }, `${p.name} · ${label('country', p.country)}`)));
  select.value = post.id;
  return h('label', { for: 'post-select' }, t('post'), select);
}

function arrivalsOf(data) {
  return api.listOf(data, 'expected', 'arrivals')
    .map((item) => ({ item, transit: item.transit ?? item }))
    .sort((a, b) => Date.parse(etaOf(a.item).at ?? '') - Date.parse(etaOf(b.item).at ?? ''));
}

function etaOf(item) {
  const eta = item.eta ?? {};
  if (typeof eta === 'string') return { at: eta, local: item.eta_local };
  return { at: eta.at ?? item.eta_at, local: eta.local ?? item.eta_local, zone: eta.time_zone };
}

async function load() {
  const target = board;
  try {
    const data = await api.get(`/api/v1/posts/${encodeURIComponent(post.id)}/expected-arrivals?limit=100`);
    if (target === board) render(arrivalsOf(data));
  } catch (error) {
    if (target !== board) return;
    board.replaceChildren(error instanceof api.NotAvailable ? unavailable(t('expected_arrivals')) : errorBox(error));
  }
}

function sealsText(transit) {
  const seals = transit.seals ?? [];
  if (!seals.length) return transit.seal_state ? label('seal_condition', transit.seal_state) : '—';
  return seals.filter((s) => s.state !== 'removed').map((s) => `${s.id ?? s} ${s.state ? `(${label('seal_condition', s.state)})` : ''}`).join(', ');
}

function openAlerts(item, transit) {
  const value = item.open_alerts ?? transit.open_alerts ?? (transit.alerts ?? []).filter((a) => a.state !== 'resolved');
  if (typeof value === 'number') return String(value);
  // An alert another country's authority holds (not on this desk) says whose it is.
  const desk = new Set(ctx.live.alerts.map((a) => a.id));
  const text = (a) => (desk.has(a.id) || !a.jurisdiction ? label('alert', a.kind) : `${label('alert', a.kind)} (${label('country', a.jurisdiction)})`);
  return value.length ? value.map(text).join(', ') : '0';
}

/** An earlier inspection, its time in the post's zone like the ETA beside it. */
function inspectionText(inspection, eta) {
  const at = postLocalTime(inspection.at, eta.zone);
  return `${nameOfId(inspection.place)}: ${label('inspection_result', inspection.result)}, ${at.text}`;
}

/** Arrival is confirmed first; exit only once the transit is at the BCP. */
function postActions(id, transit, status) {
  const arrived = status === 'at_bcp';
  return [
    arrived
      ? h('button', { type: 'button', onclick: () => act(id, 'exit') }, t('confirm_exit'))
      : h('button', { type: 'button', onclick: () => act(id, 'arrive') }, t('confirm_arrival')),
    h('button', { type: 'button', class: 'secondary', onclick: () => inspect(id, transit) }, t('record_inspection')),
  ];
}

function render(rows) {
  if (!rows.length) return board.replaceChildren(h('p', { class: 'empty pad' }, t('no_arrivals')));
  const columns = ['eta_local', 'plates', 'reference', 'status', 'lane', 'seals', 'open_alerts', 'inspections', 'actions'];
  board.replaceChildren(h('table', {},
    h('caption', { class: 'visually-hidden' }, t('expected_arrivals')),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, t(c))))),
    h('tbody', {}, rows.map(({ item, transit }) => {
      const eta = etaOf(item);
      const local = postLocalTime(eta.at ?? eta.local, eta.zone);
      const lane = item.lane ?? transit.risk?.lane ?? transit.lane;
      const id = item.transit_id ?? transit.id;
      const done = (transit.inspections ?? item.inspections ?? []);
      return h('tr', {},
        h('td', { class: 'nowrap' }, h('strong', {}, local.text), h('div', { class: 'muted' }, local.zone, local.estimated ? ` ${t('zone_unknown')}` : '')),
        h('td', {}, transit.vehicle_plate ?? '—'),
        h('td', {}, transit.reference ?? id),
        h('td', {}, badge('transit', item.status ?? transit.status)),
        h('td', {}, lane ? badge('lane', lane) : '—'),
        h('td', {}, sealsText(transit)),
        h('td', {}, openAlerts(item, transit)),
        h('td', {}, done.length ? done.map((i) => inspectionText(i, eta)).join('; ') : t('none')),
        h('td', {}, postActions(id, transit, item.status ?? transit.status)));
    }))));
}

async function act(id, action) {
  try {
    await api.post(`/api/v1/transits/${encodeURIComponent(id)}/actions`, { action: action === 'arrive' ? 'confirm_arrival' : 'confirm_exit', place: post.id });
    ctx.announce(t('post_action_done', { action: label('action', action), transit: id }));
    load();
  } catch (error) {
    ctx.announce(error instanceof api.NotAvailable ? t('action_not_available') : t('error_generic', { message: error.message }));
  }
}

/** One line of the load checklist: what was checked, and whether it was in order. */
function checklistLine(n) {
  return h('div', { class: 'checklist-line' },
    h('input', { name: 'check_item', autocomplete: 'off', 'aria-label': t('checklist_item', { n }) }),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'check_ok', checked: true }), t('checklist_ok')));
}

function inspect(id, transit) {
  const current = (transit.seals ?? []).filter((s) => s.state !== 'removed');
  const message = h('p', { class: 'error-text', role: 'alert' });
  const lines = h('div', {}, checklistLine(1));
  const checklist = h('fieldset', {}, h('legend', {}, t('checklist')), lines,
    h('button', { type: 'button', class: 'secondary', onclick: () => lines.append(checklistLine(lines.children.length + 1)) }, t('checklist_add')));
  const form = h('form', { class: 'filters' },
    h('label', {}, t('result'), h('select', { name: 'result' }, RESULTS.map((r) => h('option', { value: r }, label('inspection_result', r))))),
    h('fieldset', {}, h('legend', {}, t('seals_removed')), current.length
      ? current.map((s) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'removed', value: s.id }), s.id))
      : h('input', { name: 'removed_text', 'aria-label': t('seals_removed') })),
    h('label', {}, t('seals_applied_help'), h('input', { name: 'applied', autocomplete: 'off' })),
    h('label', {}, t('notes'), h('textarea', { name: 'notes', rows: 2 })),
    checklist,
    h('button', { type: 'submit' }, t('save_inspection')),
    h('button', { type: 'button', class: 'secondary', onclick: () => { inspection.hidden = true; } }, t('cancel')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const split = (text) => String(text ?? '').split(/[,\s]+/).map((x) => x.trim()).filter(Boolean);
    const removed = [...form.querySelectorAll('input[name=removed]:checked')].map((c) => c.value).concat(split(form.elements.removed_text?.value));
    const body = {
      place: post.id,
      result: form.elements.result.value,
      seals_removed: removed,
      seals_applied: split(form.elements.applied.value).map((sealId) => ({ id: sealId })),
      notes: form.elements.notes.value.trim() || null,
      checklist: [...lines.children].map((line) => ({
        item: line.querySelector('input[name=check_item]').value.trim(),
        ok: line.querySelector('input[name=check_ok]').checked,
      })).filter((c) => c.item),
    };
    try {
      await api.post(`/api/v1/transits/${encodeURIComponent(id)}/inspections`, body);
      inspection.hidden = true;
      ctx.announce(t('inspection_saved', { transit: id }));
      load();
    } catch (error) {
      message.textContent = error instanceof api.NotAvailable ? t('action_not_available') : t('error_generic', { message: error.message });
    }
  });
  inspection.hidden = false;
  inspection.replaceChildren(h('h2', { tabindex: -1 }, t('inspection_of', { transit: transit.reference ?? id })), form, message);
  inspection.querySelector('h2').focus();
}

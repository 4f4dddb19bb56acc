// Alert desk: the open alerts as compact cards, filtered by severity, country and kind and
// sorted by severity, age, country or kind, with the actions of their lifecycle. New alerts
// appear as they arrive; main.js announces them.

import * as api from '/assets/js/api.js';
import { t, label } from '/assets/js/i18n.js';
import { h, badge, dateTime, ago, unavailable } from '/assets/js/format.js';

const SEVERITIES = ['critical', 'warning', 'info'];
const OUTCOMES = ['false_alarm', 'resolved_on_site', 'inspection_ordered', 'escalated', 'seizure'];
const SORTS = ['severity', 'newest', 'oldest', 'country', 'kind'];
/** Kept across visits: the filters and the order the officer chose. */
const view = { severity: '', country: '', kind: '', sort: 'severity' };
let ctx = null;
let body = null;
let controls = null;
let onAlerts = null;
let fresh = new Set();
let shown = '';
/** What the user typed into an alert's forms, kept while the list refreshes. */
const drafts = new Map();

export function mount(container, context) {
  ctx = context;
  shown = '';
  body = h('div', { class: 'alert-groups' }, h('p', { class: 'muted' }, t('loading')));
  controls = h('form', { class: 'filters panel alert-filters', role: 'search', 'aria-label': t('alert_filters') });
  container.append(h('div', { class: 'view' }, h('h1', {}, t('view_alerts')), controls, body));
  onAlerts = (e) => {
    fresh = new Set((e.detail?.fresh ?? []).map((a) => a.id));
    render();
  };
  ctx.live.addEventListener('alerts', onAlerts);
  ctx.live.refreshAlerts();
  if (ctx.live.alertsAvailable !== null) render();
}

export function unmount() {
  ctx?.live.removeEventListener('alerts', onAlerts);
  body = null;
}

function choice(name, text, options) {
  const select = h('select', { name, onchange: () => { view[name] = select.value; shown = ''; render(); } },
    options.map(([value, words]) => h('option', { value }, words)));
  select.value = view[name];
  if (select.value !== view[name]) view[name] = '';
  return h('label', {}, text, select);
}

/** The filter and sort controls, offering the countries and kinds present. */
function renderControls(open) {
  const focused = document.activeElement?.closest?.('.alert-filters select')?.name;
  const countries = [...new Set(open.map((a) => a.jurisdiction).filter(Boolean))].sort();
  const kinds = [...new Set(open.map((a) => a.kind))].sort();
  const any = ['', t('any')];
  controls.replaceChildren(
    choice('severity', t('severity'), [any, ...SEVERITIES.map((v) => [v, label('severity', v)])]),
    choice('country', t('country'), [any, ...countries.map((c) => [c, label('country', c)])]),
    choice('kind', t('alert_kind'), [any, ...kinds.map((k) => [k, label('alert', k)])]),
    choice('sort', t('sort_by'), SORTS.map((v) => [v, t(`sort_${v}`)])));
  if (focused) controls.querySelector(`select[name="${focused}"]`)?.focus();
}

const rank = (a) => SEVERITIES.indexOf(a.severity ?? 'info');
const age = (a) => Date.parse(a.occurred_at) || 0;
const ORDER = {
  severity: (a, b) => rank(a) - rank(b) || age(a) - age(b),
  newest: (a, b) => age(b) - age(a),
  oldest: (a, b) => age(a) - age(b),
  country: (a, b) => label('country', a.jurisdiction ?? '').localeCompare(label('country', b.jurisdiction ?? '')) || rank(a) - rank(b) || age(a) - age(b),
  kind: (a, b) => label('alert', a.kind).localeCompare(label('alert', b.kind)) || rank(a) - rank(b) || age(a) - age(b),
};

function render() {
  if (!body) return;
  if (ctx.live.alertsAvailable === false) {
    controls.hidden = true;
    return body.replaceChildren(unavailable(t('view_alerts')));
  }
  const open = ctx.live.alerts.filter((a) => a.state !== 'resolved');
  const signature = JSON.stringify([document.documentElement.lang, view, open.map((a) => [a.id, a.state, a.assignee, a.repeats])]);
  if (signature === shown && body.childElementCount) return;
  shown = signature;
  renderControls(open);
  controls.hidden = !open.length;
  if (!open.length) return body.replaceChildren(h('p', { class: 'empty panel' }, t('no_open_alerts')));
  const alerts = open
    .filter((a) => !view.severity || (a.severity ?? 'info') === view.severity)
    .filter((a) => !view.country || a.jurisdiction === view.country)
    .filter((a) => !view.kind || a.kind === view.kind)
    .sort(ORDER[view.sort] ?? ORDER.severity);
  const focusedId = document.activeElement?.closest?.('[data-alert-id]')?.dataset.alertId;
  body.replaceChildren(
    h('p', { class: 'muted', id: 'alert-count-line' }, t('alerts_shown', { count: alerts.length, total: open.length })),
    alerts.length ? h('ul', { class: 'alert-list' }, alerts.map(card)) : h('p', { class: 'empty panel' }, t('no_alerts_match')));
  if (focusedId) body.querySelector(`[data-alert-id="${CSS.escape(focusedId)}"] button`)?.focus();
}

function card(alert) {
  const message = h('p', { class: 'error-text', role: 'alert' });
  const act = (action, payload) => async (e) => {
    e?.preventDefault?.();
    message.textContent = '';
    try {
      await api.post(`/api/v1/alerts/${encodeURIComponent(alert.id)}/actions`, payload());
      ctx.announce(t('alert_action_done', { action: label('action', action), kind: label('alert', alert.kind) }));
      await ctx.live.refreshAlerts();
    } catch (error) {
      message.textContent = error instanceof api.NotAvailable ? t('action_not_available') : t('error_generic', { message: error.message });
    }
  };
  const draft = drafts.get(alert.id) ?? {};
  drafts.set(alert.id, draft);
  const keep = (e) => { draft[e.target.name] = e.target.value; };
  const assignee = h('input', { name: 'assignee', value: draft.assignee ?? alert.assignee ?? '', autocomplete: 'off', oninput: keep, size: 12 });
  // No outcome is chosen for the officer: the form asks for one.
  const outcome = h('select', { name: 'outcome', required: true, onchange: keep },
    h('option', { value: '' }, t('choose_outcome')),
    OUTCOMES.map((o) => h('option', { value: o }, label('outcome', o))));
  outcome.value = draft.outcome ?? '';
  const notes = h('input', { name: 'notes', value: draft.notes ?? '', autocomplete: 'off', oninput: keep, size: 24 });
  const id = `alert-${alert.id}`.replace(/[^A-Za-z0-9_-]/g, '_');
  const opened = draft.open ?? false;
  const more = h('details', { class: 'alert-more', open: opened, ontoggle: (e) => { draft.open = e.target.open; } },
    h('summary', {}, t('alert_more_actions')),
    h('div', { class: 'actions' },
      h('form', { onsubmit: act('assign', () => ({ action: 'assign', to: assignee.value.trim() })) },
        h('label', {}, t('assignee'), assignee), h('button', { type: 'submit', class: 'secondary' }, t('assign'))),
      h('form', { onsubmit: act('resolve', () => ({ action: 'resolve', outcome: outcome.value, notes: notes.value.trim() || null })) },
        h('label', {}, t('outcome'), outcome), h('label', {}, t('notes'), notes),
        h('button', { type: 'submit' }, t('resolve'))),
      h('button', { type: 'button', class: 'secondary', onclick: act('escalate', () => ({ action: 'resolve', outcome: 'escalated', notes: notes.value.trim() || null })) }, t('escalate'))));
  return h('li', { class: `alert-card ${alert.severity}${fresh.has(alert.id) ? ' fresh' : ''}`, 'data-alert-id': alert.id, 'aria-labelledby': `${id}-title` },
    h('div', { class: 'alert-line' },
      badge('severity', alert.severity),
      h('span', { class: 'kind', id: `${id}-title` }, label('alert', alert.kind)),
      h('span', { class: 'alert-state' }, label('alert_state', alert.state)),
      alert.late ? h('span', { class: 'status warning' }, t('late')) : null,
      h('span', { class: 'alert-when', title: dateTime(alert.occurred_at) }, ago(alert.occurred_at)),
      alert.state === 'open' ? h('button', { type: 'button', class: 'small', onclick: act('acknowledge', () => ({ action: 'acknowledge' })) }, t('acknowledge')) : null),
    h('div', { class: 'alert-meta' }, [
      `${t('transit')}: ${alert.transit_id ?? '—'}`,
      alert.device_id ? `${t('device')}: ${alert.device_id}` : null,
      alert.jurisdiction ? label('country', alert.jurisdiction) : null,
      dateTime(alert.occurred_at),
      alert.eaeu_code ? t('eaeu_code', { code: alert.eaeu_code }) : null,
      alert.assignee ? `${t('assignee')}: ${alert.assignee}` : null,
      alert.repeats ? t('repeats', { count: alert.repeats }) : null,
    ].filter(Boolean).join(' · ')),
    more,
    message);
}

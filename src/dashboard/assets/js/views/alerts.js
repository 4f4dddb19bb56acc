// Alert desk: open alerts by severity, oldest first within each, with the actions of their
// lifecycle. New alerts appear as they arrive; main.js announces them.

import * as api from '/assets/js/api.js';
import { t, label } from '/assets/js/i18n.js';
import { h, badge, dateTime, ago, unavailable, errorBox } from '/assets/js/format.js';

const SEVERITIES = ['critical', 'warning', 'info'];
const OUTCOMES = ['false_alarm', 'resolved_on_site', 'inspection_ordered', 'escalated', 'seizure'];
let ctx = null;
let body = null;
let onAlerts = null;
let fresh = new Set();
let shown = '';
/** What the user typed into an alert's forms, kept while the list refreshes. */
const drafts = new Map();

export function mount(container, context) {
  ctx = context;
  shown = '';
  body = h('div', { class: 'alert-groups' }, h('p', { class: 'muted' }, t('loading')));
  container.append(h('div', { class: 'view' }, h('h1', {}, t('view_alerts')), body));
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

function render() {
  if (!body) return;
  if (ctx.live.alertsAvailable === false) return body.replaceChildren(unavailable(t('view_alerts')));
  const alerts = ctx.live.alerts.filter((a) => a.state !== 'resolved');
  const signature = JSON.stringify([document.documentElement.lang, alerts.map((a) => [a.id, a.state, a.assignee, a.repeats])]);
  if (signature === shown && body.childElementCount) return;
  shown = signature;
  if (!alerts.length) return body.replaceChildren(h('p', { class: 'empty panel' }, t('no_open_alerts')));
  const focusedId = document.activeElement?.closest?.('[data-alert-id]')?.dataset.alertId;
  body.replaceChildren(...SEVERITIES.map((severity) => {
    const group = alerts.filter((a) => (a.severity ?? 'info') === severity)
      .sort((a, b) => Date.parse(a.occurred_at) - Date.parse(b.occurred_at));
    if (!group.length) return null;
    return h('section', { class: 'alert-group', 'aria-label': label('severity', severity) },
      h('h2', {}, badge('severity', severity), ' ', t('count_alerts', { count: group.length })),
      h('ul', { class: 'alert-list' }, group.map(card)));
  }).filter(Boolean));
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
  const assignee = h('input', { name: 'assignee', value: draft.assignee ?? alert.assignee ?? '', autocomplete: 'off', oninput: keep });
  const outcome = h('select', { name: 'outcome', required: true, onchange: keep }, OUTCOMES.map((o) => h('option', { value: o }, label('outcome', o))));
  if (draft.outcome) outcome.value = draft.outcome;
  const notes = h('textarea', { name: 'notes', rows: 1, oninput: keep }, draft.notes ?? '');
  const id = `alert-${alert.id}`.replace(/[^A-Za-z0-9_-]/g, '_');
  return h('li', { class: `alert-card ${alert.severity}${fresh.has(alert.id) ? ' fresh' : ''}`, 'data-alert-id': alert.id, 'aria-labelledby': `${id}-title` },
    h('div', { class: 'alert-head' },
      h('span', { class: 'kind', id: `${id}-title` }, label('alert', alert.kind)),
      badge('severity', alert.severity),
      h('span', {}, label('alert_state', alert.state)),
      alert.late ? h('span', { class: 'status warning' }, t('late')) : null,
      alert.eaeu_code ? h('span', { class: 'muted' }, t('eaeu_code', { code: alert.eaeu_code })) : null),
    h('div', { class: 'alert-meta' }, [
      `${t('transit')}: ${alert.transit_id ?? '—'}`,
      alert.device_id ? `${t('device')}: ${alert.device_id}` : null,
      alert.jurisdiction ? label('country', alert.jurisdiction) : null,
      `${t('occurred')}: ${dateTime(alert.occurred_at)} (${ago(alert.occurred_at)})`,
      alert.assignee ? `${t('assignee')}: ${alert.assignee}` : null,
      alert.repeats ? t('repeats', { count: alert.repeats }) : null,
    ].filter(Boolean).join(' · ')),
    h('div', { class: 'actions' },
      alert.state === 'open' ? h('button', { type: 'button', onclick: act('acknowledge', () => ({ action: 'acknowledge' })) }, t('acknowledge')) : null,
      h('form', { onsubmit: act('assign', () => ({ action: 'assign', to: assignee.value.trim() })) },
        h('label', {}, t('assignee'), assignee), h('button', { type: 'submit', class: 'secondary' }, t('assign'))),
      h('form', { onsubmit: act('resolve', () => ({ action: 'resolve', outcome: outcome.value, notes: notes.value.trim() || null })) },
        h('label', {}, t('outcome'), outcome), h('label', {}, t('notes'), notes),
        h('button', { type: 'submit' }, t('resolve'))),
      h('button', { type: 'button', class: 'secondary', onclick: act('escalate', () => ({ action: 'resolve', outcome: 'escalated', notes: notes.value.trim() || null })) }, t('escalate'))),
    message);
}

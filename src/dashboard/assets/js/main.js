// Starts the dashboard: language, sign-in, the live state, and the view named in the URL hash.

import * as api from '/assets/js/api.js';
import { t, label, setLanguage, preferredLanguage, onLanguageChange, translate } from '/assets/js/i18n.js';
import { h } from '/assets/js/format.js';
import { Live } from '/assets/js/live.js';
import { loadMaps } from '/assets/js/geo.js';
import { nameOfId } from '/assets/js/places.js';
import * as mapView from '/assets/js/views/map.js';
import * as transitsView from '/assets/js/views/transits.js';
import * as alertsView from '/assets/js/views/alerts.js';
import * as postView from '/assets/js/views/post.js';
import * as performanceView from '/assets/js/views/performance.js';

const VIEWS = { map: mapView, transits: transitsView, alerts: alertsView, post: postView, performance: performanceView };

/** The views each kind of role works with, first one being its home. */
const ROLE_VIEWS = {
  coordinator: ['map', 'transits', 'alerts', 'post', 'performance'],
  customs: ['map', 'transits', 'alerts', 'post', 'performance'],
  post: ['post', 'transits', 'alerts', 'map'],
  carrier: ['map', 'transits'],
};

const main = document.getElementById('main');
const session = { me: null, signInAvailable: true, live: null };
let current = null;

function roleKind(role) {
  return String(role || 'coordinator').split(':')[0];
}

function allowedViews() {
  return ROLE_VIEWS[roleKind(session.me?.role)] ?? ROLE_VIEWS.coordinator;
}

function notice(text, kind = '') {
  const box = document.getElementById('notice');
  box.hidden = !text;
  box.className = `notice ${kind}`.trim();
  box.textContent = text || '';
}

function announce(text) {
  const region = document.getElementById('announcer');
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 50);
}

function parseHash() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const [name, ...rest] = path.split('/');
  return { name, args: rest.map(decodeURIComponent), params: new URLSearchParams(query || '') };
}

function route() {
  if (!session.live) return;
  const { name, args, params } = parseHash();
  const allowed = allowedViews();
  if (!allowed.includes(name)) {
    location.replace(`#/${allowed[0]}`);
    return;
  }
  current?.view.unmount?.();
  main.replaceChildren();
  for (const link of document.querySelectorAll('#nav a[data-view]')) {
    link.parentElement.hidden = !allowed.includes(link.dataset.view);
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const view = VIEWS[name];
  current = { name, view };
  document.title = `${t(`view_${name}`)} · Caravan`;
  view.mount(main, { session, live: session.live, args, params, announce });
}

function showWho() {
  const who = document.getElementById('who');
  const me = session.me;
  who.textContent = me ? `${me.name}\n${roleText(me.role)}` : (session.signInAvailable ? '' : t('signed_in_open'));
}

export function roleText(role) {
  const [kind, a, b] = String(role || '').split(':');
  if (kind === 'customs') return t('role_customs', { country: label('country', a) });
  if (kind === 'post') return t('role_post', { post: nameOfId(a), country: label('country', b) });
  if (kind === 'carrier') return t('role_carrier', { carrier: a });
  return label('role', kind);
}

function showLiveMode(mode) {
  const el = document.getElementById('live-mode');
  el.hidden = false;
  el.textContent = label('live', mode);
}

function updateAlertCount() {
  const badge = document.getElementById('alert-count');
  const open = session.live.alerts.filter((a) => a.state !== 'resolved').length;
  badge.hidden = !session.live.alertsAvailable || open === 0;
  badge.textContent = String(open);
  badge.setAttribute('aria-label', t('alerts_open_count', { count: open }));
}

function startSession() {
  document.getElementById('nav').hidden = false;
  document.getElementById('sign-out').hidden = !session.signInAvailable;
  showWho();
  session.live = new Live();
  session.live.addEventListener('mode', (e) => showLiveMode(e.detail));
  session.live.addEventListener('alerts', (e) => {
    updateAlertCount();
    for (const alert of e.detail.fresh) {
      announce(t('alert_announce', { kind: label('alert', alert.kind), transit: alert.transit_id ?? '', severity: label('severity', alert.severity) }));
    }
  });
  session.live.start();
  // The post's name (not its id) once the maps are in.
  loadMaps().then(showWho, () => {});
  if (!session.signInAvailable) notice(t('sign_in_not_available'));
  route();
}

function showSignIn(message) {
  session.live?.stop();
  session.live = null;
  current?.view.unmount?.();
  current = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('sign-out').hidden = true;
  document.getElementById('who').textContent = '';
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const error = h('p', { id: 'sign-in-error', class: 'error-text', role: 'alert' }, message || '');
  const form = h('form', { class: 'panel', onsubmit: (e) => { e.preventDefault(); signIn(input.value.trim(), error); } },
    h('h1', {}, t('sign_in_title')),
    h('p', { class: 'muted' }, t('sign_in_help')),
    h('label', { for: 'token' }, t('sign_in_token')),
    input,
    error,
    h('button', { type: 'submit' }, t('sign_in_button')));
  main.replaceChildren(h('div', { class: 'view sign-in' }, form));
  input.focus();
}

async function signIn(value, errorBox) {
  api.setToken(value);
  const outcome = await whoAmI();
  if (outcome === 'ok' || outcome === 'open') return startSession();
  api.setToken('');
  errorBox.textContent = outcome === 'refused' ? t('sign_in_refused') : t('sign_in_failed');
}

/** 'ok' (signed in), 'open' (this server has no sign-in), 'refused' or 'failed'. */
async function whoAmI() {
  try {
    session.me = await api.get('/api/v1/me');
    session.signInAvailable = true;
    return 'ok';
  } catch (error) {
    session.me = null;
    if (error instanceof api.NotAvailable) {
      session.signInAvailable = false;
      return 'open';
    }
    return error.status === 401 || error.status === 403 ? 'refused' : 'failed';
  }
}

async function boot() {
  const select = document.getElementById('lang');
  await setLanguage(preferredLanguage());
  select.value = document.documentElement.lang;
  select.addEventListener('change', () => setLanguage(select.value));
  onLanguageChange(() => {
    translate(document);
    showWho();
    if (session.live) {
      showLiveMode(session.live.mode);
      updateAlertCount();
      if (!session.signInAvailable) notice(t('sign_in_not_available'));
      route();
    } else if (!session.me) {
      showSignIn();
    }
  });
  document.getElementById('sign-out').addEventListener('click', () => {
    api.setToken('');
    session.me = null;
    notice('');
    showSignIn();
  });
  api.onUnauthorized(() => {
    if (!session.live) return;
    api.setToken('');
    session.me = null;
    showSignIn(t('sign_in_expired'));
  });
  window.addEventListener('hashchange', route);
  const outcome = await whoAmI();
  if (outcome === 'ok' || outcome === 'open') startSession();
  else if (outcome === 'failed' && api.token()) {
    notice(t('server_unreachable'), 'error');
    showSignIn();
  } else showSignIn();
}

boot();

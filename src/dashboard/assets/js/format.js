// Building DOM without HTML strings (API data is never parsed as markup), and the shared
// ways of showing times, durations and statuses: always a glyph and a word, never colour alone.

import { t, label, language } from '/assets/js/i18n.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h('button', {class: 'x', onclick: f}, 'text', otherNode). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

const GLYPHS = {
  vehicle: { moving: '▲', at_bcp: '■', alert: '◆', silent: '○', stopped: '●' },
  severity: { critical: '◆', warning: '▲', info: '●' },
  lane: { green: '●', yellow: '▲', red: '■' },
  seal: { armed: '✓', closed: '✓', opened: '!', rope_cut: '✕', case_breach: '✕', low_battery: '▲', fault: '▲' },
  seal_condition: { intact: '✓', breached: '✕', opened_at_control: '!', removed: '–' },
  transit: {
    declared: '○', departed: '➜', in_transit: '➜', at_bcp: '■', arrived: '✓', closed: '✓',
    cancelled: '✕', suspended: '◆',
  },
};

/** A status as a glyph and a translated word, coloured by a class as a third cue. */
export function badge(kind, code, extraClass = '') {
  const glyph = GLYPHS[kind]?.[code] ?? '•';
  const cls = kind === 'lane' ? `lane ${code}` : `status ${code} ${extraClass}`;
  return h('span', { class: cls.trim() }, h('span', { class: 'glyph', 'aria-hidden': 'true' }, glyph), label(kind, code));
}

/** Day, month and 24-hour time, with the name of the zone they are in (GMT+6). */
function stamp(date, timeZone) {
  const options = {
    day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    timeZoneName: 'short',
  };
  try {
    return new Intl.DateTimeFormat(language(), { ...options, timeZone }).format(date);
  } catch {
    // A zone this browser does not know: UTC, which the label then says.
    return new Intl.DateTimeFormat(language(), { ...options, timeZone: 'UTC' }).format(date);
  }
}

/** A time in the browser's zone (or `timeZone`, an IANA name), always labelled with it. */
export function dateTime(iso, timeZone) {
  if (!iso) return '—';
  const date = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return stamp(date, timeZone);
}

export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (Number.isNaN(seconds)) return String(iso);
  const rtf = new Intl.RelativeTimeFormat(language(), { numeric: 'auto' });
  const abs = Math.abs(seconds);
  if (abs < 60) return rtf.format(seconds, 'second');
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour');
  return rtf.format(Math.round(seconds / 86400), 'day');
}

export function duration(totalSeconds) {
  if (totalSeconds === undefined || totalSeconds === null || Number.isNaN(Number(totalSeconds))) return '—';
  const minutes = Math.round(Number(totalSeconds) / 60);
  const hours = Math.floor(minutes / 60);
  if (hours === 0) return t('duration_minutes', { m: minutes });
  return t('duration_hours', { h: hours, m: String(minutes % 60).padStart(2, '0') });
}

export function number(value, digits = 0) {
  if (value === undefined || value === null || Number.isNaN(Number(value))) return '—';
  return new Intl.NumberFormat(language(), { maximumFractionDigits: digits }).format(Number(value));
}

/**
 * A time at a post, in the post's IANA zone (`Asia/Irkutsk`) as the server gives it with each
 * ETA; without a zone, UTC, marked as such so nobody reads it as local time.
 */
export function postLocalTime(iso, timeZone) {
  if (!iso) return { text: '—', zone: '' };
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return { text: String(iso), zone: '' };
  const zone = timeZone || 'UTC';
  return { text: dateTime(date, zone), zone, estimated: !timeZone };
}

/** A box saying that the server does not offer a feature yet. */
export function unavailable(what) {
  return h('div', { class: 'unavailable', role: 'status' },
    h('strong', {}, t('not_available_title')),
    t('not_available_body', { what }));
}

export function errorBox(error) {
  return h('p', { class: 'error-text', role: 'alert' }, t('error_generic', { message: error.message || String(error) }));
}

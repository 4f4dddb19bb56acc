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

export function dateTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(language(), {
    day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit',
  }).format(date);
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

/** UTC offsets of the countries' border posts, used only when the API gives no local time. */
const POST_OFFSETS = {
  KG: 360, KZ: 300, CN: 480, TJ: 300, UZ: 300, MN: 480, RU: 420, PK: 300, AF: 270, TM: 300,
  IR: 210, IN: 330, AZ: 240,
};

function offsetLabel(minutes) {
  const sign = minutes < 0 ? '−' : '+';
  const abs = Math.abs(minutes);
  return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * A time shown in a post's own zone: `iso` (or `zoneOf`, another time at the same post) is
 * read for its offset when it carries one (`2026-11-27T14:15:00+06:00`), otherwise the
 * country's usual offset is used and marked.
 */
export function postLocalTime(iso, country, zoneOf) {
  if (!iso) return { text: '—', zone: '' };
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return { text: String(iso), zone: '' };
  const zoned = zoneOf ?? iso;
  const match = /([+-])(\d\d):?(\d\d)$/.exec(zoned);
  let offset;
  let estimated = false;
  if (match) offset = (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3]));
  else if (/Z$/.test(zoned) && POST_OFFSETS[country] !== undefined) {
    offset = POST_OFFSETS[country];
    estimated = true;
  } else offset = 0;
  const shifted = new Date(date.getTime() + offset * 60000);
  const text = new Intl.DateTimeFormat(language(), {
    timeZone: 'UTC', day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit',
  }).format(shifted);
  return { text, zone: offsetLabel(offset), estimated };
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

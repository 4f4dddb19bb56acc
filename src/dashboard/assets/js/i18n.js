// Every string the dashboard shows comes from one file per language under /assets/i18n/.
// A language file maps keys to text; `{name}` is replaced by a value, and an object value
// ({one, few, many, other}) is chosen by the plural rules of the language for `count`.

import en from '/assets/i18n/en.js';

export const LANGUAGES = { en: 'English', ru: 'Русский', zh: '中文（简体）' };
const LANG_KEY = 'caravan.lang';

let current = 'en';
let strings = en;
const listeners = new Set();

export function language() {
  return current;
}

export function preferredLanguage() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && LANGUAGES[saved]) return saved;
  const browser = (navigator.language || 'en').slice(0, 2);
  return LANGUAGES[browser] ? browser : 'en';
}

export async function setLanguage(code) {
  const lang = LANGUAGES[code] ? code : 'en';
  strings = lang === 'en' ? en : (await import(`/assets/i18n/${lang}.js`)).default;
  current = lang;
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang;
  translate(document);
  for (const listener of listeners) listener(lang);
}

export function onLanguageChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function t(key, vars = {}) {
  let text = strings[key] ?? en[key] ?? key;
  if (typeof text === 'object') {
    const form = new Intl.PluralRules(current).select(Number(vars.count ?? 0));
    text = text[form] ?? text.other;
  }
  return text.replace(/\{(\w+)\}/g, (match, name) => (name in vars ? String(vars[name]) : match));
}

/** A translated label for a code (`status_in_transit`), or the code itself when unknown. */
export function label(prefix, code) {
  if (code === undefined || code === null || code === '') return '';
  const key = `${prefix}_${code}`;
  return strings[key] ?? en[key] ?? String(code).replace(/_/g, ' ');
}

/** Fills elements marked with data-i18n (text) and data-i18n-{aria-label,placeholder,title}. */
export function translate(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const attr of ['aria-label', 'placeholder', 'title']) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)));
    }
  }
}

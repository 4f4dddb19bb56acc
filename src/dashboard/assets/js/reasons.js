// Risk reasons in the page's language. The server states each reason as an English sentence
// of a fixed shape (src/transit/risk.rs, rules/risk.toml); each shape is read back here into
// a translated one. A reason of a shape not listed (a rule a customs service added) is shown
// as the server wrote it.

import { t, label } from '/assets/js/i18n.js';
import { number } from '/assets/js/format.js';

const SHAPES = [
  [/^carrier history: (\d+) seizure\(s\), (\d+) confirmed seal breach\(es\)$/,
    (m) => t('reason_carrier_history', { seizures: m[1], breaches: m[2] })],
  [/^open alert (\S+) \((\w+)\)$/,
    (m) => t('reason_open_alert', { kind: label('alert', m[2]), id: m[1] })],
  [/^declared value (\d+) ([A-Z]{3}) above (\d+)$/,
    (m) => t('reason_value_above', { value: number(m[1]), currency: m[2], above: number(m[3]) })],
  [/^value in ([A-Z]{3}) is not scored: no rule for that currency$/,
    (m) => t('reason_value_not_scored', { currency: m[1] })],
  [/\(HS chapter (\d+)\)$/, (m, text) => {
    const key = `hs_chapter_${m[1]}`;
    const goods = t(key);
    return goods === key ? text : t('reason_hs_chapter', { goods, chapter: m[1] });
  }],
];

/** The reason `text` in the page's language, or as written when its shape is unknown. */
export function riskReason(text) {
  const value = String(text ?? '');
  for (const [pattern, render] of SHAPES) {
    const match = pattern.exec(value);
    if (match) return render(match, value);
  }
  return value;
}

// The names of places as an officer reads them: without the researchers' notes that the map
// data keeps in parentheses ("(KZ side name not verified)", "(PK customs, 75 km S)"), and in
// the page's language where a sourced name in that language is known. Where none is known the
// Latin name stays: no name here is made up or transliterated on the fly.

import { language } from '/assets/js/i18n.js';

/**
 * Names in Russian and Chinese (Simplified), by the id of the place in maps/.
 *
 * Sources:
 * - CLDR: Unicode CLDR 48.2, cldr-dates-full, main/{ru,zh}/timeZoneNames.json, the
 *   `exemplarCity` of the time zone named after the city (Asia/Bishkek → Бишкек, 比什凯克).
 * - Wikipedia: the article's own statement of the Chinese name (en.wikipedia "Port of
 *   Khorgos": 霍尔果斯口岸; en.wikipedia "Alashankou": 阿拉山口).
 *
 * Every other place keeps its Latin name in every language until a sourced name is added.
 */
const NAMES = {
  // CLDR exemplar cities.
  bishkek: { ru: 'Бишкек', zh: '比什凯克' },
  almaty: { ru: 'Алматы', zh: '阿拉木图' },
  urumqi: { ru: 'Урумчи', zh: '乌鲁木齐' },
  dushanbe: { ru: 'Душанбе', zh: '杜尚别' },
  tashkent: { ru: 'Ташкент', zh: '塔什干' },
  samarkand: { ru: 'Самарканд', zh: '撒马尔罕' },
  kabul: { ru: 'Кабул', zh: '喀布尔' },
  ulaanbaatar: { ru: 'Улан-Батор', zh: '乌兰巴托' },
  // Wikipedia.
  'khorgos-cn': { zh: '霍尔果斯' },
  khorgos: { zh: '霍尔果斯' },
  'dostyk-cn': { zh: '阿拉山口' },
  dostyk: { zh: '阿拉山口' },
};

/** `name` without its parenthesised notes and spare separators; '' when only a note is left. */
export function withoutNotes(name) {
  let text = String(name ?? '');
  // Innermost first, so nested notes go too.
  for (let i = 0; i < 3; i += 1) text = text.replace(/\s*\([^()]*\)/g, '');
  return text.replace(/\s*\/\s*$/, '').replace(/^\s*\/\s*/, '').replace(/\s{2,}/g, ' ').trim();
}

/** The BCP's own short name: the first of its posts' names, without notes. */
export function bcpShortName(name) {
  return withoutNotes(String(name ?? '').split(' / ')[0]) || String(name ?? '');
}

/**
 * The name to show for a place of the maps (`props` are its GeoJSON properties): the sourced
 * name in the page's language, else the Latin name without notes, else (a post whose name is
 * only a note) the name of its BCP.
 */
export function placeName(props) {
  if (!props) return '';
  const local = NAMES[props.id]?.[language()];
  if (local) return local;
  const clean = [...new Set(withoutNotes(props.name).split(/\s*\/\s*/).filter(Boolean))].join(' / ');
  if (clean) return clean;
  return bcpShortName(props.bcp_name ?? props.bcp_id ?? props.id);
}

/** The full name as recorded in the maps, notes included, for a tooltip. */
export function recordedName(props) {
  return String(props?.name ?? props?.id ?? '');
}

/** The places of the loaded maps by id (posts, BCPs, offices), for views that hold only ids. */
const known = new Map();

/** Keeps the properties of every place of `maps` for [`nameOfId`]. */
export function rememberPlaces(maps) {
  for (const layer of ['bcps', 'offices']) {
    for (const f of maps[layer]?.features ?? []) {
      if (f.properties?.id) known.set(f.properties.id, f.properties);
    }
  }
}

/** The name to show for the place `id`, or the id itself while the maps are not loaded. */
export function nameOfId(id) {
  const props = known.get(id);
  return props ? placeName(props) : String(id ?? '');
}

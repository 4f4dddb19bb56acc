// countries.geojson from Natural Earth 1:10m as packaged by world-atlas@2.0.2.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { feature } from 'topojson-client';
import * as turf from '@turf/turf';
import { clip, tidy } from './common.mjs';

const require = createRequire(import.meta.url);

/** ISO 3166 numeric (world-atlas feature id) to alpha-2. */
export const COUNTRIES = {
  '398': 'KZ', '417': 'KG', '762': 'TJ', '860': 'UZ', '795': 'TM', '156': 'CN',
  '496': 'MN', '643': 'RU', '004': 'AF', '586': 'PK', '364': 'IR', '356': 'IN', '031': 'AZ',
};

/** Everything outside this box is cut off (RU, CN and IN reach far beyond the region). */
export const CLIP_BBOX = [40, 20, 125, 60];

const SOURCE = 'Natural Earth 1:10m admin-0 (public domain) via npm world-atlas@2.0.2 countries-10m.json';

export function buildCountries() {
  const topoPath = require.resolve('world-atlas/countries-10m.json');
  const topo = JSON.parse(fs.readFileSync(topoPath, 'utf8'));
  const all = feature(topo, topo.objects.countries).features;
  // Baikonur is a separate Natural Earth unit (leased to Russia) inside Kazakhstan.
  const baikonur = all.find((f) => f.properties.name === 'Baikonur');
  const out = [];
  for (const [numeric, code] of Object.entries(COUNTRIES)) {
    let f = all.find((g) => g.id === numeric);
    if (!f) throw new Error(`world-atlas has no country ${numeric} (${code})`);
    if (code === 'KZ' && baikonur) {
      f = turf.union(turf.featureCollection([f, baikonur]), { properties: f.properties });
    }
    const clipped = clip(f, CLIP_BBOX);
    const geometry = tidy(clipped.geometry);
    const multi = geometry.type === 'Polygon'
      ? { type: 'MultiPolygon', coordinates: [geometry.coordinates] }
      : geometry;
    out.push({
      type: 'Feature',
      properties: { kind: 'country', id: code, name: f.properties.name, iso_numeric: numeric, source: SOURCE },
      geometry: multi,
    });
  }
  return out;
}

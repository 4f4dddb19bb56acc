// Shared helpers: reading the reference CSVs, rounding and writing GeoJSON.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import * as turf from '@turf/turf';

const here = path.dirname(fileURLToPath(import.meta.url));
export const MAPS_DIR = path.resolve(here, '..');
export const DATA_DIR = process.env.CARAVAN_MAPS_DATA
  ?? path.resolve(here, '../data');

export function readCsv(name) {
  const text = fs.readFileSync(path.join(DATA_DIR, name), 'utf8');
  return parse(text, { columns: true, skip_empty_lines: true, trim: true });
}

/** Cities by exact name, with numeric coordinates. */
export function readCities() {
  const cities = new Map();
  for (const row of readCsv('cities.csv')) {
    cities.set(row.name, { ...row, lat: Number(row.lat), lon: Number(row.lon) });
  }
  return cities;
}

/** BCP rows; `level` is the leading word of the confidence column. */
export function readCrossings() {
  return readCsv('border-crossings.csv').map((row) => {
    const level = /^(high|medium|low|none)/.exec(row.confidence)?.[1];
    if (!level) throw new Error(`${row.id}: unreadable confidence "${row.confidence}"`);
    const hasPoint = row.lat !== '' && row.lon !== '';
    return {
      ...row,
      level,
      lat: hasPoint ? Number(row.lat) : null,
      lon: hasPoint ? Number(row.lon) : null,
    };
  });
}

/** Published facility positions of BCPs; a row has a coordinate or a distance. */
export function readFacilities() {
  const num = (s) => (s === '' ? null : Number(s));
  return readCsv('post-facilities.csv').map((row) => ({
    ...row,
    lat: num(row.lat),
    lon: num(row.lon),
    distance_km: num(row.distance_km),
    precision_km: Number(row.precision_km),
  }));
}

export function slug(name) {
  return name
    .replace(/\(.*?\)/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

const round = (x, digits) => Number(x.toFixed(digits));

function roundRing(ring, digits) {
  const out = [];
  for (const [x, y] of ring) {
    const p = [round(x, digits), round(y, digits)];
    const last = out[out.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) out.push(p);
  }
  const [first, last] = [out[0], out[out.length - 1]];
  if (out.length && (first[0] !== last[0] || first[1] !== last[1])) out.push([...first]);
  return out;
}

const hasArea = (ring) => ring.length >= 4 && turf.area(turf.polygon([ring])) > 1;

/** A polygon whose outer ring collapses is dropped whole; collapsed holes are dropped. */
function roundPolygon(rings, digits) {
  const [outer, ...holes] = rings.map((r) => roundRing(r, digits));
  if (!outer || !hasArea(outer)) return [];
  return [outer, ...holes.filter(hasArea)];
}

/** Rounds coordinates, drops repeated points and collapsed rings, winds per RFC 7946. */
export function tidy(geometry, digits = 5) {
  switch (geometry.type) {
    case 'Point':
      return { type: 'Point', coordinates: geometry.coordinates.map((x) => round(x, 6)) };
    case 'LineString':
      return { type: 'LineString', coordinates: geometry.coordinates.map(([x, y]) => [round(x, 6), round(y, 6)]) };
    case 'Polygon':
    case 'MultiPolygon': {
      const polys = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
      const parts = polys.map((p) => roundPolygon(p, digits)).filter((p) => p.length > 0);
      const g = parts.length === 1 && geometry.type === 'Polygon'
        ? { type: 'Polygon', coordinates: parts[0] }
        : { type: 'MultiPolygon', coordinates: parts };
      return turf.rewind(g);
    }
    default:
      throw new Error(`unexpected geometry ${geometry.type}`);
  }
}

/** Writes a FeatureCollection with one feature per line: small, and readable in a diff. */
export function writeCollection(name, features) {
  const lines = features.map((f) => JSON.stringify({ type: 'Feature', properties: f.properties, geometry: f.geometry }));
  const text = `{"type":"FeatureCollection","features":[\n${lines.join(',\n')}\n]}\n`;
  fs.writeFileSync(path.join(MAPS_DIR, name), text);
  console.log(`${name}: ${features.length} features, ${(text.length / 1024).toFixed(0)} KiB`);
}

/** turf.bboxClip without the empty or collapsed rings it leaves behind; null when nothing is left. */
export function clip(feature, bbox) {
  const clipped = turf.bboxClip(feature, bbox).geometry;
  const polys = clipped.type === 'Polygon' ? [clipped.coordinates] : clipped.coordinates;
  const kept = polys
    .map((rings) => rings.filter((r) => r.length >= 4))
    .filter((rings) => rings.length > 0 && polys.length > 0);
  if (kept.length === 0) return null;
  return turf.multiPolygon(kept, feature.properties);
}

// The base map, drawn from Caravan's own map data: countries, corridors, coverage gaps, customs
// offices and border crossing points, in an equirectangular projection scaled to the region.

import * as api from '/assets/js/api.js';
import { s } from '/assets/js/format.js';
import { label } from '/assets/js/i18n.js';
import { placeName, recordedName, rememberPlaces } from '/assets/js/places.js';

const LAYERS = ['countries', 'bcps', 'corridors', 'offices', 'coverage-gaps'];
/** Map units per degree of latitude. */
const SCALE = 100;
/** Vertices closer than this (map units) to the previous one are dropped when drawing. */
const SIMPLIFY = 1.2;

/** Kilometres per degree of latitude (mean Earth radius 6,371 km). */
export const KM_PER_DEGREE = 111.195;
/** Kilometres per map unit. */
export const KM_PER_UNIT = KM_PER_DEGREE / SCALE;

let loading = null;
/** How many layers have arrived, for the progress shown while the map loads. */
const progress = { done: 0, total: LAYERS.length, listeners: new Set() };

/**
 * The map layers, from the API when it serves them, otherwise from the dashboard's own copy.
 * `onProgress(done, total)` hears of each layer as it arrives (and at once of those already in).
 */
export function loadMaps(onProgress) {
  if (onProgress) {
    progress.listeners.add(onProgress);
    onProgress(progress.done, progress.total);
  }
  loading ??= Promise.all(LAYERS.map((name) => loadLayer(name).then((layer) => {
    progress.done += 1;
    for (const listener of progress.listeners) listener(progress.done, progress.total);
    return layer;
  }))).then((layers) => {
    const maps = Object.fromEntries(LAYERS.map((name, i) => [name, layers[i]]));
    rememberPlaces(maps);
    return maps;
  });
  const forget = () => { if (onProgress) progress.listeners.delete(onProgress); };
  loading.then(forget, forget);
  return loading;
}

async function loadLayer(name) {
  try {
    const data = await api.get(`/api/v1/maps/${name}`);
    if (data && Array.isArray(data.features)) return data;
  } catch {
    // The dashboard's embedded copy below is the same data.
  }
  const response = await fetch(`/assets/maps/${name}.geojson`);
  if (!response.ok) return { type: 'FeatureCollection', features: [] };
  return response.json();
}

/** The posts (one side of a BCP each) with their BCP and country. */
export function posts(maps) {
  return maps.bcps.features
    .filter((f) => f.properties.kind === 'bcp_post')
    .map((f) => ({
      id: f.properties.id, bcp: f.properties.bcp_id, name: placeName(f.properties),
      bcpName: placeName({ id: f.properties.bcp_id, name: f.properties.bcp_name }),
      country: f.properties.country,
    }));
}

function extend(box, [lon, lat]) {
  box[0] = Math.min(box[0], lon); box[1] = Math.min(box[1], lat);
  box[2] = Math.max(box[2], lon); box[3] = Math.max(box[3], lat);
}

function eachCoordinate(geometry, visit) {
  const walk = (c) => (typeof c[0] === 'number' ? visit(c) : c.forEach(walk));
  if (geometry) walk(geometry.coordinates);
}

/** The region the network covers (BCPs, offices, corridors) with a margin, in degrees. */
export function regionBounds(maps) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const layer of ['bcps', 'offices', 'corridors']) {
    for (const f of maps[layer].features) eachCoordinate(f.geometry, (c) => extend(box, c));
  }
  if (!Number.isFinite(box[0])) return [60, 30, 115, 53];
  return [box[0] - 2, box[1] - 1.5, box[2] + 2, box[3] + 1.5];
}

/** The bounding box of a geometry, in degrees, or null. */
export function boundsOf(geometry) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  eachCoordinate(geometry, (c) => extend(box, c));
  return Number.isFinite(box[0]) ? box : null;
}

/**
 * The part of the region a principal works in, in degrees: a country's customs see their
 * country, a post the country around it (its own side and the approaches), everyone else
 * the whole network.
 */
export function homeBounds(maps, role) {
  const [kind, a, b] = String(role ?? '').split(':');
  if (kind === 'post') {
    const post = maps.bcps.features.find((f) => f.properties.kind === 'bcp_post'
      && f.properties.bcp_id === a && f.properties.country === b);
    // A post is drawn as its control zone: frame the zone's centre.
    const zone = post && boundsOf(post.geometry);
    if (zone) {
      const [lon, lat] = [(zone[0] + zone[2]) / 2, (zone[1] + zone[3]) / 2];
      return [lon - 2.2, lat - 1.3, lon + 2.2, lat + 1.3];
    }
  }
  if (kind === 'customs' || kind === 'post') {
    const country = kind === 'customs' ? a : b;
    const feature = maps.countries.features.find((f) => f.properties.id === country);
    const box = feature && boundsOf(feature.geometry);
    if (box) return [box[0] - 0.4, box[1] - 0.3, box[2] + 0.4, box[3] + 0.3];
  }
  return regionBounds(maps);
}

export function projection(bounds) {
  const [minLon, minLat, maxLon, maxLat] = bounds;
  const k = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
  return {
    width: (maxLon - minLon) * k * SCALE,
    height: (maxLat - minLat) * SCALE,
    project: ([lon, lat]) => [(lon - minLon) * k * SCALE, (maxLat - lat) * SCALE],
  };
}

function ringPath(ring, project) {
  let d = '';
  let last = null;
  for (const c of ring) {
    const [x, y] = project(c);
    if (last && Math.abs(x - last[0]) < SIMPLIFY && Math.abs(y - last[1]) < SIMPLIFY) continue;
    d += `${d ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
    last = [x, y];
  }
  return d;
}

function polygonsOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === 'Polygon') return [geometry.coordinates];
  if (geometry.type === 'MultiPolygon') return geometry.coordinates;
  return [];
}

function intersects(ring, bounds) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  ring.forEach((c) => extend(box, c));
  return box[0] <= bounds[2] + 5 && box[2] >= bounds[0] - 5 && box[1] <= bounds[3] + 5 && box[3] >= bounds[1] - 5;
}

function areaPath(geometry, proj, bounds) {
  let d = '';
  for (const polygon of polygonsOf(geometry)) {
    if (!intersects(polygon[0], bounds)) continue;
    for (const ring of polygon) d += `${ringPath(ring, proj.project)}Z`;
  }
  return d;
}

/** Where to write a country's code: the mean of its vertices inside the region. */
function labelPoint(geometry, bounds) {
  let sx = 0; let sy = 0; let n = 0;
  eachCoordinate(geometry, ([lon, lat]) => {
    if (lon > bounds[0] + 1 && lon < bounds[2] - 1 && lat > bounds[1] + 1 && lat < bounds[3] - 1) {
      sx += lon; sy += lat; n += 1;
    }
  });
  return n > 20 ? [sx / n, sy / n] : null;
}

/** The base map (areas and lines, in map units) and the country names (anchored). */
export function drawBaseMap(maps, proj, bounds) {
  const base = s('g', { class: 'base-map' });
  const countries = s('g', { class: 'countries' });
  const countryLabels = s('g', { class: 'country-labels' });
  for (const f of maps.countries.features) {
    const d = areaPath(f.geometry, proj, bounds);
    if (!d) continue;
    countries.append(s('path', { class: 'country', d }, s('title', {}, label('country', f.properties.id))));
    const at = labelPoint(f.geometry, bounds);
    if (at) {
      const [x, y] = proj.project(at);
      countryLabels.append(s('g', { class: 'anchored', 'data-x': x, 'data-y': y, 'data-label-rank': 4, 'data-country': f.properties.id },
        s('text', { class: 'country-label map-label', 'text-anchor': 'middle', 'data-fixed': 'true' }, label('country', f.properties.id))));
    }
  }
  const gaps = s('g', { class: 'gaps' });
  for (const f of maps['coverage-gaps'].features) {
    gaps.append(s('path', { class: 'gap', d: areaPath(f.geometry, proj, bounds) }, s('title', {}, f.properties.name)));
  }
  const corridors = s('g', { class: 'corridors' });
  for (const f of maps.corridors.features) {
    if (f.geometry?.type !== 'LineString') continue;
    const d = f.geometry.coordinates.map((c, i) => `${i ? 'L' : 'M'}${proj.project(c).map((v) => v.toFixed(1)).join(',')}`).join('');
    corridors.append(s('path', { class: 'corridor', d }, s('title', {}, f.properties.name)));
  }
  base.append(countries, gaps, corridors);
  return { base, countryLabels };
}

/** Offices and BCPs as symbols that keep their size on screen (anchored at data-x, data-y),
 * each with a label that the map places beside it where it does not cover another. */
export function drawPlaces(maps, proj) {
  const places = s('g', { class: 'places' });
  for (const f of maps.offices.features) {
    const centre = centreOf(f.geometry);
    if (!centre) continue;
    const [x, y] = proj.project(centre);
    places.append(s('g', { class: 'anchored place office-place', 'data-x': x, 'data-y': y, 'data-label-rank': 3, 'data-place': f.properties.id },
      s('rect', { class: 'office', x: -4, y: -4, width: 8, height: 8 }),
      s('text', { class: 'place-label map-label', x: 7, y: 4 }, placeName(f.properties)),
      s('title', {}, `${label('place', 'office')}: ${recordedName(f.properties)}`)));
  }
  for (const f of maps.bcps.features) {
    if (f.properties.kind !== 'bcp' || f.geometry?.type !== 'Point') continue;
    const [x, y] = proj.project(f.geometry.coordinates);
    places.append(s('g', { class: 'anchored place bcp-place', 'data-x': x, 'data-y': y, 'data-label-rank': 2, 'data-place': f.properties.id },
      s('path', { class: 'bcp', d: 'M0,-6L6,0L0,6L-6,0Z' }),
      s('text', { class: 'place-label map-label', x: 8, y: 4 }, placeName(f.properties)),
      s('title', {}, `${label('place', 'bcp')}: ${recordedName(f.properties)}`)));
  }
  return places;
}

function centreOf(geometry) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  eachCoordinate(geometry, (c) => extend(box, c));
  return Number.isFinite(box[0]) ? [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2] : null;
}

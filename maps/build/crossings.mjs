// border-crossings.geojson: a Point per BCP and a control-zone Polygon per post.
import * as turf from '@turf/turf';
import { clip, tidy } from './common.mjs';

/** Base radius of the control zone per confidence level (see maps/README.md). */
export const RADIUS_KM = { high: 2, medium: 4, low: 8 };
/** A post zone reaches this far past the Natural Earth line into the peer country. */
export const BORDER_OVERLAP_KM = 0.5;
/** Growth step, and ceiling as a multiple of the base radius, when the base disc does not
 * reach both countries. */
const STEP_KM = 1;
const MAX_GROWTH = 2;
/** Each side must hold at least this share of the base disc's area. */
const MIN_SIDE_SHARE = 0.15;

const area = (f) => (f ? turf.area(f) : 0);

/** Largest distance searched for a corridor's crossing of the border line. */
export const maxRadiusKm = (level) => MAX_GROWTH * RADIUS_KM[level];

function intersect(a, b) {
  return turf.intersect(turf.featureCollection([a, b]));
}

/** The largest part of a (Multi)Polygon feature, as a Polygon geometry. */
function largestPart(f) {
  if (f.geometry.type === 'Polygon') return f.geometry;
  const parts = f.geometry.coordinates.map((c) => turf.polygon(c));
  parts.sort((x, y) => area(y) - area(x));
  return parts[0].geometry;
}

/** The part of a country near a point (a window of about ±60 km). */
function neighbourhood(country, center) {
  const [lon, lat] = center;
  return clip(country, [lon - 0.8, lat - 0.6, lon + 0.8, lat + 0.6]);
}

/** One side of the disc, reaching past the border line by the overlap. */
function side(disc, core) {
  const grown = turf.buffer(core, BORDER_OVERLAP_KM, { units: 'kilometers', steps: 16 });
  return largestPart(intersect(disc, grown));
}

/**
 * How far from the BCP coordinate its published facilities reach: each facility's distance
 * (measured from its coordinate, or as published) plus the precision of the figure.
 */
export function facilityReachKm(row, facilities) {
  const center = [row.lon, row.lat];
  const reach = facilities
    .filter((f) => f.bcp_id === row.id)
    .map((f) => (f.lat !== null
      ? turf.distance(center, [f.lon, f.lat], { units: 'kilometers' })
      : f.distance_km) + f.precision_km);
  return Math.max(0, ...reach);
}

/**
 * Grows the disc until both countries hold a fair share of it and it holds the published
 * facilities of the crossing (beyond the usual ceiling if need be: a truck waiting at a
 * published port or post is at the BCP), then cuts it per side.
 */
function postZones(row, sideA, sideB, roadCrossings, facilityKm) {
  const center = [row.lon, row.lat];
  const reach = Math.max(0, ...roadCrossings.map((p) => turf.distance(center, p, { units: 'kilometers' })));
  const base = RADIUS_KM[row.level];
  const minSide = MIN_SIDE_SHARE * Math.PI * (base * 1000) ** 2;
  const ceiling = Math.max(MAX_GROWTH * base, Math.ceil(facilityKm + 0.5));
  for (let r = base; r <= ceiling; r += STEP_KM) {
    const disc = turf.circle(center, r, { steps: 64, units: 'kilometers' });
    const coreA = intersect(disc, sideA);
    const coreB = intersect(disc, sideB);
    if (area(coreA) < minSide || area(coreB) < minSide || r < reach + 0.5) continue;
    if (r < facilityKm + 0.5) continue;
    return { radiusKm: r, a: side(disc, coreA), b: side(disc, coreB) };
  }
  return null;
}

const carec = (row) => (row.corridors === '-' ? null : row.corridors);

/**
 * @param rows BCP rows with coordinates
 * @param countries Map alpha-2 -> country feature
 * @param corridorsOf function bcp id -> corridor ids
 * @param roadCrossingsOf function (row, sideA, sideB) -> points where the corridors joining
 *   the BCP cross the Natural Earth line near it; the zone grows to hold them
 */
export function buildCrossings(rows, countries, corridorsOf, roadCrossingsOf, facilities) {
  const features = [];
  const report = [];
  for (const row of rows) {
    const sides = [row.country_a, row.country_b].map((code) => {
      const country = countries.get(code);
      if (!country) throw new Error(`${row.id}: country ${code} is not in countries.geojson`);
      const side = neighbourhood(country, [row.lon, row.lat]);
      if (!side) throw new Error(`${row.id}: ${code} is not within reach of the point`);
      return side;
    });
    const facilityKm = facilityReachKm(row, facilities);
    const zones = postZones(row, sides[0], sides[1], roadCrossingsOf(row, sides[0], sides[1]), facilityKm)
      ?? postZones(row, sides[0], sides[1], [], facilityKm);
    if (!zones) {
      report.push({ id: row.id, level: row.level, radiusKm: null, grown: false, facilityKm });
      continue;
    }
    const { radiusKm, a, b } = zones;
    const name = `${row.name_a} / ${row.name_b}`;
    const common = {
      confidence: row.level,
      radius_m: radiusKm * 1000,
      corridors: corridorsOf(row.id),
      carec: carec(row),
      source: row.source,
    };
    features.push({
      type: 'Feature',
      properties: { kind: 'bcp', id: row.id, name, countries: [row.country_a, row.country_b], ...common, confidence_note: row.confidence },
      geometry: tidy({ type: 'Point', coordinates: [row.lon, row.lat] }),
    });
    for (const [post, code, peer, postName] of [
      [a, row.country_a, row.country_b, row.name_a],
      [b, row.country_b, row.country_a, row.name_b],
    ]) {
      features.push({
        type: 'Feature',
        properties: {
          kind: 'bcp_post', id: `${row.id}-${code.toLowerCase()}`, bcp_id: row.id, bcp_name: name,
          name: postName, country: code, peer_country: peer, ...common,
        },
        geometry: tidy(post),
      });
    }
    report.push({ id: row.id, level: row.level, radiusKm, grown: radiusKm > RADIUS_KM[row.level], facilityKm });
  }
  return { features, report };
}

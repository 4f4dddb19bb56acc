// customs-offices, corridors and coverage-gaps from network.json, with every coordinate
// taken from the reference CSVs.
import * as turf from '@turf/turf';
import { slug, tidy } from './common.mjs';

/** CAREC CPMM 2022: average speed with delay, and average time spent at a BCP. */
const SPEED_WITH_DELAY_KMH = 23.4;
const HOURS_AT_BCP = 9.9;
/** Traversal time is multiplied by this before rounding up to a quarter hour. */
const GAP_SAFETY_FACTOR = 1.5;
/** A gap zone reaches this far beyond the corridor's width. */
const GAP_MARGIN_M = 2000;

const CITY_SOURCE = (city) => `cities.csv: ${city.source}`;

/** An office's id: the city's name as a slug, with `-city` when a BCP already has that id. */
export function officeId(name, bcps) {
  const id = slug(name);
  return bcps.has(id) ? `${id}-city` : id;
}

/** Resolves a waypoint (a BCP id or a city name) to its coordinates and kind. */
export function resolver(cities, bcps) {
  return (name) => {
    const bcp = bcps.get(name);
    if (bcp) {
      if (bcp.lat === null) throw new Error(`waypoint ${name}: BCP has no coordinates`);
      return { kind: 'bcp', id: name, coord: [bcp.lon, bcp.lat] };
    }
    const city = cities.get(name);
    if (!city) throw new Error(`waypoint ${name}: neither a BCP id nor a city in cities.csv`);
    return { kind: 'city', id: officeId(name, bcps), coord: [city.lon, city.lat], city };
  };
}

export function buildOffices(network, cities, bcps) {
  return network.offices.map((name) => {
    const city = cities.get(name);
    if (!city) throw new Error(`office ${name}: not in cities.csv`);
    const zone = turf.circle([city.lon, city.lat], network.office_radius_m / 1000, { steps: 48, units: 'kilometers' });
    return {
      type: 'Feature',
      properties: {
        kind: 'customs_office', id: officeId(name, bcps), name, country: city.country,
        radius_m: network.office_radius_m,
        location: 'city coordinate, not a surveyed office site',
        source: CITY_SOURCE(city),
      },
      geometry: tidy(zone.geometry),
    };
  });
}

export function buildCorridors(network, resolve, officeIds) {
  return network.corridors.map((c) => {
    const points = c.waypoints.map(resolve);
    const joins = points
      .filter((p) => p.kind === 'bcp' || officeIds.has(p.id))
      .map((p) => p.id);
    return {
      type: 'Feature',
      properties: {
        kind: 'corridor', id: c.id, name: c.name, carec: c.carec, width_m: c.width_m, joins,
        waypoints: c.waypoints,
        source: 'straight lines between the waypoints (cities.csv, border-crossings.csv); an approximation of the road',
      },
      geometry: tidy({ type: 'LineString', coordinates: points.map((p) => p.coord) }),
    };
  });
}

const quarterHours = (seconds) => Math.ceil(seconds / 900) * 900;

export function buildGaps(network, corridors, resolve) {
  return network.gaps.map((g) => {
    const corridor = corridors.find((c) => c.properties.id === g.corridor);
    if (!corridor) throw new Error(`gap ${g.id}: unknown corridor ${g.corridor}`);
    const names = corridor.properties.waypoints;
    const [i, j] = [names.indexOf(g.from), names.indexOf(g.to)].sort((x, y) => x - y);
    if (i < 0 || i === j) throw new Error(`gap ${g.id}: ${g.from} / ${g.to} are not waypoints of ${g.corridor}`);
    const stretch = names.slice(i, j + 1);
    const line = turf.lineString(stretch.map((n) => resolve(n).coord));
    const lengthKm = turf.length(line, { units: 'kilometers' });
    const hasBcp = stretch.some((n) => resolve(n).kind === 'bcp');
    const seconds = (GAP_SAFETY_FACTOR * lengthKm / SPEED_WITH_DELAY_KMH + (hasBcp ? HOURS_AT_BCP : 0)) * 3600;
    const radiusKm = (corridor.properties.width_m + GAP_MARGIN_M) / 1000;
    const zone = turf.buffer(line, radiusKm, { units: 'kilometers', steps: 16 });
    return {
      type: 'Feature',
      properties: {
        kind: 'coverage_gap', id: g.id, name: g.name, corridor: g.corridor, waypoints: stretch,
        length_km: Math.round(lengthKm), signal_loss_timeout_s: quarterHours(seconds),
        source: 'estimate: corridor stretch between the named waypoints; timeout from CAREC CPMM 2022 speeds',
      },
      geometry: tidy(zone.geometry),
    };
  });
}

/**
 * Walks every corridor in 1 km steps and reports each change of country that does not
 * happen inside a post zone of a BCP the corridor joins.
 */
export function borderChangesOutsideBcps(corridors, countries, posts) {
  const polys = [...countries.values()].map((f) => ({ code: f.properties.id, f, bbox: turf.bbox(f) }));
  const countryAt = (pt) => polys.find(({ f, bbox: [w, s, e, n] }) => {
    const [x, y] = pt.geometry.coordinates;
    return x >= w && x <= e && y >= s && y <= n && turf.booleanPointInPolygon(pt, f);
  })?.code ?? null;
  const problems = [];
  for (const c of corridors) {
    const line = turf.lineString(c.geometry.coordinates);
    const zones = posts.filter((p) => c.properties.joins.includes(p.properties.bcp_id));
    const length = turf.length(line, { units: 'kilometers' });
    let previous = null;
    let previousPt = null;
    for (let d = 0; d <= length; d += 1) {
      const pt = turf.along(line, d, { units: 'kilometers' });
      const here = countryAt(pt);
      if (previous !== null && here !== null && here !== previous) {
        const step = turf.lineString([previousPt.geometry.coordinates, pt.geometry.coordinates]);
        const inZone = zones.some((z) => turf.booleanIntersects(step, z));
        if (!inZone) problems.push(`${c.properties.id}: ${previous} -> ${here} at km ${d} ${pt.geometry.coordinates.map((x) => x.toFixed(3))} outside its BCP zones`);
      }
      if (here !== null) {
        previous = here;
        previousPt = pt;
      }
    }
  }
  return problems;
}

/**
 * Where each corridor joining a BCP crosses from one of its countries to the other within
 * `radiusKm` of the BCP point, sampled every 100 m.
 */
export function roadCrossings(corridors, row, sideA, sideB, radiusKm) {
  const center = [row.lon, row.lat];
  const points = [];
  for (const c of corridors.filter((k) => k.properties.joins.includes(row.id))) {
    const line = turf.lineString(c.geometry.coordinates);
    const length = turf.length(line, { units: 'kilometers' });
    let previous = null;
    for (let d = 0; d <= length; d += 0.1) {
      const pt = turf.along(line, d, { units: 'kilometers' });
      if (turf.distance(center, pt, { units: 'kilometers' }) > radiusKm) {
        previous = null;
        continue;
      }
      const here = turf.booleanPointInPolygon(pt, sideA) ? 'a' : turf.booleanPointInPolygon(pt, sideB) ? 'b' : null;
      if (previous && here && here !== previous) points.push(pt.geometry.coordinates);
      if (here) previous = here;
    }
  }
  return points;
}

// Rebuilds every maps/*.geojson file: `npm ci && npm run build` in maps/build.
import fs from 'node:fs';
import path from 'node:path';
import { MAPS_DIR, readCities, readCrossings, readFacilities, writeCollection } from './common.mjs';
import { buildCountries } from './countries.mjs';
import { buildCrossings, maxRadiusKm } from './crossings.mjs';
import { borderChangesOutsideBcps, buildCorridors, buildGaps, buildOffices, resolver, roadCrossings } from './network.mjs';

const network = JSON.parse(fs.readFileSync(path.join(MAPS_DIR, 'build', 'network.json'), 'utf8'));
const cities = readCities();
const rows = readCrossings();
const bcps = new Map(rows.map((r) => [r.id, r]));
const resolve = resolver(cities, bcps);

const countries = buildCountries();
const countryByCode = new Map(countries.map((f) => [f.properties.id, f]));

const offices = buildOffices(network, cities, bcps);
const officeIds = new Set(offices.map((f) => f.properties.id));
const corridors = buildCorridors(network, resolve, officeIds);
const corridorsOf = (bcpId) => corridors
  .filter((c) => c.properties.joins.includes(bcpId))
  .map((c) => c.properties.id);

const located = rows.filter((r) => r.lat !== null);
const roadCrossingsOf = (row, sideA, sideB) => roadCrossings(corridors, row, sideA, sideB, maxRadiusKm(row.level));
const { features: crossings, report } = buildCrossings(located, countryByCode, corridorsOf, roadCrossingsOf, readFacilities());
const gaps = buildGaps(network, corridors, resolve);

writeCollection('countries.geojson', countries);
writeCollection('border-crossings.geojson', crossings);
writeCollection('customs-offices.geojson', offices);
writeCollection('corridors.geojson', corridors);
writeCollection('coverage-gaps.geojson', gaps);

console.log('\nBCP zones (radius in km; * = grown past the base radius to reach both countries):');
for (const r of report) {
  const radius = r.radiusKm === null ? 'none: the point is too far from the border line' : `${r.radiusKm}${r.grown ? ' *' : ''}`;
  const reach = r.facilityKm > 0 ? `  (published facilities reach ${r.facilityKm.toFixed(1)} km)` : '';
  console.log(`  ${r.id.padEnd(14)} ${r.level.padEnd(7)} ${radius}${reach}`);
}
console.log(`\nBCPs without coordinates (not mapped): ${rows.filter((r) => r.lat === null).map((r) => r.id).join(', ')}`);
for (const g of gaps) console.log(`gap ${g.properties.id}: ${g.properties.length_km} km, timeout ${g.properties.signal_loss_timeout_s} s`);

const posts = crossings.filter((f) => f.properties.kind === 'bcp_post');
const changes = borderChangesOutsideBcps(corridors, countryByCode, posts);
console.log(`\nCorridor border changes outside a joined BCP zone: ${changes.length}`);
for (const line of changes) console.log(`  ${line}`);

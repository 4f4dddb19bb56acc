// Drives Caravan's dashboard in Debian's headless Chromium. Started by
// tests/integration/dashboard.rs, which runs the server and publishes over MQTT.
//
// Environment: CARAVAN_URL (the server), CARAVAN_DEVICE (a registered device with no position
// yet), CARAVAN_PLATE (its plate), CARAVAN_TOKEN (optional: a coordinator token),
// SCREENSHOT_DIR, CHROMIUM (default /usr/bin/chromium).
//
// Protocol on stdout/stdin, one line each:
//   script: READY            signed in, map drawn, the device not on it
//   test:   GO               after publishing the first fix
//   script: SEEN x y         the vehicle is on the map
//   test:   GO               after publishing a second fix elsewhere
//   script: MOVED x y        the marker moved
//   script: DONE {json}      every other check passed; or FAIL reason (exit code 1)

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const base = required('CARAVAN_URL').replace(/\/$/, '');
const deviceId = required('CARAVAN_DEVICE');
const plate = process.env.CARAVAN_PLATE || deviceId;
const token = process.env.CARAVAN_TOKEN || '';
const shots = required('SCREENSHOT_DIR');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_MS = 20000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.log(`FAIL missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function nextLine() {
  const { value, done } = await lines.next();
  if (done) throw new Error('the test closed stdin');
  return value.trim();
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const marker = (page) => page.locator(`#map g.vehicle[data-device-id="${deviceId}"]`);

/** The element's box once it is laid out and visible. A live update can redraw a marker
 * between two reads, and Playwright answers null for the moment it is detached. */
async function boxOf(page, locator, what) {
  const until = Date.now() + STEP_MS;
  for (;;) {
    const box = await locator.boundingBox();
    if (box) return box;
    if (Date.now() > until) throw new Error(`${what} is not on the page`);
    await page.waitForTimeout(100);
  }
}

async function position(page) {
  const el = marker(page);
  return [await el.getAttribute('data-x'), await el.getAttribute('data-y')];
}

async function shoot(page, name) {
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(shots, `${name}.png`) });
  return `${name}.png`;
}

async function signIn(page) {
  await page.goto(base, { waitUntil: 'domcontentloaded' });
  const form = page.locator('#token');
  const nav = page.locator('#nav');
  await Promise.race([form.waitFor({ timeout: STEP_MS }), nav.waitFor({ state: 'visible', timeout: STEP_MS })]);
  if (await form.isVisible()) {
    check(token, 'the server asks for sign-in but no CARAVAN_TOKEN was given');
    await shoot(page, '00-sign-in');
    await form.fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#sign-in-error:not(:empty)').waitFor({ timeout: STEP_MS });
    await form.fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await nav.waitFor({ state: 'visible', timeout: STEP_MS });
  return (await form.count()) === 0 ? 'signed in' : 'form';
}

/** Visible label boxes on the map (screen pixels) that cover another one. */
async function labelOverlaps(page) {
  return page.evaluate(() => {
    const boxes = [...document.querySelectorAll('#map .map-label')]
      .filter((el) => !el.classList.contains('label-hidden') && el.closest('svg'))
      .map((el) => ({ text: el.textContent, r: el.getBoundingClientRect() }))
      .filter((b) => b.r.width > 0);
    const out = [];
    for (let i = 0; i < boxes.length; i += 1) {
      for (let j = i + 1; j < boxes.length; j += 1) {
        const a = boxes[i].r; const b = boxes[j].r;
        // A pixel of anti-aliasing either way is not a collision.
        if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) out.push(`${boxes[i].text} × ${boxes[j].text}`);
      }
    }
    return { shown: boxes.length, overlaps: out };
  });
}

/** Scale bar, labels that do not collide, place names without the data's notes, gzip. */
async function checkMapFurniture(page, summary) {
  const scale = page.locator('#scale-bar');
  await scale.waitFor({ timeout: STEP_MS });
  summary.scale_km = Number(await scale.getAttribute('data-km'));
  check(summary.scale_km > 0 && ((await scale.textContent()) || '').includes('km'), 'the map has no scale bar');
  const labels = await labelOverlaps(page);
  summary.labels_shown = labels.shown;
  check(labels.shown >= 5, `only ${labels.shown} labels are shown on the map`);
  check(labels.overlaps.length === 0, `map labels overlap: ${labels.overlaps.slice(0, 5).join('; ')}`);
  const notes = await page.evaluate(() => [...document.querySelectorAll('#map .map-label')]
    .map((el) => el.textContent).filter((text) => /[()]|verified|customs|km S/.test(text)));
  check(notes.length === 0, `place labels carry data notes: ${notes.join('; ')}`);
  // The layers came compressed: fewer bytes on the wire than in the layer.
  const countries = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/maps/countries')).map((e) => [e.encodedBodySize, e.decodedBodySize])[0]);
  summary.countries_layer_bytes = countries;
  check(countries && countries[0] > 0 && countries[0] * 3 < countries[1], `the countries layer was not sent compressed: ${countries}`);
}

/** The detail sits beside the map (not under the list), the map is centred on the truck, and
 * the detail's last fix says what the list said. */
async function checkDetailBesideTheMapOnTheTruck(page, listed, summary) {
  const stage = await boxOf(page, page.locator('.map-stage'), 'the map');
  const detail = await boxOf(page, page.locator('#detail'), 'the detail');
  check(detail.x >= stage.x + stage.width - 2, 'the detail is not beside the map');
  check(detail.y < stage.y + 120, `the detail starts ${Math.round(detail.y)} px down, below something else`);
  check(!(await page.locator('#vehicle-list').isVisible()), 'the vehicle list still takes the side beside the detail');
  await page.waitForTimeout(300);
  const truck = await boxOf(page, marker(page).locator('.shape'), 'the truck\'s marker');
  const dx = truck.x + truck.width / 2 - (stage.x + stage.width / 2);
  const dy = truck.y + truck.height / 2 - (stage.y + stage.height / 2);
  summary.truck_offset_from_centre = [Math.round(dx), Math.round(dy)];
  check(Math.abs(dx) < 40 && Math.abs(dy) < 40, `the map did not move to the truck (${Math.round(dx)}, ${Math.round(dy)} px off centre)`);
  const lastFix = (await page.locator('#detail dt', { hasText: 'Last fix' }).locator('xpath=following-sibling::dd[1]').textContent()) || '';
  const ago = lastFix.slice(lastFix.indexOf('(') + 1, lastFix.lastIndexOf(')'));
  summary.last_fix = { list: listed, detail: lastFix };
  check(ago && listed.includes(ago), `the list says "${listed}" but the detail says "${lastFix}"`);
  check(/UTC|GMT/.test(lastFix) && !/\b(AM|PM)\b/.test(lastFix), `the last fix is not a 24-hour time with its zone: ${lastFix}`);
}

const WORDS = {
  en: { map: 'Map', moving: 'Moving', alerts: 'Alert desk', office: 'Almaty' },
  ru: { map: 'Карта', moving: 'В движении', alerts: 'Тревоги', office: 'Алматы' },
  zh: { map: '地图', moving: '行驶中', alerts: '告警台', office: '阿拉木图' },
};

/** Every view in `lang`, with a screenshot each: words, place names, times with zones. */
async function tourIn(page, lang, summary) {
  const words = WORDS[lang];
  await page.locator('#nav a[data-view="map"]').click();
  await page.selectOption('#lang', lang);
  await page.locator('#nav a[data-view="map"]', { hasText: words.map }).waitFor({ timeout: STEP_MS });
  await page.locator('.legend', { hasText: words.moving }).waitFor({ timeout: STEP_MS });
  check((await page.getAttribute('html', 'lang')) === lang, `html lang is not ${lang}`);
  await marker(page).waitFor({ timeout: STEP_MS });
  const office = await page.locator('#map [data-place="almaty"] text').textContent();
  check(office === words.office, `Almaty is labelled "${office}" in ${lang}`);
  const labels = await labelOverlaps(page);
  check(labels.overlaps.length === 0, `map labels overlap in ${lang}: ${labels.overlaps.slice(0, 5).join('; ')}`);
  const n = { en: 11, ru: 12, zh: 13 }[lang];
  summary.screenshots.push(await shoot(page, `${n}-${lang}-map`));
  const missing = await page.evaluate(async (code) => {
    const en = (await import('/assets/i18n/en.js')).default;
    const other = (await import(`/assets/i18n/${code}.js`)).default;
    return Object.keys(en).filter((k) => !(k in other));
  }, lang);
  check(missing.length === 0, `${lang}.js lacks ${missing.join(', ')}`);
  for (const [view, name] of [['transits', 'transits'], ['alerts', 'alert-desk'], ['post', 'border-post'], ['performance', 'corridor-performance']]) {
    await page.locator(`#nav a[data-view="${view}"]`).click();
    await page.locator(`#nav a[data-view="${view}"][aria-current="page"]`).waitFor({ timeout: STEP_MS });
    await page.locator('main .view h1').waitFor({ timeout: STEP_MS });
    const loading = (await page.evaluate(async () => (await import('/assets/i18n/' + document.documentElement.lang + '.js')).default.loading));
    await page.waitForFunction((word) => !document.querySelector('main')?.textContent.includes(word), loading, { timeout: STEP_MS });
    const text = await page.locator('main').textContent();
    check(!/\b\d{1,2}:\d\d\s?(AM|PM)\b/i.test(text), `${view} shows a 12-hour time in ${lang}`);
    if (lang !== 'en') {
      const english = ['Loading', 'Something went wrong', 'Any', 'None'].filter((w) => text.includes(w));
      check(!english.length, `${view} in ${lang} shows English: ${english.join(', ')}`);
    }
    summary.screenshots.push(await shoot(page, `${n}-${lang}-${name}`));
  }
}

async function run() {
  mkdirSync(shots, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'caravan-chromium-'));
  // A fresh profile each run; Playwright passes it to Chromium as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1366, height: 768 },
    locale: 'en-GB',
  });
  const summary = { screenshots: [], foreign_requests: [], page_errors: [] };
  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => summary.page_errors.push(String(e)));
    page.on('request', (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith('data:')) summary.foreign_requests.push(r.url());
    });

    summary.sign_in = await signIn(page);
    await page.locator('#map .country').first().waitFor({ timeout: STEP_MS });
    await checkMapFurniture(page, summary);
    check((await marker(page).count()) === 0, 'the vehicle is on the map before any fix was published');
    console.log('READY');

    check((await nextLine()) === 'GO', 'expected GO');
    await marker(page).waitFor({ timeout: STEP_MS });
    const first = await position(page);
    check(((await marker(page).textContent()) || '').includes(plate), 'the marker is not labelled with the plate');
    console.log(`SEEN ${first.join(' ')}`);

    check((await nextLine()) === 'GO', 'expected GO');
    await page.waitForFunction(
      ([id, x, y]) => {
        const el = document.querySelector(`#map g.vehicle[data-device-id="${id}"]`);
        return el && (el.dataset.x !== x || el.dataset.y !== y);
      },
      [deviceId, ...first],
      { timeout: STEP_MS },
    );
    const second = await position(page);
    console.log(`MOVED ${second.join(' ')}`);

    const status = await marker(page).getAttribute('data-status');
    const statusWord = await marker(page).locator('.status-word').textContent();
    check(statusWord && statusWord.trim().length > 0, 'the marker has no status word');
    summary.status = `${status} (${statusWord})`;
    summary.screenshots.push(await shoot(page, '01-map'));

    const listed = (await page.locator(`#vehicle-list button[data-device-id="${deviceId}"] .sub`).textContent()) || '';
    await marker(page).focus();
    await page.keyboard.press('Enter');
    await page.locator('#detail h2').waitFor({ timeout: STEP_MS });
    check(((await page.locator('#detail h2').textContent()) || '').includes(plate), 'the detail does not name the vehicle');
    await page.locator('#detail', { hasText: 'Track:' }).waitFor({ timeout: STEP_MS });
    await checkDetailBesideTheMapOnTheTruck(page, listed, summary);
    summary.screenshots.push(await shoot(page, '02-map-vehicle-detail'));
    await page.locator('#detail button', { hasText: 'All vehicles' }).click();

    for (const lang of ['en', 'ru', 'zh']) await tourIn(page, lang, summary);

    await page.locator('#nav a[data-view="performance"]').click();
    await page.selectOption('.period-picker select[name="preset"]', '7');
    await page.locator('.period-picker button[type="submit"]').click();
    await page.locator('#period-shown').waitFor({ timeout: STEP_MS });
    const shownPeriod = await page.locator('#period-shown').textContent();
    summary.period_7_days = shownPeriod;
    check(/\bUTC\b|GMT/.test(shownPeriod), `the period is shown without its zone: ${shownPeriod}`);
    summary.screenshots.push(await shoot(page, '19-corridor-performance-7-days'));

    await page.locator('#nav a[data-view="map"]').click();
    await page.setViewportSize({ width: 1024, height: 768 });
    await marker(page).waitFor({ timeout: STEP_MS });
    summary.screenshots.push(await shoot(page, '09-map-tablet-landscape'));
    await page.setViewportSize({ width: 768, height: 1024 });
    summary.screenshots.push(await shoot(page, '10-map-tablet-portrait'));

    check(summary.foreign_requests.length === 0, `requests left the server: ${summary.foreign_requests.join(', ')}`);
    check(summary.page_errors.length === 0, `page errors: ${summary.page_errors.join(' | ')}`);
    console.log(`DONE ${JSON.stringify(summary)}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

run().then(() => process.exit(0)).catch((error) => {
  console.log(`FAIL ${String(error.message || error).split('\n')[0]}`);
  console.error(error);
  process.exit(1);
});

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

    await marker(page).focus();
    await page.keyboard.press('Enter');
    await page.locator('#detail h2').waitFor({ timeout: STEP_MS });
    check(((await page.locator('#detail h2').textContent()) || '').includes(plate), 'the detail does not name the vehicle');
    await page.locator('#detail', { hasText: 'Track:' }).waitFor({ timeout: STEP_MS });
    summary.screenshots.push(await shoot(page, '02-map-vehicle-detail'));

    for (const [view, name] of [['transits', '03-transits'], ['alerts', '04-alert-desk'], ['post', '05-border-post'], ['performance', '06-corridor-performance']]) {
      await page.locator(`#nav a[data-view="${view}"]`).click();
      await page.locator(`#nav a[data-view="${view}"][aria-current="page"]`).waitFor({ timeout: STEP_MS });
      await page.locator('main .view h1').waitFor({ timeout: STEP_MS });
      await page.waitForFunction(() => !document.querySelector('main')?.textContent.includes('Loading…'), null, { timeout: STEP_MS });
      summary.screenshots.push(await shoot(page, name));
    }

    await page.locator('#nav a[data-view="map"]').click();
    await page.selectOption('#lang', 'ru');
    await page.locator('#nav a[data-view="map"]', { hasText: 'Карта' }).waitFor({ timeout: STEP_MS });
    await page.locator('.legend', { hasText: 'В движении' }).waitFor({ timeout: STEP_MS });
    check((await page.getAttribute('html', 'lang')) === 'ru', 'html lang is not ru');
    await marker(page).waitFor({ timeout: STEP_MS });
    summary.screenshots.push(await shoot(page, '07-map-russian'));
    summary.missing_russian = await page.evaluate(async () => {
      const en = (await import('/assets/i18n/en.js')).default;
      const ru = (await import('/assets/i18n/ru.js')).default;
      return Object.keys(en).filter((k) => !(k in ru));
    });
    check(summary.missing_russian.length === 0, `ru.js lacks ${summary.missing_russian.join(', ')}`);
    await page.locator('#nav a[data-view="alerts"]').click();
    await page.locator('main .view h1', { hasText: 'Тревоги' }).waitFor({ timeout: STEP_MS });
    summary.screenshots.push(await shoot(page, '08-alert-desk-russian'));

    await page.selectOption('#lang', 'en');
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

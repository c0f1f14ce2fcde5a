// Debian's Chromium driven by playwright-core, for the dashboard tests.
//
// One browser per test file, a fresh profile (temp user data dir), and a
// page helper that records every console error, page error, CSP
// violation and failed response, so each test can assert that a page
// loaded clean. Screenshots go to build/e2e-screenshots/.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
export const SHOTS = path.join(ROOT, 'build', 'e2e-screenshots');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 375, height: 760 };

/** Launches Chromium with its own profile; close() removes it. */
export async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flm-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--disable-extensions', '--disable-default-apps', '--mute-audio'],
    timeout: 60000,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A new tab that records problems. Every console error, uncaught page
 * error and securitypolicyviolation is a problem, except a console line
 * "Failed to load resource: ... status of N" for a response the test
 * declared expected with page.expectHttpError(status, pathRegExp) — the
 * browser logs each API answer of 4xx that way, even the ones the page
 * handles (such as 404 from /api/sync/key before a key exists).
 */
export async function openPage(context) {
  const page = await context.newPage();
  const problems = [];
  const expected = [];
  const failedResponses = [];
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      // eslint-disable-next-line no-console
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  page.on('response', (res) => {
    if (res.status() >= 400) failedResponses.push({ status: res.status(), url: res.url() });
  });
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const m = /^Failed to load resource: the server responded with a status of (\d+)/.exec(text);
    if (m) {
      const url = msg.location()?.url || '';
      const status = Number(m[1]);
      const ok = expected.some((e) => e.status === status && e.re.test(new URL(url, 'http://x').pathname));
      if (ok) return;
      problems.push(`console: ${text} (${url})`);
      return;
    }
    problems.push(`console: ${text}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.problems = problems;
  page.failedResponses = failedResponses;
  page.expectHttpError = (status, re) => expected.push({ status, re });
  /** Asserts that nothing went wrong on this tab so far, then forgets it. */
  page.assertClean = (what = page.url()) => {
    const list = problems.splice(0);
    assert.deepEqual(list, [], `problems on ${what}`);
  };
  return page;
}

/** Waits until the page has rendered its data (no aria-busy skeleton). */
export async function settled(page) {
  await page.waitForLoadState('load');
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));
}

/** Screenshots the page at 1280 and 375 px wide (full page), then back. */
export async function screenshots(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const before = page.viewportSize();
  for (const vp of [DESKTOP, PHONE]) {
    await page.setViewportSize(vp);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    // nothing may stick out sideways at either width
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${name} at ${vp.width} px scrolls sideways by ${overflow} px`);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${vp.width}.png`), fullPage: true, animations: 'disabled' });
  }
  await page.setViewportSize(before || DESKTOP);
}

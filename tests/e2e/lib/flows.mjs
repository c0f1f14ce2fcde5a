// Steps the dashboard tests share: signing in through the login page and
// polling the device token the way a desktop client does.

import assert from 'node:assert/strict';
import { settled } from './browser.mjs';

/** Fills the login form (sign-in tab) and waits for the next page. */
export async function signInThroughPage(page, email, password) {
  await page.waitForSelector('#auth-form');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== '/login'),
    page.click('#submit'),
  ]);
  await settled(page);
}

/**
 * Polls POST /api/sync/token as a desktop client does: every `interval`
 * seconds (the protocol's pace, raised by slow_down), until it answers
 * something other than authorization_pending or the deadline passes.
 */
export async function pollToken(anon, tempToken, interval, deadlineMs = 30000) {
  const t0 = Date.now();
  let wait = interval;
  for (;;) {
    const r = await anon.post('/api/sync/token', { temp_token: tempToken });
    if (r.error === 'slow_down') wait = r.data?.interval || wait + 5;
    else if (r.error !== 'authorization_pending') return r;
    assert.ok(Date.now() - t0 < deadlineMs, `no token after ${deadlineMs} ms: ${r.describe()}`);
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
}

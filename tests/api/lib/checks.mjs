// Checks run at the end of every test file, over everything the file did.

import assert from 'node:assert/strict';
import { test, sleep } from './server.mjs';

function mask(s) {
  return s.length <= 12 ? s : `${s.slice(0, 10)}…(${s.length} chars)`;
}

/**
 * Registers the closing tests of a file. servers(): the Server objects the
 * file used (all of them, including stopped ones).
 */
export function finalChecks(servers) {
  test('every response carried the common headers and a valid envelope', () => {
    const all = servers().filter(Boolean).flatMap((s) => s.violations);
    const uniq = [...new Set(all)];
    assert.deepEqual(uniq.slice(0, 25), [],
      `${uniq.length} response(s) broke the common rules (first 25 shown)`);
  });

  test('the request log never contains a token, cookie value or password', async () => {
    await sleep(100); // let the last log lines arrive
    const leaks = [];
    let lines = 0;
    for (const s of servers().filter(Boolean)) {
      lines += s.logLines().length;
      for (const secret of s.secrets) {
        if (s.stderr.includes(secret)) {
          const line = s.logLines().find((l) => l.includes(secret)) || '';
          leaks.push(`${mask(secret)} in: ${line.replaceAll(secret, '<SECRET>').slice(0, 300)}`);
        }
      }
    }
    assert.ok(lines > 1, 'the server logged nothing (expected one line per request)');
    assert.deepEqual(leaks, [], 'secrets found in the request log');
  });
}

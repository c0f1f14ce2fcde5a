// A fake Cloudflare Turnstile siteverify endpoint for the tests.
// POST application/x-www-form-urlencoded {secret, response, remoteip}
// → {"success": bool, "error-codes": [...]}; success only when the secret
// matches and response is the known good token.

import http from 'node:http';

export async function startFakeTurnstile({ secret, goodToken }) {
  const calls = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const call = {
        method: req.method, url: req.url,
        contentType: req.headers['content-type'] || '',
        secret: form.get('secret'), response: form.get('response'), remoteip: form.get('remoteip'),
        body,
      };
      calls.push(call);
      const errors = [];
      if (req.method !== 'POST') errors.push('bad-request');
      if (!/^application\/x-www-form-urlencoded/i.test(call.contentType)) errors.push('bad-request');
      if (call.secret !== secret) errors.push(call.secret ? 'invalid-input-secret' : 'missing-input-secret');
      if (call.response !== goodToken) errors.push(call.response ? 'invalid-input-response' : 'missing-input-response');
      const out = { success: errors.length === 0, 'error-codes': errors };
      if (out.success) { out.challenge_ts = new Date().toISOString(); out.hostname = 'localhost'; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/siteverify`;
  return {
    url, calls,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

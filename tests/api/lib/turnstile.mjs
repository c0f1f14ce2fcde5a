// A fake Cloudflare Turnstile siteverify endpoint for the tests.
// POST application/x-www-form-urlencoded {secret, response, remoteip}
// → {"success": bool, "error-codes": [...]}; success only when the secret
// matches and response is the known good token.
//
// GET /api.js is a tiny stand-in for the widget script (scriptUrl, for
// TURNSTILE_SCRIPT_URL): window.turnstile.render(container, {sitekey,
// callback}) draws two buttons, "Verify" (calls back with the good token)
// and "Fail check" (with a bad one); reset() forgets the token.

import http from 'node:http';

export async function startFakeTurnstile({ secret, goodToken }) {
  const calls = [];
  const scriptCalls = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url.startsWith('/api.js')) {
      scriptCalls.push(req.url);
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(fakeWidget(goodToken));
      return;
    }
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
  const origin = `http://127.0.0.1:${server.address().port}`;
  const url = `${origin}/siteverify`;
  return {
    url, calls, origin, scriptUrl: `${origin}/api.js?render=explicit`, scriptCalls,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

function fakeWidget(goodToken) {
  return `(() => {
  const widgets = new Map();
  let next = 1;
  window.turnstile = {
    render(container, opts) {
      const id = 'fake-' + next++;
      const box = document.createElement('div');
      box.className = 'fake-turnstile';
      box.dataset.sitekey = opts.sitekey;
      for (const [label, token] of [['Verify', ${JSON.stringify(goodToken)}], ['Fail check', 'bad-token-from-widget']]) {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = label;
        b.className = 'btn btn-outline btn-sm';
        b.addEventListener('click', () => opts.callback(token));
        box.appendChild(b);
      }
      container.appendChild(box);
      widgets.set(id, box);
      return id;
    },
    reset(id) { widgets.get(id)?.setAttribute('data-reset', String(Date.now())); },
    remove(id) { widgets.get(id)?.remove(); widgets.delete(id); },
  };
})();
`;
}

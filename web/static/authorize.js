// /sync/authorize?code=XXXX-XXXX: shows what asks for access and lets the
// signed-in user authorize or deny it. The server sends visitors without a
// session to /login first; the code holds no secret (the polling token
// never leaves the desktop).
import { get, post, describeError, toLogin } from './api.js';
import { el, icon, mount, toast, formatDate, formatRelative } from './ui.js';

const card = document.getElementById('authorize-card');
const CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';

/** "bcdf ghjk" → "BCDF-GHJK", or null when it cannot be a code. */
export function normalizeCode(raw) {
  const s = String(raw || '').toUpperCase().replace(/[\s-]/g, '');
  if (s.length !== 8) return null;
  for (const ch of s) if (!CODE_ALPHABET.includes(ch)) return null;
  return `${s.slice(0, 4)}-${s.slice(4)}`;
}

function done(node) {
  card.removeAttribute('aria-busy');
  mount(card, node);
  const h = card.querySelector('h1');
  if (h) {
    h.tabIndex = -1;
    h.focus();
  }
}

function resultView(kind, title, text, extra) {
  const iconName = kind === 'ok' ? 'check' : kind === 'danger' ? 'x' : 'info';
  return el('div', { class: 'result' },
    el('div', { class: `result-icon ${kind === 'danger' ? 'result-icon-danger' : kind === 'muted' ? 'result-icon-muted' : ''}` }, icon(iconName, 28)),
    el('h1', { text: title }),
    el('p', { text }),
    extra || null);
}

/** The form to type a code by hand (also shown under a bad code). */
function codeForm(message, value = '') {
  const input = el('input', {
    class: 'input input-code', id: 'code-input', name: 'code', autocomplete: 'off', autocapitalize: 'characters',
    spellcheck: 'false', maxlength: '9', placeholder: 'XXXX-XXXX', value, 'aria-describedby': 'code-hint code-error',
  });
  const error = el('div', { class: 'field-error', id: 'code-error' });
  const form = el('form', { class: 'form', novalidate: true },
    el('div', { class: 'field' },
      el('label', { for: 'code-input', text: 'Code shown on your device' }),
      input,
      el('div', { class: 'field-hint', id: 'code-hint', text: 'Eight letters, as Flamingo shows them, like BCDF-GHJK.' }),
      error),
    el('button', { class: 'btn btn-block', type: 'submit', text: 'Continue' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const code = normalizeCode(input.value);
    if (!code) {
      error.textContent = 'That is not a device code. It has eight letters, like BCDF-GHJK.';
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    window.location.assign(`/sync/authorize?code=${encodeURIComponent(code)}`);
  });
  return el('div', {},
    el('div', { class: 'card-head' },
      el('div', {},
        el('h1', { text: 'Connect a device' }),
        el('p', { text: 'Type the code that Flamingo shows on the device you want to connect.' }))),
    el('div', { class: 'card-body form' },
      message ? el('div', { class: 'alert alert-error', role: 'alert' }, icon('alert'), el('div', {}, message)) : null,
      form));
}

function row(label, value) {
  return [el('dt', { text: label }), el('dd', {}, value)];
}

function requestView(req) {
  const authorizeBtn = el('button', { class: 'btn', type: 'button', id: 'authorize' }, icon('check'), 'Authorize');
  const denyBtn = el('button', { class: 'btn btn-outline', type: 'button', id: 'deny' }, 'Deny');
  const status = el('div', { class: 'alert alert-error hidden', role: 'alert', id: 'decide-error' });
  const buttons = [authorizeBtn, denyBtn];

  const setBusy = (busy, which) => {
    for (const b of buttons) b.disabled = busy;
    if (busy) which.prepend(el('span', { class: 'spinner', 'aria-hidden': 'true' }));
    else for (const s of card.querySelectorAll('.spinner')) s.remove();
  };

  const decide = async (approve) => {
    setBusy(true, approve ? authorizeBtn : denyBtn);
    status.classList.add('hidden');
    const r = await post(approve ? '/api/sync/claim' : '/api/sync/deny', { user_code: req.user_code });
    if (r.ok) {
      if (approve) {
        try { sessionStorage.setItem('flm-connected-device', req.device_name || ''); } catch { /* private mode */ }
        window.location.assign('/sync/complete');
      } else {
        done(resultView('danger', 'Request denied',
          `${req.device_name || 'The device'} was not given access. If you did not start this, nothing else needs doing.`,
          el('a', { class: 'btn btn-outline', href: '/dashboard' }, 'Go to your dashboard')));
      }
      return;
    }
    setBusy(false);
    if (r.status === 401) { toLogin(); return; }
    if (r.error === 'expired_token') {
      done(resultView('muted', 'This request has expired', 'Start connecting again on your device to get a new code.'));
      return;
    }
    if (r.error === 'already_claimed') {
      done(resultView('muted', 'Already answered', 'This request was already authorized or denied.'));
      return;
    }
    if (r.error === 'not_found') {
      done(codeForm('This code is no longer valid. Start again on your device.'));
      return;
    }
    status.textContent = describeError(r);
    status.classList.remove('hidden');
    toast(approve ? 'Could not authorize the device' : 'Could not deny the request', describeError(r), 'error');
  };
  authorizeBtn.addEventListener('click', () => decide(true));
  denyBtn.addEventListener('click', () => decide(false));

  return el('div', {},
    el('div', { class: 'card-head' },
      el('div', {},
        el('h1', { text: 'Authorize a new device?' }),
        el('p', { text: 'A device is asking to sync your Flamingo data.' }))),
    el('div', { class: 'card-body form' },
      el('div', { class: 'code-display' },
        el('span', { class: 'muted small', text: 'Code shown on the device' }),
        el('span', { class: 'code', id: 'user-code', text: req.user_code }),
        el('span', { class: 'muted small', text: 'Check that Flamingo shows exactly this code.' })),
      el('dl', { class: 'facts facts-wide', id: 'request-facts' },
        row('Device', el('strong', { id: 'device-name', text: req.device_name || 'Unnamed device' })),
        row('Platform', req.platform || 'Not given'),
        row('App version', req.app_version || 'Not given'),
        row('IP address', el('span', { class: 'mono', text: req.ip || 'Unknown' })),
        row('Requested', el('time', { datetime: req.created_at, title: formatDate(req.created_at) }, `${formatRelative(req.created_at)} (${formatDate(req.created_at)})`))),
      el('div', { class: 'alert alert-warn', role: 'note' },
        icon('alert'),
        el('div', {},
          el('strong', { text: 'Only approve a device that is in front of you.' }),
          'If someone sent you this link or asked you for a code, deny it: approving gives that device your synced data.')),
      status,
      el('div', { class: 'button-row' }, denyBtn, authorizeBtn)));
}

async function start() {
  const session = await get('/api/auth/session');
  if (!session.ok && session.status === 401) { toLogin(); return; }
  if (session.ok) document.getElementById('signed-in').textContent = `Signed in as ${session.data.user.email}`;

  const raw = new URLSearchParams(window.location.search).get('code');
  if (raw === null || raw.trim() === '') { done(codeForm()); return; }
  const code = normalizeCode(raw);
  if (!code) { done(codeForm('That is not a device code. Check it and type it again.', raw.slice(0, 9))); return; }

  const r = await get(`/api/sync/request?code=${encodeURIComponent(code)}`);
  if (!r.ok) {
    if (r.status === 401) { toLogin(); return; }
    if (r.status === 404) { done(codeForm('This code is unknown or has expired. Start connecting again on your device, or check the code.', code)); return; }
    done(codeForm(describeError(r), code));
    return;
  }
  const req = r.data;
  if (req.status === 'expired') {
    done(resultView('muted', 'This request has expired', 'Codes work for a few minutes only. Start connecting again on your device to get a new one.'));
  } else if (req.status === 'claimed') {
    done(resultView('ok', 'Already authorized', `${req.device_name || 'This device'} is already connected.`,
      el('a', { class: 'btn btn-outline', href: '/dashboard/devices' }, 'View your devices')));
  } else if (req.status === 'denied') {
    done(resultView('danger', 'Request denied', 'This request was denied. Start again on your device if that was a mistake.'));
  } else {
    done(requestView(req));
  }
}

start();

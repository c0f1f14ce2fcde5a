// /dashboard/security: encryption facts, change password, and the audit
// log, paged back with ?before=.
import { get, put, describeError, toLogin } from './api.js';
import { el, icon, mount, toast, timeEl, formatDate, eventLabel, WARNING_EVENTS, skeletonCard, loadFailed, getKey } from './ui.js';

const PAGE = 20;

function pageHead() {
  return el('div', { class: 'page-head' },
    el('h1', { text: 'Security' }),
    el('p', { text: 'How your data is protected, your password, and everything that happened on your account.' }));
}

function kdfText(kdf) {
  if (!kdf || typeof kdf !== 'object') return 'Not recorded';
  const name = kdf.name || kdf.algorithm || kdf.alg || kdf.type || 'Custom';
  const parts = [];
  for (const k of ['t', 'iterations', 'opslimit', 'm', 'memory', 'memlimit', 'p', 'parallelism']) {
    if (typeof kdf[k] === 'number') parts.push(`${k}=${kdf[k]}`);
  }
  return parts.length ? `${name} (${parts.join(', ')})` : String(name);
}

function encryptionCard(key) {
  const facts = key
    ? [
      el('dt', { text: 'Key version' }), el('dd', { id: 'key-version', text: `v${key.version}` }),
      el('dt', { text: 'Created' }), el('dd', { title: formatDate(key.created_at) }, timeEl(key.created_at)),
      el('dt', { text: 'Key derivation' }), el('dd', { text: kdfText(key.kdf) }),
    ]
    : [el('dt', { text: 'Key version' }), el('dd', { id: 'key-version', text: 'No key yet' })];
  return el('section', { class: 'card', 'aria-labelledby': 'enc-title' },
    el('div', { class: 'card-head' },
      el('div', {},
        el('h2', { id: 'enc-title', text: 'Encryption' }),
        el('p', { text: 'End-to-end: your devices encrypt before they upload.' })),
      el('span', { class: 'badge badge-on' }, icon('lock', 12), 'Encrypted')),
    el('div', { class: 'card-body form' },
      el('dl', { class: 'facts' }, facts),
      el('div', { class: 'alert alert-ok', role: 'note' },
        icon('shield'),
        el('div', {},
          el('strong', { text: 'The server cannot read your data.' }),
          'It stores only ciphertext and a key that your sync passphrase wraps. Neither your passphrase nor the unwrapped key ever reaches it.'))));
}

function passwordCard() {
  const field = (id, label, autocomplete) => el('div', { class: 'field' },
    el('label', { for: id, text: label }),
    el('input', { class: 'input', id, name: id, type: 'password', autocomplete, 'aria-describedby': `${id}-error` }),
    el('div', { class: 'field-error', id: `${id}-error` }));
  const form = el('form', { class: 'form', id: 'password-form', novalidate: true },
    field('current-password', 'Current password', 'current-password'),
    field('new-password', 'New password', 'new-password'),
    field('confirm-password', 'Confirm new password', 'new-password'),
    el('div', { class: 'alert alert-error hidden', role: 'alert', id: 'password-alert' }),
    el('div', {}, el('button', { class: 'btn', type: 'submit', id: 'password-submit', text: 'Change password' })));
  const $ = (id) => form.querySelector(`#${id}`);
  const setErr = (id, msg) => {
    $(`${id}-error`).textContent = msg || '';
    if (msg) $(id).setAttribute('aria-invalid', 'true');
    else $(id).removeAttribute('aria-invalid');
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const cur = $('current-password').value;
    const next = $('new-password').value;
    const conf = $('confirm-password').value;
    for (const id of ['current-password', 'new-password', 'confirm-password']) setErr(id, '');
    $('password-alert').classList.add('hidden');
    let first = null;
    const fail = (id, msg) => { setErr(id, msg); first = first || id; };
    if (!cur) fail('current-password', 'Enter your current password.');
    if (next.length < 8) fail('new-password', 'Use at least 8 characters.');
    else if (new TextEncoder().encode(next).length > 1024) fail('new-password', 'This password is too long.');
    else if (next === cur) fail('new-password', 'Choose a password different from the current one.');
    if (!first && conf !== next) fail('confirm-password', 'The passwords do not match.');
    if (first) { $(first).focus(); return; }
    const btn = $('password-submit');
    btn.disabled = true;
    btn.textContent = 'Changing…';
    const r = await put('/api/auth/password', { current_password: cur, new_password: next });
    btn.disabled = false;
    btn.textContent = 'Change password';
    if (r.ok) {
      form.reset();
      toast('Password changed', 'Your other browser sessions were signed out.', 'success');
      return;
    }
    if (r.error === 'invalid_credentials') {
      setErr('current-password', 'The current password is not right.');
      $('current-password').focus();
      return;
    }
    if (r.status === 401) { toLogin(); return; }
    $('password-alert').textContent = describeError(r);
    $('password-alert').classList.remove('hidden');
    toast('Could not change the password', describeError(r), 'error');
  });
  return el('section', { class: 'card', 'aria-labelledby': 'pw-title' },
    el('div', { class: 'card-head' },
      el('div', {},
        el('h2', { id: 'pw-title', text: 'Change password' }),
        el('p', { text: 'For signing in here. Your sync passphrase is separate and stays on your devices.' }))),
    el('div', { class: 'card-body' }, form));
}

/** "Chrome on Linux" from a User-Agent; the start of it otherwise. */
function uaSummary(ua) {
  const browsers = [['Edg/', 'Edge'], ['Firefox/', 'Firefox'], ['HeadlessChrome/', 'Headless Chrome'], ['Chrome/', 'Chrome'],
    ['Safari/', 'Safari'], ['curl/', 'curl'], ['flamingo', 'Flamingo']];
  const systems = [['Android', 'Android'], ['iPhone', 'iOS'], ['iPad', 'iPadOS'], ['Windows', 'Windows'], ['Mac OS X', 'macOS'],
    ['CrOS', 'ChromeOS'], ['Linux', 'Linux']];
  const b = browsers.find(([k]) => ua.toLowerCase().includes(k.toLowerCase()));
  const s = systems.find(([k]) => ua.includes(k));
  if (b && s) return `${b[1]} on ${s[1]}`;
  if (b) return b[1];
  return ua.length > 60 ? `${ua.slice(0, 60)}…` : ua;
}

function auditRow(e, names) {
  const warn = WARNING_EVENTS.has(e.event_type);
  return el('tr', { 'data-event': e.event_type },
    el('td', { class: 'cell-main' },
      el('div', { class: 'cell-title' },
        warn ? el('span', { class: 'badge badge-danger' }, icon('alert', 12), eventLabel(e.event_type)) : eventLabel(e.event_type)),
      e.user_agent ? el('div', { class: 'cell-sub', title: e.user_agent, text: uaSummary(e.user_agent) }) : null),
    el('td', { 'data-label': 'Device', text: e.device_id ? (names.get(e.device_id) || 'A removed device') : '—' }),
    el('td', { 'data-label': 'IP', class: 'mono small', text: e.ip || '—' }),
    el('td', { 'data-label': 'When' }, timeEl(e.created_at)));
}

function auditCard(first, names) {
  const tbody = el('tbody', {}, first.map((e) => auditRow(e, names)));
  const more = el('button', { class: 'btn btn-outline btn-sm', type: 'button', id: 'audit-more', text: 'Show older events' });
  const foot = el('div', { class: 'card-foot' }, more);
  let last = first.length ? first[first.length - 1].id : null;
  if (first.length < PAGE) foot.classList.add('hidden');
  more.addEventListener('click', async () => {
    more.disabled = true;
    const r = await get(`/api/audit?limit=${PAGE}&before=${encodeURIComponent(last)}`);
    more.disabled = false;
    if (!r.ok) {
      if (r.status === 401) { toLogin(); return; }
      toast('Could not load older events', describeError(r), 'error');
      return;
    }
    const rows = r.data.events.map((e) => auditRow(e, names));
    for (const row of rows) tbody.appendChild(row);
    if (rows.length) {
      last = r.data.events[r.data.events.length - 1].id;
      rows[0].tabIndex = -1;
      rows[0].focus();
    }
    if (r.data.events.length < PAGE) {
      foot.classList.add('hidden');
      tbody.lastElementChild?.setAttribute('data-last', 'true');
    }
  });
  return el('section', { class: 'card', 'aria-labelledby': 'audit-title' },
    el('div', { class: 'card-head' },
      el('div', {},
        el('h2', { id: 'audit-title', text: 'Audit log' }),
        el('p', { text: 'Sign-ins, devices, keys and settings, newest first.' }))),
    el('div', { class: 'card-body-flush' },
      first.length
        ? el('div', { class: 'table-wrap' },
          el('table', { class: 'table table-stack', id: 'audit-table' },
            el('caption', { class: 'visually-hidden', text: 'Audit log' }),
            el('thead', {}, el('tr', {},
              el('th', { scope: 'col', text: 'Event' }),
              el('th', { scope: 'col', text: 'Device' }),
              el('th', { scope: 'col', text: 'IP' }),
              el('th', { scope: 'col', text: 'When' }))),
            tbody))
        : el('div', { class: 'empty' }, icon('activity', 24), el('p', { text: 'No events yet.' }))),
    foot);
}

export async function renderSecurity(container) {
  mount(container, pageHead(), el('div', { class: 'grid grid-2' }, skeletonCard(4), skeletonCard(4)), skeletonCard(6));
  const [key, audit, devices] = await Promise.all([getKey(get), get(`/api/audit?limit=${PAGE}`), get('/api/devices')]);
  for (const [r, what] of [[key, 'your key'], [audit, 'the audit log'], [devices, 'your devices']]) {
    if (!r.ok) { loadFailed(container, r, what); return; }
  }
  const names = new Map(devices.data.devices.map((d) => [d.id, d.name]));
  mount(container, pageHead(),
    el('div', { class: 'grid grid-2' }, encryptionCard(key.key), passwordCard()),
    auditCard(audit.data.events, names));
}

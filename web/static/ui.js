import { describeError, toLogin } from './api.js';

// Small DOM helpers shared by the pages: elements (text only, never HTML
// strings), icons, toasts, confirmation dialogs, skeletons, formatting.

/**
 * el('div', {class: 'card', onclick: fn, 'aria-label': 'x'}, child, ...)
 * Children: nodes, strings (as text), arrays, null/false (skipped).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces node's children. */
export function mount(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';

// 24x24 stroke icons, drawn for this dashboard.
const ICONS = {
  overview: ['M3 3h7v9H3z', 'M14 3h7v5h-7z', 'M14 12h7v9h-7z', 'M3 16h7v5H3z'],
  sync: ['M21 12a9 9 0 0 1-15.5 6.2L3 16', 'M3 21v-5h5', 'M3 12a9 9 0 0 1 15.5-6.2L21 8', 'M21 3v5h-5'],
  devices: ['M4 5h16v10H4z', 'M2 19h20', 'M9 15l-1 4', 'M15 15l1 4'],
  shield: ['M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z', 'M9 12l2 2 4-4'],
  lock: ['M5 11h14v10H5z', 'M8 11V7a4 4 0 0 1 8 0v4'],
  key: ['M7.5 11a4.5 4.5 0 1 0 0 9 4.5 4.5 0 0 0 0-9z', 'M10.7 12.3L20 3', 'M16.5 6.5l3 3', 'M14 9l2 2'],
  history: ['M3 12a9 9 0 1 0 3-6.7L3 8', 'M3 3v5h5', 'M12 7v5l3 2'],
  environment: ['M12 3l9 5-9 5-9-5z', 'M3 13l9 5 9-5', 'M3 17l9 5 9-5'],
  secret: ['M5 11h14v10H5z', 'M8 11V7a4 4 0 0 1 8 0v4', 'M12 15v2'],
  collection: ['M3 6h6l2 2h10v11H3z'],
  setting: ['M4 7h10', 'M18 7h2', 'M4 17h4', 'M12 17h8', 'M16 5v4', 'M10 15v4'],
  check: ['M5 12l5 5 9-10'],
  x: ['M6 6l12 12', 'M18 6L6 18'],
  alert: ['M12 3l10 18H2z', 'M12 10v4', 'M12 17.5h.01'],
  info: ['M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z', 'M12 11v6', 'M12 7.5h.01'],
  logout: ['M9 4H5v16h4', 'M16 16l4-4-4-4', 'M20 12H9'],
  menu: ['M4 6h16', 'M4 12h16', 'M4 18h16'],
  activity: ['M3 12h4l3-8 4 16 3-8h4'],
  data: ['M12 3c5 0 8 1.3 8 3s-3 3-8 3-8-1.3-8-3 3-3 8-3z', 'M4 6v12c0 1.7 3 3 8 3s8-1.3 8-3V6', 'M4 12c0 1.7 3 3 8 3s8-1.3 8-3'],
  clock: ['M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z', 'M12 7v5l3 2'],
};

/** An inline SVG icon (decorative: hidden from screen readers). */
export function icon(name, size = 16) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of ICONS[name] || []) {
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  return svg;
}

// ---- toasts ----------------------------------------------------------------

function toastRegion() {
  let region = document.getElementById('toasts');
  if (!region) {
    region = el('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(region);
  }
  return region;
}

/** Shows a toast. kind: 'success' | 'error' | 'info'. */
export function toast(title, message = '', kind = 'info') {
  const region = toastRegion();
  const node = el('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : null, 'data-kind': kind },
    icon(kind === 'error' ? 'alert' : kind === 'success' ? 'check' : 'info'),
    el('div', { class: 'toast-body' },
      el('div', { class: 'toast-title', text: title }),
      message ? el('div', { class: 'toast-msg', text: message }) : null),
    el('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss', onclick: () => node.remove() }, icon('x', 14)));
  region.appendChild(node);
  while (region.children.length > 4) region.firstChild.remove();
  setTimeout(() => node.remove(), kind === 'error' ? 8000 : 4000);
  return node;
}

// ---- dialogs -----------------------------------------------------------------

/**
 * A modal confirmation (a native <dialog>: focus stays inside, Escape
 * cancels). Resolves true when confirmed.
 */
export function confirmDialog({ title, message, confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const cancelBtn = el('button', { type: 'button', class: 'btn btn-outline', text: 'Cancel' });
    const okBtn = el('button', { type: 'button', class: `btn ${danger ? 'btn-danger' : ''}`, text: confirm });
    const dlg = el('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      el('div', { class: 'dialog-body' },
        el('h2', { id: titleId, text: title }),
        el('p', { text: message })),
      el('div', { class: 'dialog-actions' }, cancelBtn, okBtn));
    let answered = false;
    const done = (v) => {
      if (answered) return;
      answered = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    cancelBtn.addEventListener('click', () => done(false));
    okBtn.addEventListener('click', () => done(true));
    dlg.addEventListener('cancel', () => done(false));
    dlg.addEventListener('close', () => done(false));
    document.body.appendChild(dlg);
    dlg.showModal();
    cancelBtn.focus();
  });
}

// ---- skeletons -----------------------------------------------------------

export function skeleton(cls) {
  return el('span', { class: `skeleton ${cls}`, 'aria-hidden': 'true' });
}

/** A card-shaped placeholder while data loads. */
export function skeletonCard(lines = 3) {
  const rows = [skeleton('sk-title')];
  for (let i = 0; i < lines; i++) rows.push(skeleton(i % 2 ? 'sk-line-short' : 'sk-line'));
  return el('div', { class: 'card' }, el('div', { class: 'sk-stack' }, rows));
}

// ---- formatting ------------------------------------------------------------

export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatRelative(iso) {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  if (d < 30) return `${d} day${d === 1 ? '' : 's'} ago`;
  return formatDate(iso);
}

export function formatDate(iso) {
  if (!iso) return '—';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return '—';
  return t.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** A <time> with the relative text and the full date as its title. */
export function timeEl(iso) {
  return el('time', { datetime: iso || '', title: iso ? formatDate(iso) : '' }, formatRelative(iso));
}

export const TYPES = [
  { key: 'history', label: 'History', about: 'Requests you sent and their responses' },
  { key: 'environment', label: 'Environments', about: 'Variables for each of your environments' },
  { key: 'secret', label: 'Secrets', about: 'API keys, tokens and passwords in your vault' },
  { key: 'collection', label: 'Collections', about: 'Saved requests, folders and examples' },
  { key: 'setting', label: 'Settings', about: 'Preferences, themes and shortcuts' },
];

const EVENT_LABELS = {
  signup: 'Account created',
  login: 'Signed in',
  login_failed: 'Failed sign-in attempt',
  logout: 'Signed out',
  password_changed: 'Password changed',
  token_claimed: 'Device approved',
  device_connected: 'Device connected',
  device_denied: 'Device request denied',
  device_revoked: 'Device revoked',
  config_updated: 'Sync settings changed',
  key_stored: 'Encryption key stored',
  token_rotated: 'Device token rotated',
  token_revoked: 'Device signed out',
  token_reuse_detected: 'Reused device token detected',
  data_cleared: 'Synced data cleared',
};

export function eventLabel(type) {
  return EVENT_LABELS[type] || String(type).replaceAll('_', ' ');
}

export const WARNING_EVENTS = new Set(['login_failed', 'token_reuse_detected', 'device_revoked', 'device_denied']);

/** A page's data failed to load: 401 goes to login, else a retry card. */
export function loadFailed(container, r, what) {
  if (r.status === 401) {
    toLogin();
    return;
  }
  toast(`Could not load ${what}`, describeError(r), 'error');
  mount(container,
    el('div', { class: 'card' },
      el('div', { class: 'empty' },
        icon('alert', 24),
        el('p', { text: `Could not load ${what}.` }),
        el('button', { class: 'btn btn-outline btn-sm', type: 'button', onclick: () => window.location.reload() }, 'Try again'))));
}

/** The stored key's metadata, null when there is none yet (404). */
export async function getKey(get) {
  const r = await get('/api/sync/key');
  if (r.ok) return { ok: true, key: r.data };
  if (r.status === 404) return { ok: true, key: null };
  return r;
}

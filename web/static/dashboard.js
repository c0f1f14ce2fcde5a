// The dashboard shell: header (email, sign out), sidebar, and the page
// for the current path. The server already sent visitors without a
// session to /login; a session that ends meanwhile does the same here.
import { get, post, describeError, toLogin } from './api.js';
import { icon, mount, toast } from './ui.js';
import { renderOverview } from './page-overview.js';
import { renderSync } from './page-sync.js';
import { renderDevices } from './page-devices.js';
import { renderSecurity } from './page-security.js';

const PAGES = {
  // live: re-rendered in place when the account's event stream says
  // something changed (pages with forms or dialogs are not)
  '/dashboard': { title: 'Overview', render: renderOverview, live: true },
  '/dashboard/sync': { title: 'Sync settings', render: renderSync },
  '/dashboard/devices': { title: 'Devices', render: renderDevices },
  '/dashboard/security': { title: 'Security', render: renderSecurity },
};

function setUpNav(path) {
  const sidebar = document.getElementById('sidebar');
  for (const a of sidebar.querySelectorAll('a.nav-link')) {
    a.prepend(icon(a.dataset.icon, 18));
    if (a.getAttribute('href') === path) a.setAttribute('aria-current', 'page');
  }
  const toggle = document.getElementById('menu-toggle');
  const setOpen = (open) => {
    sidebar.classList.toggle('open', open);
    toggle.setAttribute('aria-expanded', String(open));
  };
  toggle.addEventListener('click', () => {
    const open = !sidebar.classList.contains('open');
    setOpen(open);
    if (open) sidebar.querySelector('a.nav-link')?.focus();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && sidebar.classList.contains('open')) {
      setOpen(false);
      toggle.focus();
    }
  });
}

function setUpUser(user) {
  mount(document.getElementById('user-email'), user.email);
  document.getElementById('user-email').title = user.email;
  mount(document.getElementById('user-avatar'), (user.email || '?').slice(0, 1));
  const btn = document.getElementById('sign-out');
  btn.prepend(icon('logout', 14));
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    const r = await post('/api/auth/logout');
    if (r.ok || r.status === 401) {
      window.location.assign('/login');
      return;
    }
    btn.disabled = false;
    toast('Could not sign out', describeError(r), 'error');
  });
}

// What the account's event stream can say that changes what a page shows.
const LIVE_EVENTS = ['data_updated', 'config_changed', 'device_revoked', 'key_rotated', 'resync'];

/*
 * Live updates: the account's event stream (the session cookie goes with
 * it, same origin). Another device's push, a settings change, a
 * revocation or a key rotation re-renders the page in place: one refresh
 * at a time, a burst of events once, none put off for ever. A browser
 * keeps at most six connections to one server, so only a visible tab
 * holds a stream; a tab that becomes visible again opens a new one and
 * catches up with one refresh. If the stream cannot be had (signed out,
 * a limit), the page simply stays as it is.
 */
function followEvents(page, container, ctx) {
  if (!page.live || typeof EventSource !== 'function') return;
  let es = null;
  let timer = null;
  let running = false;
  let again = false;
  const refresh = async () => {
    timer = null;
    running = true;
    const focused = container.contains(document.activeElement) ? document.activeElement.getAttribute('href') : null;
    try {
      await page.render(container, { ...ctx, refresh: true });
      if (focused) container.querySelector(`a[href="${focused}"]`)?.focus();
      container.dataset.refreshed = String(Number(container.dataset.refreshed || 0) + 1);
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  function schedule() {
    if (running) again = true;
    else if (timer === null) timer = setTimeout(refresh, 250);
  }
  const open = () => {
    if (es) return;
    const s = new EventSource('/api/sync/events/stream');
    for (const t of LIVE_EVENTS) s.addEventListener(t, schedule);
    s.addEventListener('open', () => { container.dataset.live = 'on'; });
    s.addEventListener('error', () => {
      if (s.readyState === EventSource.CLOSED) container.dataset.live = 'off';
    });
    es = s;
  };
  const close = () => {
    if (es) es.close();
    es = null;
    container.dataset.live = 'off';
  };
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      close();
    } else {
      open();
      schedule();
    }
  });
  window.addEventListener('pagehide', close);
  if (!document.hidden) open();
}

async function start() {
  const path = window.location.pathname.replace(/\/+$/, '') || '/dashboard';
  const page = PAGES[path] || PAGES['/dashboard'];
  document.title = `${page.title} · Flamingo Sync`;
  setUpNav(path);
  const session = await get('/api/auth/session');
  if (!session.ok) {
    if (session.status === 401) { toLogin(); return; }
    toast('The server cannot be reached', describeError(session), 'error');
    return;
  }
  setUpUser(session.data.user);
  const container = document.getElementById('page');
  const ctx = { user: session.data.user };
  await page.render(container, ctx);
  container.removeAttribute('aria-busy');
  followEvents(page, container, ctx);
}

start();

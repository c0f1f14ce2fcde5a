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
  '/dashboard': { title: 'Overview', render: renderOverview },
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
  await page.render(container, { user: session.data.user });
  container.removeAttribute('aria-busy');
}

start();

// /dashboard: a card per data type, the device count, the key version and
// recent activity.
import { get } from './api.js';
import { el, icon, mount, timeEl, formatBytes, eventLabel, TYPES, skeletonCard, loadFailed, getKey } from './ui.js';

function pageHead() {
  return el('div', { class: 'page-head' },
    el('h1', { text: 'Overview' }),
    el('p', { text: 'What syncs, from which devices, and what happened lately.' }));
}

function stat(label, iconName, value, sub, id) {
  return el('div', { class: 'card stat', id },
    el('div', { class: 'stat-label' }, el('span', { text: label }), icon(iconName)),
    el('div', { class: 'stat-value', text: value }),
    el('div', { class: 'muted small' }, sub));
}

function typeCard(t, enabled, item, deviceNames) {
  const facts = item
    ? [
      el('dt', { text: 'Version' }), el('dd', { text: `v${item.version}` }),
      el('dt', { text: 'Size' }), el('dd', { text: formatBytes(item.size) }),
      el('dt', { text: 'Updated' }), el('dd', {}, timeEl(item.updated_at)),
      el('dt', { text: 'By' }), el('dd', { text: deviceNames.get(item.updated_by_device) || (item.updated_by_device ? 'A removed device' : 'A browser session') }),
    ]
    : [el('dt', { text: 'Status' }), el('dd', { text: 'Nothing synced yet' })];
  return el('article', { class: 'card type-card', 'data-type': t.key, 'aria-label': t.label },
    el('div', { class: 'type-card-head' },
      el('span', { class: 'type-icon' }, icon(t.key, 18)),
      el('h3', { text: t.label }),
      el('span', { class: `badge ${enabled ? 'badge-on' : ''}`, text: enabled ? 'Syncing' : 'Off' })),
    el('dl', { class: 'facts' }, facts));
}

function activityList(events) {
  if (!events.length) {
    return el('div', { class: 'empty' }, icon('activity', 24), el('p', { text: 'No activity yet.' }));
  }
  return el('ul', { class: 'activity', id: 'recent-activity' },
    events.map((e) => el('li', {},
      el('span', { class: 'dot', 'aria-hidden': 'true' }),
      el('span', { class: 'what' }, eventLabel(e.event_type), e.ip ? el('span', { class: 'muted small', text: ` · ${e.ip}` }) : null),
      el('span', { class: 'when' }, timeEl(e.created_at)))));
}

export async function renderOverview(container, { refresh = false } = {}) {
  // a live refresh keeps what is shown until the new figures are in
  if (!refresh) {
    mount(container, pageHead(),
      el('div', { class: 'grid grid-3' }, skeletonCard(1), skeletonCard(1), skeletonCard(1)),
      el('div', { class: 'grid grid-types' }, TYPES.map(() => skeletonCard(3))));
  }

  const [config, data, devices, audit, key] = await Promise.all([
    get('/api/sync/config'), get('/api/sync/data'), get('/api/devices'), get('/api/audit?limit=6'), getKey(get),
  ]);
  for (const [r, what] of [[config, 'your sync settings'], [data, 'your synced data'], [devices, 'your devices'], [audit, 'recent activity'], [key, 'your key']]) {
    if (!r.ok) {
      // a live refresh that fails keeps what is shown
      if (!refresh || r.status === 401) loadFailed(container, r, what);
      return;
    }
  }
  const items = new Map(data.data.items.map((i) => [i.type, i]));
  const keyVersion = key.key ? key.key.version : 0;
  const active = devices.data.devices.filter((d) => d.status === 'active');
  const names = new Map(devices.data.devices.map((d) => [d.id, d.name]));
  const enabledCount = TYPES.filter((t) => config.data[t.key]).length;
  const total = data.data.items.reduce((n, i) => n + (i.size || 0), 0);

  mount(container, pageHead(),
    el('div', { class: 'grid grid-3' },
      stat('Devices', 'devices', String(active.length), active.length === 1 ? 'device connected' : 'devices connected', 'stat-devices'),
      stat('Syncing', 'sync', `${enabledCount} of ${TYPES.length}`, 'data types turned on', 'stat-sync'),
      stat('Encryption key', 'key', keyVersion ? `v${keyVersion}` : 'Not set', keyVersion ? `${formatBytes(total)} of encrypted data` : 'Set up on your first device', 'stat-key')),
    el('section', { class: 'grid', 'aria-labelledby': 'types-title' },
      el('div', { class: 'section-title' },
        el('h2', { id: 'types-title', text: 'Data types' }),
        el('a', { class: 'link small', href: '/dashboard/sync', text: 'Change what syncs' })),
      el('div', { class: 'grid grid-types' }, TYPES.map((t) => typeCard(t, config.data[t.key], items.get(t.key), names)))),
    el('section', { class: 'card', 'aria-labelledby': 'activity-title' },
      el('div', { class: 'card-head' },
        el('div', {}, el('h2', { id: 'activity-title', text: 'Recent activity' }), el('p', { text: 'The latest events on your account.' })),
        el('a', { class: 'link small', href: '/dashboard/security', text: 'View all' })),
      el('div', { class: 'card-body-flush' }, activityList(audit.data.events))));
}

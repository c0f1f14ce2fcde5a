// /dashboard/devices: every device with its last sighting; revoking one
// (behind a confirmation) signs it out at once.
import { get, del, describeError, toLogin } from './api.js';
import { el, icon, mount, toast, confirmDialog, timeEl, skeletonCard, loadFailed } from './ui.js';

function pageHead() {
  return el('div', { class: 'page-head' },
    el('h1', { text: 'Devices' }),
    el('p', { text: 'Devices that can sync your data. Revoke any you no longer use or do not recognise.' }));
}

function deviceRow(d, reload) {
  const active = d.status === 'active';
  const revoke = active
    ? el('button', { class: 'btn btn-outline btn-sm', type: 'button', 'data-revoke': d.id, 'aria-label': `Revoke ${d.name}` }, 'Revoke')
    : null;
  if (revoke) {
    revoke.addEventListener('click', async () => {
      const yes = await confirmDialog({
        title: `Revoke ${d.name}?`,
        message: 'It is signed out at once and can no longer sync. To use it again, connect it anew from Flamingo.',
        confirm: 'Revoke device',
        danger: true,
      });
      if (!yes) { revoke.focus(); return; }
      revoke.disabled = true;
      const r = await del(`/api/devices/${encodeURIComponent(d.id)}`);
      if (r.ok) {
        toast('Device revoked', `${d.name} can no longer sync.`, 'success');
        await reload();
        document.getElementById('devices-title')?.focus();
        return;
      }
      revoke.disabled = false;
      if (r.status === 401) { toLogin(); return; }
      toast('Could not revoke the device', describeError(r), 'error');
    });
  }
  return el('tr', { class: active ? '' : 'row-muted', 'data-device': d.id },
    el('td', { class: 'cell-main' },
      el('div', { class: 'cell-title' },
        d.name,
        d.current ? el('span', { class: 'badge badge-accent', text: 'This device' }) : null,
        active ? null : el('span', { class: 'badge badge-danger', text: 'Revoked' })),
      el('div', { class: 'cell-sub', text: d.app_version ? `Flamingo ${d.app_version}` : 'Flamingo' })),
    el('td', { 'data-label': 'Platform', text: d.platform || '—' }),
    el('td', { 'data-label': 'Last seen' }, d.last_seen_at ? timeEl(d.last_seen_at) : 'never'),
    el('td', { 'data-label': 'Last IP', class: 'mono small', text: d.last_ip || '—' }),
    el('td', { class: 'cell-action num' }, revoke));
}

export async function renderDevices(container) {
  mount(container, pageHead(), skeletonCard(4));
  const reload = async () => {
    const r = await get('/api/devices');
    if (!r.ok) { loadFailed(container, r, 'your devices'); return; }
    const devices = r.data.devices;
    const active = devices.filter((d) => d.status === 'active').length;
    const body = devices.length
      ? el('div', { class: 'table-wrap' },
        el('table', { class: 'table table-stack', id: 'devices-table' },
          el('caption', { class: 'visually-hidden', text: 'Your devices' }),
          el('thead', {}, el('tr', {},
            el('th', { scope: 'col', text: 'Device' }),
            el('th', { scope: 'col', text: 'Platform' }),
            el('th', { scope: 'col', text: 'Last seen' }),
            el('th', { scope: 'col', text: 'Last IP' }),
            el('th', { scope: 'col', class: 'num' }, el('span', { class: 'visually-hidden', text: 'Actions' })))),
          el('tbody', {}, devices.map((d) => deviceRow(d, reload)))))
      : el('div', { class: 'empty' },
        icon('devices', 28),
        el('h3', { text: 'No devices yet' }),
        el('p', { text: 'Sign in to sync from Flamingo on your computer: it opens this site to ask for your approval.' }));
    mount(container, pageHead(),
      el('section', { class: 'card', 'aria-labelledby': 'devices-title' },
        el('div', { class: 'card-head' },
          el('div', {},
            el('h2', { id: 'devices-title', tabindex: '-1', text: 'Connected devices' }),
            el('p', { id: 'devices-count', text: `${active} active${devices.length > active ? `, ${devices.length - active} revoked` : ''}` }))),
        el('div', { class: 'card-body-flush' }, body)));
  };
  await reload();
}

// /dashboard/sync: the five switches. Each change is saved at once; a
// failed save puts the switch back and says why.
import { get, put, describeError, toLogin } from './api.js';
import { el, icon, mount, toast, TYPES, skeletonCard, loadFailed, timeEl } from './ui.js';

function pageHead() {
  return el('div', { class: 'page-head' },
    el('h1', { text: 'Sync settings' }),
    el('p', { text: 'Choose what Flamingo keeps in step across your devices. Changes apply to every device at once.' }));
}

function settingRow(t, enabled) {
  const labelId = `label-${t.key}`;
  const descId = `desc-${t.key}`;
  const state = el('span', { class: 'setting-state', 'aria-live': 'polite', id: `state-${t.key}` });
  const sw = el('button', {
    class: 'switch', type: 'button', role: 'switch', id: `switch-${t.key}`, 'data-type': t.key,
    'aria-checked': String(enabled), 'aria-labelledby': labelId, 'aria-describedby': descId,
  });
  sw.addEventListener('click', async () => {
    const before = sw.getAttribute('aria-checked') === 'true';
    const want = !before;
    sw.setAttribute('aria-checked', String(want));
    sw.disabled = true;
    state.textContent = 'Saving…';
    const r = await put('/api/sync/config', { [t.key]: want });
    sw.disabled = false;
    if (r.ok && r.data[t.key] === want) {
      state.textContent = 'Saved';
      toast(`${t.label} sync ${want ? 'turned on' : 'turned off'}`,
        want ? 'Your devices will sync it again.' : 'Your devices stop uploading it. What is stored stays.', 'success');
      return;
    }
    sw.setAttribute('aria-checked', String(before));
    state.textContent = 'Not saved';
    if (r.status === 401) { toLogin(); return; }
    toast(`Could not change ${t.label.toLowerCase()} sync`, r.ok ? 'The server did not take the change.' : describeError(r), 'error');
    sw.focus();
  });
  return el('li', { class: 'setting-row' },
    el('span', { class: 'type-icon' }, icon(t.key, 18)),
    el('div', { class: 'setting-text' },
      el('h3', { id: labelId, text: t.label }),
      el('p', { id: descId, text: t.about })),
    state,
    sw);
}

export async function renderSync(container) {
  mount(container, pageHead(), skeletonCard(5));
  const r = await get('/api/sync/config');
  if (!r.ok) { loadFailed(container, r, 'your sync settings'); return; }
  mount(container, pageHead(),
    el('section', { class: 'card', 'aria-labelledby': 'types-title' },
      el('div', { class: 'card-head' },
        el('div', {},
          el('h2', { id: 'types-title', text: 'Data types' }),
          r.data.updated_at
            ? el('p', {}, 'Last changed ', timeEl(r.data.updated_at), '.')
            : el('p', { text: 'Everything syncs until you turn it off.' }))),
      el('div', { class: 'card-body-flush' },
        el('ul', { class: 'setting-list' }, TYPES.map((t) => settingRow(t, r.data[t.key] === true))))),
    el('div', { class: 'alert', role: 'note' },
      icon('info'),
      el('div', {}, 'Turning a type off stops devices from uploading it; what is already stored stays encrypted on the server until a device clears it.')));
}

// /sync/complete: the device is connected. Counts down, then closes the
// tab where the browser allows a script to (a tab the desktop opened
// usually); otherwise says that it can be closed.
const SECONDS = 5;

let name = '';
try {
  name = sessionStorage.getItem('flm-connected-device') || '';
  sessionStorage.removeItem('flm-connected-device');
} catch { /* storage off */ }
if (name) {
  document.getElementById('complete-text').textContent =
    `${name} is now signed in to Flamingo Sync. Go back to Flamingo: it finishes setting up by itself.`;
}

const text = document.getElementById('countdown-text');
const counter = document.getElementById('countdown');
let left = SECONDS;

const timer = setInterval(() => {
  left -= 1;
  if (left > 0) {
    counter.textContent = String(left);
    return;
  }
  clearInterval(timer);
  window.close();
  // Still here: the browser keeps tabs that a script did not open.
  setTimeout(() => {
    text.textContent = 'You can close this tab now.';
    text.dataset.state = 'closable';
  }, 200);
}, 1000);

// Sign-in form: POST /api/login, then back to the page that sent us here (`?next=`), which
// must be a path on this site: one leading "/", never "//" or "/\" (another host).
import { api, params } from '/assets/ui.js';

const $ = id => document.getElementById(id);

/** `next` when it is a local path, else "/". */
export function safeNext(next) {
  if (typeof next !== 'string' || !next.startsWith('/')) return '/';
  if (next.startsWith('//') || next.startsWith('/\\')) return '/';
  if (/[\u0000-\u001f\u007f]/.test(next)) return '/';
  if (next.startsWith('/login')) return '/';
  return next;
}

function showError(text) {
  const box = $('login-error');
  box.textContent = text;
  box.classList.toggle('hidden', !text);
}

async function submit(event) {
  event.preventDefault();
  const user = $('user').value.trim();
  const password = $('password').value;
  if (!user || !password) {
    showError(!user ? 'Enter your user name.' : 'Enter your password.');
    (!user ? $('user') : $('password')).focus();
    return;
  }
  const button = $('login-submit');
  button.disabled = true;
  button.textContent = 'Signing in…';
  showError('');
  try {
    await api('/api/login', { method: 'POST', body: { user, password } });
    location.replace(safeNext(params().get('next')));
  } catch (e) {
    showError(e.status === 401 ? 'Wrong user or password.' : e.status === 429
      ? 'Too many attempts; wait a moment and try again.' : 'Could not sign in: ' + e.message);
    $('password').select();
    $('password').focus();
    button.disabled = false;
    button.textContent = 'Sign in';
  }
}

$('login-form').addEventListener('submit', submit);
for (const id of ['user', 'password']) $(id).addEventListener('input', () => showError(''));

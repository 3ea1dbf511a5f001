/**
 * The demo app's one page: sign in (open-webui's /api/v1/auths/signin), pick a model (/api/models),
 * chat with a streamed answer (/api/chat/completions, SSE) and upload a file (/api/v1/files/). The
 * token is kept in localStorage and sent as a Bearer header, as open-webui's frontend does.
 */

const SCRIPT = String.raw`
const $ = (id) => document.getElementById(id);
const token = () => localStorage.getItem('token');
const authed = (extra = {}) => ({ ...extra, Authorization: 'Bearer ' + token() });

async function showSession() {
  const r = token() ? await fetch('/api/v1/auths/', { headers: authed() }) : null;
  if (!r || !r.ok) {
    localStorage.removeItem('token');
    $('login').hidden = false; $('app').hidden = true;
    return;
  }
  const me = await r.json();
  $('whoami').textContent = me.name + ' <' + me.email + '> (' + me.role + ')';
  $('login').hidden = true; $('app').hidden = false;
  const models = await (await fetch('/api/models', { headers: authed() })).json();
  $('model').replaceChildren(...models.data.map((m) => new Option(m.name, m.id)));
}

$('login-form').onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch('/api/v1/auths/signin', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: $('email').value, password: $('password').value }) });
  const body = await r.json();
  if (!r.ok) { $('login-status').textContent = body.detail; return; }
  localStorage.setItem('token', body.token);
  $('login-status').textContent = '';
  await showSession();
};

$('signout').onclick = async () => {
  await fetch('/api/v1/auths/signout', { method: 'POST', headers: authed() });
  localStorage.removeItem('token');
  await showSession();
};

$('chat-form').onsubmit = async (e) => {
  e.preventDefault();
  $('answer').textContent = ''; $('chat-status').textContent = 'streaming';
  const r = await fetch('/api/chat/completions', { method: 'POST', headers: authed({ 'Content-Type': 'application/json' }),
    body: JSON.stringify({ model: $('model').value, stream: true, messages: [{ role: 'user', content: $('prompt').value }] }) });
  if (!r.ok) { $('chat-status').textContent = 'error: ' + (await r.json()).detail; return; }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      const data = ev.replace(/^data: /, '');
      if (data === '[DONE]') { $('chat-status').textContent = 'done'; continue; }
      $('answer').textContent += JSON.parse(data).choices[0].delta.content ?? '';
    }
  }
};

$('upload-form').onsubmit = async (e) => {
  e.preventDefault();
  const f = $('file').files[0];
  if (!f) return;
  const form = new FormData(); form.append('file', f);
  const r = await fetch('/api/v1/files/', { method: 'POST', headers: authed(), body: form });
  const body = await r.json();
  $('upload-status').textContent = r.ok ? 'uploaded ' + body.filename + ': ' + body.meta.size + ' bytes, sha256 ' + body.meta.file_hash : 'error: ' + body.detail;
};

showSession();
`;

/** The HTML of the demo page. */
export function demoPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ratls demo (open-webui-shaped)</title>
<style>body{font:15px/1.45 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}input,select,button{font:inherit}
#answer{white-space:pre-wrap;border:1px solid #ccc;padding:.6rem;min-height:3rem}.note{color:#555}</style></head>
<body>
<h1>ratls demo</h1>
<p class="note">An open-webui-shaped demo app behind the attested TLS proxy: same routes and login as open-webui, canned answers from an Ollama-shaped backend.</p>
<section id="login" hidden>
<form id="login-form"><p><input id="email" type="email" placeholder="email" value="admin@example.com" autocomplete="username">
<input id="password" type="password" placeholder="password" autocomplete="current-password"> <button>Sign in</button></p></form>
<p class="note">The password is in the <code>ratls serve --demo</code> banner and in <code>.ratls/demo/admin-password</code>.</p>
<p id="login-status"></p>
</section>
<section id="app" hidden>
<p>Signed in as <span id="whoami"></span> <button id="signout">Sign out</button></p>
<form id="chat-form"><p><select id="model"></select> <input id="prompt" value="Hello" size="30"> <button>Send</button> <span id="chat-status"></span></p></form>
<div id="answer"></div>
<form id="upload-form"><p><input id="file" type="file"> <button>Upload</button> <span id="upload-status"></span></p></form>
</section>
<script>${SCRIPT}</script>
</body></html>
`;
}

// callfleet console: live rows over Server-Sent Events, listen-in with
// WebAudio, the assist feed. No framework, no build step.
'use strict';
(() => {
  const body = document.body;
  const ns = body.dataset.ns;
  if (!ns) return;

  const $ = (sel, root = document) => root.querySelector(sel);
  const esc = (s) => encodeURIComponent(s);

  // --- live rows -------------------------------------------------------
  const CALL_COLS = ['name', 'to', 'phase', 'stream', 'handoff', 'agent', 'duration', 'disposition', 'attempts'];

  function duration(tr) {
    const a = tr.dataset.answered;
    if (!a) return '';
    const end = tr.dataset.ended ? Date.parse(tr.dataset.ended) : Date.now();
    const s = Math.max(0, Math.round((end - Date.parse(a)) / 1000));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  function tick() {
    document.querySelectorAll('#calls tbody tr').forEach((tr) => {
      const td = $('.duration', tr);
      if (td) td.textContent = duration(tr);
    });
  }

  function callCell(col, r) {
    const td = document.createElement('td');
    if (col === 'name' && body.dataset.page !== 'call') {
      const a = document.createElement('a');
      a.href = '/ns/' + esc(ns) + '/calls/' + esc(r.name);
      a.textContent = r.name;
      td.appendChild(a);
      return td;
    }
    if (col === 'phase') {
      td.className = 'phase';
      td.dataset.phase = r.phase;
    }
    if (col === 'duration') td.className = 'duration';
    td.textContent = col === 'duration' ? '' : (r[col] ?? '');
    return td;
  }

  function upsertCall(r) {
    const table = $('#calls');
    if (!table) return;
    if (body.dataset.page === 'call' && r.name !== body.dataset.call) return;
    if (table.dataset.campaign && r.campaign !== table.dataset.campaign) return;
    const tbody = $('tbody', table);
    let tr = tbody.querySelector('tr[data-name="' + CSS.escape(r.name) + '"]');
    if (r.deleted) {
      if (tr) tr.remove();
      return;
    }
    const fresh = document.createElement('tr');
    fresh.dataset.name = r.name;
    fresh.dataset.answered = r.answered || '';
    fresh.dataset.ended = r.ended || '';
    CALL_COLS.forEach((c) => fresh.appendChild(callCell(c, r)));
    if (tr) {
      tbody.replaceChild(fresh, tr);
    } else {
      const after = [...tbody.children].find((x) => x.dataset.name > r.name);
      tbody.insertBefore(fresh, after || null);
    }
    tr = fresh;
    $('.duration', tr).textContent = duration(tr);
  }

  const CAMP_COLS = ['name', 'total', 'pending', 'active', 'succeeded', 'failed', 'skipped', 'waiting'];

  function upsertCampaign(r) {
    const table = $('#campaigns');
    if (!table) return;
    if (body.dataset.campaign && r.name !== body.dataset.campaign) return;
    const tbody = $('tbody', table);
    const tr = tbody.querySelector('tr[data-name="' + CSS.escape(r.name) + '"]');
    if (r.deleted) {
      if (tr) tr.remove();
      return;
    }
    const fresh = document.createElement('tr');
    fresh.dataset.name = r.name;
    CAMP_COLS.forEach((c) => {
      const td = document.createElement('td');
      if (c === 'name' && !body.dataset.campaign) {
        const a = document.createElement('a');
        a.href = '/ns/' + esc(ns) + '/campaigns/' + esc(r.name);
        a.textContent = r.name;
        td.appendChild(a);
      } else {
        td.textContent = c === 'waiting' ? (r.suspended ? 'suspended' : r.waiting) : r[c];
      }
      fresh.appendChild(td);
    });
    if (tr) tbody.replaceChild(fresh, tr); else tbody.appendChild(fresh);
  }

  function setLive(state, text) {
    const el = $('#live');
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  const events = new EventSource('/ns/' + esc(ns) + '/events');
  events.addEventListener('call', (e) => upsertCall(JSON.parse(e.data)));
  events.addEventListener('campaign', (e) => upsertCampaign(JSON.parse(e.data)));
  events.onopen = () => setLive('live', 'live');
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED) setLive('closed', 'not live: sign in again');
    else setLive('reconnecting', 'reconnecting…');
  };

  // Actions go through fetch when scripts run, so listening goes on; the
  // forms still work without it (the server redirects back to the page).
  document.querySelectorAll('.actions form').forEach((form) => {
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const action = form.action.split('/').pop();
      const res = await fetch(form.action, {
        method: 'POST', credentials: 'same-origin', body: new URLSearchParams(new FormData(form)),
        headers: { 'X-CSRF-Token': body.dataset.csrf },
      });
      let note = $('#done');
      if (!note) {
        note = document.createElement('p');
        note.id = 'done';
        $('h1').after(note);
      }
      if (res.ok) {
        note.className = 'done';
        note.textContent = 'Done: ' + action + '.';
      } else {
        const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
        const msg = doc.querySelector('#message');
        note.className = 'error';
        note.textContent = action + ' refused (' + res.status + '): ' + (msg ? msg.textContent : '');
      }
    });
  });
  setInterval(tick, 1000);
  tick();

  // --- listen-in -------------------------------------------------------
  const listen = $('#listen');
  if (!listen) return;
  const call = body.dataset.call;
  // The page's own measurements, also read by the browser test.
  const stats = (window.callfleetAudio = { frames: [0, 0], loud: [0, 0], lines: 0, level: 0, peakLevel: 0, rate: 0, state: 'off' });
  let ctx = null;
  let analyser = null;
  let ended = false;
  const next = [0, 0]; // when each source's next buffer starts

  function monitorState(s) {
    stats.state = s;
    $('#monitor-state').textContent = s;
  }

  function addLine(m) {
    const li = document.createElement('li');
    li.className = m.type + (m.speaker ? ' ' + m.speaker : '');
    const who = document.createElement('b');
    who.textContent = m.type === 'assist' ? 'assist' : m.speaker;
    li.appendChild(who);
    li.appendChild(document.createTextNode(' ' + m.text));
    $('#feed').appendChild(li);
    stats.lines++;
  }

  // An L16 frame: one source byte, then 16-bit signed little-endian samples.
  function onAudio(buf) {
    const dv = new DataView(buf);
    const src = dv.getUint8(0) === 1 ? 1 : 0;
    const n = (buf.byteLength - 1) >> 1;
    if (n === 0 || !stats.rate) return;
    const f = new Float32Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const s = dv.getInt16(1 + 2 * i, true) / 32768;
      f[i] = s;
      sum += s * s;
    }
    stats.frames[src]++;
    if (Math.sqrt(sum / n) > 0.01) stats.loud[src]++;
    const ab = ctx.createBuffer(1, n, stats.rate);
    ab.copyToChannel(f, 0);
    const node = ctx.createBufferSource();
    node.buffer = ab;
    node.connect(analyser);
    const now = ctx.currentTime;
    if (next[src] > now + 1) return; // far behind: skip rather than lag
    const at = Math.max(now + 0.1, next[src]);
    node.start(at);
    next[src] = at + ab.duration;
  }

  function meter() {
    if (!analyser) return;
    const a = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(a);
    let sum = 0;
    for (const v of a) sum += v * v;
    stats.level = Math.sqrt(sum / a.length);
    stats.peakLevel = Math.max(stats.peakLevel, stats.level);
    $('#level').value = Math.min(1, stats.level * 4);
    $('#audio-stats').textContent = 'call ' + stats.frames[0] + ' frames (' + stats.loud[0] + ' with sound), bot ' +
      stats.frames[1] + ' (' + stats.loud[1] + ')';
  }

  async function connect() {
    monitorState('connecting');
    const res = await fetch('/ns/' + esc(ns) + '/calls/' + esc(call) + '/monitor', {
      method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': body.dataset.csrf },
    });
    if (!res.ok) {
      monitorState('refused (' + res.status + ')');
      return;
    }
    const { url } = await res.json();
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') {
        onAudio(e.data);
        return;
      }
      const m = JSON.parse(e.data);
      if (m.type === 'hello') {
        stats.rate = m.sampleRate;
        monitorState('listening (' + m.listenMode + ', ' + m.sampleRate + ' Hz)');
      } else if (m.type === 'assist' || m.type === 'transcript') {
        addLine(m);
      } else if (m.type === 'ended') {
        ended = true;
        monitorState('call ended');
      }
    };
    ws.onclose = () => {
      if (ended) return;
      monitorState('disconnected; retrying');
      setTimeout(connect, 2000); // no stream yet, or the listener was dropped
    };
  }

  listen.addEventListener('click', async () => {
    listen.disabled = true;
    ctx = new AudioContext(); // created on a click, so the browser lets it play
    analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    analyser.connect(ctx.destination);
    setInterval(meter, 100);
    await connect();
  });
})();

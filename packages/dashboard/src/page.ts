/**
 * The dashboard page: one HTML document with inline CSS and script, no build step and no external
 * assets (it works offline and behind any mount path: every URL it uses is relative). Text from
 * messages is only ever set through textContent, never parsed as HTML.
 */
export function dashboardPage(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
:root { --bg:#0f1419; --panel:#172029; --line:#263340; --text:#d8e1ea; --dim:#8b9bab; --ok:#4cc38a; --warn:#e5b449; --bad:#ef6461; --accent:#5aa9f5; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; align-items:center; gap:16px; padding:14px 24px; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; font-weight:600; }
.pill { padding:2px 10px; border-radius:999px; background:var(--panel); color:var(--dim); font-size:12px; }
#live.on { color:var(--ok); } #live.off { color:var(--bad); }
main { padding:16px 24px; display:grid; gap:16px; }
.cards { display:grid; grid-template-columns:repeat(6, minmax(120px,1fr)); gap:12px; }
.card { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:26px; font-weight:600; font-variant-numeric:tabular-nums; }
.card .sub { color:var(--dim); font-size:12px; }
section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; overflow:auto; }
section h2 { font-size:14px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.05em; }
.row2 { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--dim); font-weight:500; font-size:12px; }
td.num, th.num { text-align:right; }
.bad { color:var(--bad); } .warn { color:var(--warn); } .ok { color:var(--ok); }
button { background:#24425f; color:var(--text); border:1px solid #33597d; border-radius:6px; padding:3px 10px; cursor:pointer; font:inherit; font-size:12px; }
button:hover { background:#2d5478; } button:disabled { opacity:.4; cursor:default; }
tr.selectable { cursor:pointer; } tr.selected td { background:#1d2a36; }
pre { margin:6px 0; padding:8px; background:#0c1116; border-radius:6px; max-height:220px; overflow:auto; font-size:12px; white-space:pre-wrap; word-break:break-all; }
details summary { cursor:pointer; color:var(--accent); font-size:12px; }
canvas { width:100%; height:140px; display:block; }
.legend span { margin-right:14px; font-size:12px; color:var(--dim); } .legend i { display:inline-block; width:10px; height:3px; margin-right:5px; vertical-align:middle; }
.empty { color:var(--dim); font-style:italic; }
.mono { font-family:ui-monospace, "DejaVu Sans Mono", monospace; font-size:12px; }
#toast { position:fixed; bottom:16px; right:16px; background:#24425f; padding:8px 14px; border-radius:6px; opacity:0; transition:opacity .3s; }
#toast.show { opacity:1; }
</style>
</head>
<body>
<header>
  <h1>${escapeHtml(title)}</h1>
  <span class="pill" id="driver">driver …</span>
  <span class="pill" id="uptime">up 0 s</span>
  <span class="pill off" id="live" data-testid="live">● connecting</span>
  <span style="flex:1"></span>
  <a class="pill" href="metrics" target="_blank">/metrics</a>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="label">Published</div><div class="value" data-testid="published-total" id="published">0</div><div class="sub"><span id="publishRate" data-testid="publish-rate">0</span> msg/s</div></div>
    <div class="card"><div class="label">Handled</div><div class="value" id="handled" data-testid="handled-total">0</div><div class="sub"><span id="handleRate" data-testid="handle-rate">0</span> msg/s</div></div>
    <div class="card"><div class="label">In flight</div><div class="value" id="inFlight" data-testid="in-flight">0</div><div class="sub">handlers running</div></div>
    <div class="card"><div class="label">Failed</div><div class="value warn" id="failed">0</div><div class="sub">handler errors</div></div>
    <div class="card"><div class="label">Retries</div><div class="value warn" id="retried">0</div><div class="sub">scheduled again</div></div>
    <div class="card"><div class="label">Dead-lettered</div><div class="value bad" id="deadLettered" data-testid="dead-lettered-total">0</div><div class="sub">attempts exhausted</div></div>
  </div>
  <section data-testid="fleet">
    <h2>Fleet: what the broker holds <span class="pill" id="fleetAt"></span></h2>
    <div id="fleetNote" class="empty" data-testid="fleet-note"></div>
    <table><thead><tr><th>type</th><th>group</th><th class="num">backlog</th><th>trend</th><th class="num">in flight</th><th class="num">oldest</th><th class="num">consumers</th><th class="num">retry backlog</th><th>lag per partition</th></tr></thead><tbody id="fleetGroups"></tbody></table>
    <table style="margin-top:10px"><thead><tr><th>dead letters at rest</th><th class="num">count</th><th class="num">oldest</th></tr></thead><tbody id="fleetDead"></tbody></table>
  </section>
  <section>
    <h2>Throughput, last 60 s</h2>
    <canvas id="chart" width="1200" height="140"></canvas>
    <div class="legend"><span><i style="background:var(--accent)"></i>published/s</span><span><i style="background:var(--ok)"></i>handled/s</span><span><i style="background:var(--bad)"></i>failed/s</span></div>
  </section>
  <div class="row2">
    <section><h2>Message types</h2><table><thead><tr><th>type</th><th class="num">published</th><th class="num">msg/s</th><th class="num">unrouted</th></tr></thead><tbody id="types"></tbody></table></section>
    <section><h2>Consumers</h2><table><thead><tr><th>group</th><th>types</th><th class="num">concurrency</th><th class="num">in flight</th><th>dead letters to</th></tr></thead><tbody id="consumers"></tbody></table></section>
  </div>
  <section><h2>Consumer groups per type</h2><table><thead><tr><th>type</th><th>group</th><th class="num">msg/s</th><th class="num">in flight</th><th class="num">acked</th><th class="num">failed</th><th class="num">retried</th><th class="num">dead-lettered</th><th class="num">mean ms</th></tr></thead><tbody id="groups"></tbody></table></section>
  <section>
    <h2>Dead letters</h2>
    <table><thead><tr><th>dead-letter type</th><th class="num">stored</th><th class="num">received</th><th class="num">replayed</th><th class="num">evicted</th><th></th></tr></thead><tbody id="dlqs"></tbody></table>
    <div id="dlqDetail" style="margin-top:12px"></div>
  </section>
</main>
<div id="toast"></div>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => Number(n).toLocaleString('en-US');
  let selected = null, selectedStored = -1, state = null;
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') node.className = v; else if (k.startsWith('on')) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }
  function fill(tbody, rows, columns, empty) {
    tbody.replaceChildren(...(rows.length ? rows.map(columns) : [el('tr', {}, el('td', { class: 'empty', colspan: '9' }, empty))]));
  }
  const num = (v, cls) => el('td', { class: 'num ' + (cls || '') }, fmt(v));
  function toast(text) { const t = $('toast'); t.textContent = text; t.classList.add('show'); setTimeout(() => t.classList.remove('show'), 2500); }
  function render(s) {
    state = s;
    $('driver').textContent = 'driver ' + s.driver;
    $('uptime').textContent = 'up ' + Math.round(s.uptimeMs / 1000) + ' s';
    const t = s.totals;
    $('published').textContent = fmt(t.published);
    $('handled').textContent = fmt(t.acked + t.failed);
    $('inFlight').textContent = fmt(t.inFlight);
    $('failed').textContent = fmt(t.failed);
    $('retried').textContent = fmt(t.retried);
    $('deadLettered').textContent = fmt(t.deadLettered);
    $('publishRate').textContent = fmt(s.types.reduce((a, r) => a + r.publishRate, 0).toFixed(1));
    $('handleRate').textContent = fmt(s.groups.reduce((a, r) => a + r.handleRate, 0).toFixed(1));
    fill($('types'), s.types, (r) => el('tr', {}, el('td', {}, r.type), num(r.published), num(r.publishRate), num(r.unrouted, r.unrouted ? 'warn' : '')), 'nothing published yet');
    fill($('consumers'), s.consumers, (c) => el('tr', {}, el('td', {}, c.group), el('td', {}, c.types.join(', ')), num(c.concurrency), num(c.inFlight), el('td', {}, c.deadLetter === false ? '(dropped)' : c.deadLetter || c.types.map((x) => x + '.dlq').join(', '))), 'no consumers');
    fill($('groups'), s.groups, (r) => el('tr', {}, el('td', {}, r.type), el('td', {}, r.group), num(r.handleRate), num(r.inFlight), num(r.acked, 'ok'), num(r.failed, r.failed ? 'warn' : ''), num(r.retried, r.retried ? 'warn' : ''), num(r.deadLettered, r.deadLettered ? 'bad' : ''), num(r.meanMs)), 'no handler has run yet');
    fill($('dlqs'), s.deadLetters, (d) => el('tr', { class: 'selectable' + (d.type === selected ? ' selected' : ''), 'data-testid': 'dlq-' + d.type, onclick: () => select(d.type) },
      el('td', {}, d.type), num(d.stored, d.stored ? 'bad' : ''), num(d.received), num(d.replayed), num(d.evicted),
      el('td', {}, el('button', { 'data-testid': 'replay-all-' + d.type, onclick: (e) => { e.stopPropagation(); replay(d.type); }, ...(d.stored && !s.readOnly ? {} : { disabled: '' }) }, 'Replay all'))), 'no dead-letter types seen yet');
    const current = s.deadLetters.find((d) => d.type === selected);
    if (current && current.stored !== selectedStored) loadDetail();
    renderFleet(s.fleet);
    drawChart(s.series);
  }
  const age = (ms) => ms == null ? '-' : ms < 1000 ? Math.round(ms) + ' ms' : ms < 60000 ? Math.floor(ms / 1000) + ' s' : ms < 3600000 ? Math.floor(ms / 60000) + ' min' : (ms / 3600000).toFixed(1) + ' h';
  const opt = (v, cls) => v == null ? el('td', { class: 'num' }, '-') : num(v, cls);
  function renderFleet(f) {
    if (!f) return;
    $('fleetNote').textContent = !f.supported ? 'No broker view: ' + f.reason : f.error ? 'The last inspection failed: ' + f.error : '';
    $('fleetAt').textContent = f.takenAt ? 'every ' + f.intervalMs / 1000 + ' s, read ' + new Date(f.takenAt).toLocaleTimeString() : '';
    fill($('fleetGroups'), f.groups, (g) => el('tr', { 'data-testid': 'fleet-' + g.type + '/' + g.group, class: g.consumers === 0 ? 'bad' : '' },
      el('td', {}, g.type), el('td', {}, g.group), num(g.backlog, g.growing ? 'warn' : ''),
      el('td', { class: g.growing ? 'warn' : '' }, g.growing ? '▲ growing (+' + fmt(g.trend) + ')' : g.trend < 0 ? '▼ ' + fmt(g.trend) : ''),
      opt(g.inFlight), el('td', { class: 'num' }, age(g.oldestWaitingMs)),
      g.consumers === 0 ? el('td', { class: 'num bad' }, 'no consumers') : opt(g.consumers), opt(g.retryBacklog, g.retryBacklog ? 'warn' : ''),
      el('td', { class: 'mono' }, (g.partitions || []).map((p) => 'p' + p.partition + ': ' + fmt(p.lag)).join('  '))),
      f.supported ? 'no groups on the broker' : 'not available for this driver');
    fill($('fleetDead'), f.deadLetters, (d) => el('tr', { 'data-testid': 'fleet-dlq-' + d.type }, el('td', {}, d.type), num(d.count, d.count ? 'bad' : ''), el('td', { class: 'num' }, age(d.oldestAgeMs))),
      f.supported ? 'no dead-letter types' : 'not available for this driver');
  }
  function select(type) { selected = type; selectedStored = -1; if (state) render(state); }
  async function loadDetail() {
    const type = selected;
    const current = state.deadLetters.find((d) => d.type === type);
    selectedStored = current ? current.stored : -1;
    const records = await (await fetch('api/dead-letters/' + encodeURIComponent(type))).json();
    if (type !== selected) return;
    const rows = records.map((r) => el('tr', { 'data-testid': 'dead-letter-row' },
      el('td', { class: 'mono' }, r.id), el('td', {}, r.originalType || '?'), el('td', { class: 'bad' }, (r.error || '').slice(0, 80)),
      num(r.attempts ?? 0), el('td', {}, new Date(r.timestamp).toLocaleTimeString()),
      el('td', {}, el('details', {}, el('summary', {}, 'body & headers'), el('pre', {}, JSON.stringify(r.body, null, 2)), el('pre', {}, JSON.stringify(r.headers, null, 2)))),
      el('td', {}, el('button', { 'data-testid': 'replay-' + r.id, onclick: () => replay(type, r.id), ...(r.undecodable || state.readOnly ? { disabled: '' } : {}) }, 'Replay'))));
    $('dlqDetail').replaceChildren(el('h2', {}, type + ' (newest first)'), el('table', {}, el('thead', {}, el('tr', {}, ...['id', 'original type', 'error', 'attempts', 'dead-lettered', '', ''].map((h) => el('th', {}, h)))), el('tbody', {}, ...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: '7' }, 'empty'))]))));
  }
  async function replay(type, id) {
    const response = await fetch('api/dead-letters/' + encodeURIComponent(type) + '/replay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(id ? { id } : {}) });
    const result = await response.json();
    toast(response.ok ? 'replayed ' + result.replayed + ' to the original type' : 'replay failed: ' + result.error);
    selectedStored = -1;
    if (selected === type) loadDetail();
  }
  function drawChart(series) {
    const canvas = $('chart'), ctx = canvas.getContext('2d');
    const w = canvas.width = canvas.clientWidth * devicePixelRatio, h = canvas.height = 140 * devicePixelRatio;
    ctx.clearRect(0, 0, w, h);
    const max = Math.max(1, ...series.map((p) => Math.max(p.published, p.handled)));
    ctx.fillStyle = '#8b9bab'; ctx.font = 11 * devicePixelRatio + 'px system-ui'; ctx.fillText(fmt(max) + '/s', 4, 12 * devicePixelRatio);
    const line = (key, color) => {
      ctx.strokeStyle = color; ctx.lineWidth = 2 * devicePixelRatio; ctx.beginPath();
      series.forEach((p, i) => { const x = (w * (i + 60 - series.length)) / 59, y = h - 4 - ((h - 20) * p[key]) / max; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      ctx.stroke();
    };
    line('published', '#5aa9f5'); line('handled', '#4cc38a'); line('failed', '#ef6461');
  }
  function connect() {
    const source = new EventSource('api/events');
    source.addEventListener('stats', (e) => { $('live').className = 'pill on'; $('live').textContent = '● live'; render(JSON.parse(e.data)); });
    source.onerror = () => { $('live').className = 'pill off'; $('live').textContent = '● reconnecting'; };
  }
  connect();
})();
</script>
</body>
</html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

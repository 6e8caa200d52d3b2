// coffee-rt live dashboard.
//
// One WebSocket to /ws/dashboard; the server pushes a full snapshot whenever the metrics change
// (at most ~10 a second) and a heartbeat when idle. The socket reconnects by itself with
// exponential backoff and the header shows its state.
//
// Escaping rule: every value that comes from data (drink and store names, order ids, numbers)
// reaches the DOM through `textContent` on elements created here. Never markup.
'use strict';

(() => {
  const VERSIONS = [
    { key: 'v1', title: 'v1 · batch', subtitle: 'API → PostgreSQL; the aggregator recomputes Redis on an interval',
      note: 'Honest: includes the wait for the next aggregator run.' },
    { key: 'v2', title: 'v2 · Redis Stream', subtitle: 'API → Redis Stream → worker → PostgreSQL + Redis', note: '' },
    { key: 'v3', title: 'v3 · Kafka', subtitle: 'API → Kafka → processor → PostgreSQL + Redis', note: '' },
  ];
  const COLORS = { v1: '#e0a458', v2: '#5fb3b3', v3: '#a28fd0' };
  const MAX_BACKOFF_MS = 10000;
  const SILENCE_MS = 40000; // two missed heartbeats: the socket is dead even if not closed

  const panels = {};

  // ---- formatting -------------------------------------------------------------------------

  /** Integer cents to "$1,234.56" without ever going through a float. */
  function money(cents) {
    const n = Math.trunc(Number(cents) || 0);
    const sign = n < 0 ? '-' : '';
    const abs = Math.abs(n);
    const dollars = Math.floor(abs / 100).toLocaleString('en-US');
    return `${sign}$${dollars}.${String(abs % 100).padStart(2, '0')}`;
  }

  function count(n) {
    return (Number(n) || 0).toLocaleString('en-US');
  }

  function millis(v) {
    if (v === null || v === undefined) return '–';
    if (v < 10) return `${v.toFixed(1)} ms`;
    if (v < 1000) return `${Math.round(v)} ms`;
    return `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`;
  }

  function clock(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString('en-GB', { hour12: false });
  }

  // ---- DOM helpers (textContent only) -----------------------------------------------------

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function q(root, selector) {
    return root.querySelector(selector);
  }

  function setText(root, selector, text) {
    q(root, selector).textContent = String(text);
  }

  // ---- layout -----------------------------------------------------------------------------

  function build() {
    const main = document.getElementById('versions');
    const template = document.getElementById('version-template');
    for (const v of VERSIONS) {
      const node = template.content.firstElementChild.cloneNode(true);
      node.id = `version-${v.key}`;
      node.dataset.version = v.key;
      setText(node, '.title', v.title);
      setText(node, '.subtitle', v.subtitle);
      setText(node, '.note', v.note);
      main.appendChild(node);
      panels[v.key] = { node, chart: null };
    }
    window.addEventListener('resize', () => {
      for (const p of Object.values(panels)) {
        if (p.chart) p.chart.setSize(chartSize(p.node));
      }
    });
  }

  function chartSize(node) {
    return { width: Math.max(200, q(node, '.chart').clientWidth), height: 150 };
  }

  // ---- rendering --------------------------------------------------------------------------

  function render(snapshot) {
    for (const v of VERSIONS) {
      const data = snapshot.versions && snapshot.versions[v.key];
      if (data) renderVersion(panels[v.key], v.key, data, snapshot);
    }
    const updated = document.getElementById('updated');
    updated.textContent = `updated ${clock(snapshot.generated_at)} · #${snapshot.seq}`;
    document.body.dataset.seq = String(snapshot.seq);
  }

  function renderVersion(panel, key, d, snapshot) {
    const node = panel.node;
    setText(node, '.orders', count(d.total_orders));
    setText(node, '.revenue', money(d.total_revenue_cents));

    const f = d.freshness || {};
    setText(node, '.p50', millis(f.p50_ms));
    setText(node, '.p99', millis(f.p99_ms));
    setText(node, '.samples', f.count
      ? `${count(f.count)} orders in ${snapshot.freshness_window_s} s`
      : `no orders made visible by this process in the last ${snapshot.freshness_window_s} s`);

    renderChart(panel, key, snapshot.rates);

    const hour = d.current_hour || {};
    setText(node, '.hour', hourLabel(hour.name));
    setText(node, '.hour-figures', `${count(hour.count)} orders · ${money(hour.revenue_cents)}`);

    const top = (d.top_drinks || []).map((t) => el('li', '', `${t.name} — ${count(t.count)}`));
    q(node, '.top-drinks').replaceChildren(...(top.length ? top : [el('li', 'empty', 'no orders yet')]));

    renderBars(q(node, '.drinks'), d.drinks || []);
    renderBars(q(node, '.stores'), d.stores || []);
    renderRecent(q(node, '.recent tbody'), d.recent || []);
  }

  function hourLabel(bucket) {
    // "2025-01-15T10" -> "10:00–11:00 UTC"
    const m = /T(\d{2})$/.exec(bucket || '');
    if (!m) return '';
    const h = Number(m[1]);
    return `${String(h).padStart(2, '0')}:00–${String((h + 1) % 24).padStart(2, '0')}:00 UTC`;
  }

  function renderBars(container, items) {
    const sorted = [...items].sort((a, b) => b.revenue_cents - a.revenue_cents || (a.name < b.name ? -1 : 1));
    const max = Math.max(1, ...sorted.map((i) => i.revenue_cents));
    const rows = sorted.map((i) => {
      const row = el('div', 'bar-row');
      const name = el('span', 'name', i.name);
      name.title = i.name;
      const track = el('div', 'track');
      const fill = el('div', 'fill');
      fill.style.width = `${Math.max(0, (100 * i.revenue_cents) / max).toFixed(1)}%`;
      track.appendChild(fill);
      row.append(name, track, el('span', 'amount', `${money(i.revenue_cents)} · ${count(i.count)}`));
      return row;
    });
    container.replaceChildren(...(rows.length ? rows : [el('div', 'empty', 'no orders yet')]));
  }

  function renderRecent(tbody, recent) {
    const rows = recent.map((r) => {
      const tr = el('tr');
      tr.append(el('td', '', clock(r.accepted_at)), el('td', '', r.drink), el('td', '', r.store), el('td', 'num', money(r.price_cents)));
      tr.title = r.order_id;
      return tr;
    });
    if (!rows.length) {
      const tr = el('tr');
      const td = el('td', 'empty', 'no orders yet');
      td.colSpan = 4;
      tr.appendChild(td);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
  }

  function renderChart(panel, key, rates) {
    if (typeof uPlot !== 'function' || !rates) return;
    const ys = rates[key] || [];
    const xs = ys.map((_, i) => rates.start + i * rates.step_s);
    const data = [xs, ys];
    if (!panel.chart) {
      const opts = {
        ...chartSize(panel.node),
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, Math.ceil(max * 1.15))] } },
        axes: [
          { stroke: '#8b93a1', grid: { stroke: '#2c313a' }, ticks: { stroke: '#2c313a' } },
          { stroke: '#8b93a1', grid: { stroke: '#2c313a' }, ticks: { stroke: '#2c313a' }, size: 45 },
        ],
        series: [{}, { label: 'orders/s', stroke: COLORS[key], fill: `${COLORS[key]}33`, width: 2, points: { show: false } }],
      };
      panel.chart = new uPlot(opts, data, q(panel.node, '.chart'));
    } else {
      panel.chart.setData(data);
    }
  }

  // ---- connection -------------------------------------------------------------------------

  let backoff = 500;
  let lastMessage = 0;
  let socket = null;
  let countdown = null;

  function setConnection(state, text) {
    const badge = document.getElementById('conn');
    badge.className = `conn ${state}`;
    document.getElementById('conn-text').textContent = text;
    document.body.dataset.conn = state;
  }

  function connect() {
    clearInterval(countdown);
    setConnection('connecting', 'connecting…');
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws/dashboard`;
    const ws = new WebSocket(url);
    socket = ws;
    let closed = false;
    ws.onopen = () => {
      backoff = 500;
      lastMessage = Date.now();
      setConnection('live', 'live');
    };
    ws.onmessage = (event) => {
      lastMessage = Date.now();
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (msg.type === 'snapshot') render(msg);
    };
    ws.onclose = () => {
      if (closed) return;
      closed = true;
      if (socket === ws) scheduleReconnect();
    };
    ws.onerror = () => ws.close();
  }

  function scheduleReconnect() {
    const delay = Math.round(backoff * (0.75 + Math.random() * 0.5));
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    const due = Date.now() + delay;
    const show = () => setConnection('down', `disconnected · retrying in ${Math.max(0, Math.ceil((due - Date.now()) / 1000))} s`);
    show();
    countdown = setInterval(show, 250);
    setTimeout(connect, delay);
  }

  setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastMessage > SILENCE_MS) socket.close();
  }, 5000);

  build();
  connect();
})();

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
    // A frame the server could not refresh (Redis unreachable) carries `stale_since`, a time in
    // the café's zone with its offset; its clock part is shown as sent.
    if (snapshot.stale_since) {
      setConnection('stale', `stale since ${snapshot.stale_since.slice(11, 19)} (${snapshot.timezone})`);
    } else if (document.body.dataset.conn === 'stale') {
      setConnection('live', 'live');
    }
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
    const projection = q(node, '.projection');
    projection.hidden = !d.rebuilding_since;
    projection.textContent = d.rebuilding_since ? 'rebuilding from PostgreSQL…' : '';
    node.dataset.projection = d.rebuilding_since ? 'rebuilding' : 'live';
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

  // ---- history tab ------------------------------------------------------------------------
  //
  // Three questions to GET /api/history, asked when the tab opens (and on Refresh). Every
  // bucket start comes from the server in the café's time zone with its offset
  // ("2025-10-26T02:00:00+01:00"); the page reads the local date and hour straight from that
  // string and never converts a time zone itself. Calendar steps (the day before, the Monday
  // of a week) are done on bare dates in UTC arithmetic, where no zone can interfere.

  const PALETTE = ['#5fb3b3', '#e0a458', '#a28fd0', '#e05d5d', '#4caf50', '#6c8ebf', '#d98cb3', '#b5b35f'];
  const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const hist = { loading: false, revenueChart: null, revenueData: null };

  /** "2025-10-26T02:00:00+01:00" -> "2025-10-26", the local date as the server wrote it. */
  function localDate(start) {
    return String(start).slice(0, 10);
  }

  /** "2025-10-26T02:00:00+01:00" -> 2, the local hour as the server wrote it. */
  function localHour(start) {
    return Number(String(start).slice(11, 13));
  }

  function parseDate(date) {
    const [y, m, d] = date.split('-').map(Number);
    return Date.UTC(y, m - 1, d);
  }

  /** A bare calendar date `n` days on ("2025-03-30", 1 -> "2025-03-31"). */
  function addDays(date, n) {
    return new Date(parseDate(date) + n * 86400000).toISOString().slice(0, 10);
  }

  /** 0 for Monday … 6 for Sunday, of a bare calendar date. */
  function weekday(date) {
    return (new Date(parseDate(date)).getUTCDay() + 6) % 7;
  }

  function dateRange(first, last) {
    const out = [];
    for (let d = first; d <= last && out.length < 4000; d = addDays(d, 1)) out.push(d);
    return out;
  }

  /** The local date of the last second of an answer's range (its `to` is exclusive). */
  function lastDate(answer) {
    const to = String(answer.to);
    return to.slice(11, 19) === '00:00:00' ? addDays(localDate(to), -1) : localDate(to);
  }

  function colorOf(keys, key) {
    return PALETTE[Math.max(0, keys.indexOf(key)) % PALETTE.length];
  }

  function swatch(color) {
    const s = el('span', 'swatch');
    s.style.backgroundColor = color;
    return s;
  }

  async function fetchHistory(params) {
    const qs = new URLSearchParams(params).toString();
    const res = await fetch(`/api/history?${qs}`, { headers: { accept: 'application/json' } });
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
    return body;
  }

  async function loadHistory() {
    if (hist.loading) return;
    hist.loading = true;
    document.body.dataset.history = 'loading';
    const status = document.getElementById('history-status');
    status.textContent = 'loading…';
    try {
      const days = await fetchHistory({ bucket: 'day', group: 'store' });
      const last = lastDate(days);
      const [weeks, hours] = await Promise.all([
        fetchHistory({ bucket: 'week', group: 'drink', from: addDays(addDays(last, -weekday(last)), -77), to: days.to }),
        fetchHistory({ bucket: 'hour', from: addDays(last, -27), to: days.to }),
      ]);
      document.getElementById('history-meta').textContent =
        `from ${days.source} · time zone ${days.timezone} · ${localDate(days.from)} to ${last}`;
      renderRevenue(days);
      renderMix(weeks);
      renderHeat(hours);
      status.textContent = `read ${clock(new Date().toISOString())}`;
      document.body.dataset.history = 'ready';
    } catch (e) {
      status.textContent = `history unavailable: ${e.message}`;
      document.body.dataset.history = 'error';
    } finally {
      hist.loading = false;
    }
  }

  /** Revenue per store per day: one line per store, a zero where a day had no orders. */
  function renderRevenue(answer) {
    const panel = document.getElementById('history-revenue');
    const days = dateRange(localDate(answer.from), lastDate(answer));
    const stores = [...new Set(answer.buckets.map((b) => b.key))].sort();
    const index = new Map(days.map((d, i) => [d, i]));
    const cents = stores.map(() => days.map(() => 0));
    const totals = stores.map(() => ({ revenue: 0, orders: 0, days: 0 }));
    for (const b of answer.buckets) {
      const s = stores.indexOf(b.key);
      const i = index.get(localDate(b.start));
      if (s < 0 || i === undefined) continue;
      cents[s][i] += b.revenue_cents;
      totals[s].revenue += b.revenue_cents;
      totals[s].orders += b.orders;
      totals[s].days += 1;
    }
    const rows = stores.map((store, s) => {
      const tr = el('tr');
      tr.dataset.store = store;
      const name = el('td', 'name');
      name.append(swatch(colorOf(stores, store)), document.createTextNode(store));
      tr.append(name, el('td', 'num revenue', money(totals[s].revenue)), el('td', 'num orders', count(totals[s].orders)),
        el('td', 'num days', count(totals[s].days)));
      return tr;
    });
    if (!rows.length) {
      const tr = el('tr');
      const td = el('td', 'empty', 'no orders in these 30 days');
      td.colSpan = 4;
      tr.appendChild(td);
      rows.push(tr);
    }
    q(panel, '.legend tbody').replaceChildren(...rows);
    panel.dataset.days = String(days.length);

    const chartBox = q(panel, '.chart');
    if (hist.revenueChart) {
      hist.revenueChart.destroy();
      hist.revenueChart = null;
    }
    chartBox.replaceChildren();
    if (typeof uPlot !== 'function') return;
    // Plotted in dollars (a picture, not a sum); every figure in text is integer cents.
    const data = [days.map((_, i) => i), ...cents.map((series) => series.map((c) => c / 100))];
    const labels = days.map((d) => d.slice(5));
    const axis = { stroke: '#8b93a1', grid: { stroke: '#2c313a' }, ticks: { stroke: '#2c313a' } };
    const opts = {
      width: Math.max(300, chartBox.clientWidth),
      height: 240,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, Math.ceil(max * 1.1))] } },
      axes: [
        { ...axis, values: (_u, splits) => splits.map((i) => (Number.isInteger(i) && labels[i]) || '') },
        { ...axis, size: 60, values: (_u, splits) => splits.map((v) => `$${v}`) },
      ],
      series: [{}, ...stores.map((store) => ({ label: store, stroke: colorOf(stores, store), width: 2, points: { size: 4 } }))],
    };
    hist.revenueChart = new uPlot(opts, data, chartBox);
  }

  /** The drink mix per ISO week: one column per week, one segment per drink, stacked. */
  function renderMix(answer) {
    const panel = document.getElementById('history-mix');
    const first = localDate(answer.from);
    const lastMonday = addDays(lastDate(answer), -weekday(lastDate(answer)));
    const weeks = [];
    for (let m = addDays(first, -weekday(first)); m <= lastMonday && weeks.length < 600; m = addDays(m, 7)) weeks.push(m);
    const drinks = [...new Set(answer.buckets.map((b) => b.key))].sort();
    const perWeek = new Map(weeks.map((w) => [w, new Map()]));
    const totals = new Map(drinks.map((d) => [d, 0]));
    for (const b of answer.buckets) {
      const w = perWeek.get(localDate(b.start));
      if (!w) continue;
      w.set(b.key, (w.get(b.key) || 0) + b.orders);
      totals.set(b.key, totals.get(b.key) + b.orders);
    }
    const weekTotal = (w) => [...perWeek.get(w).values()].reduce((a, n) => a + n, 0);
    const max = Math.max(1, ...weeks.map(weekTotal));
    const columns = weeks.map((w) => {
      const col = el('div', 'week');
      col.dataset.week = w;
      const total = weekTotal(w);
      col.dataset.orders = String(total);
      const column = el('div', 'column');
      for (const drink of drinks) {
        const n = perWeek.get(w).get(drink) || 0;
        if (!n) continue;
        const seg = el('div', 'segment');
        seg.dataset.drink = drink;
        seg.dataset.orders = String(n);
        seg.style.height = `${((100 * n) / max).toFixed(2)}%`;
        seg.style.backgroundColor = colorOf(drinks, drink);
        seg.title = `${drink}: ${count(n)} orders (${Math.round((100 * n) / total)} %) · week of ${w}`;
        column.appendChild(seg);
      }
      col.append(el('div', 'total', total ? count(total) : ''), column, el('div', 'label', w.slice(5)));
      return col;
    });
    q(panel, '.stack').replaceChildren(...columns);
    const all = [...totals.values()].reduce((a, n) => a + n, 0);
    const rows = drinks.map((drink) => {
      const tr = el('tr');
      tr.dataset.drink = drink;
      const name = el('td', 'name');
      name.append(swatch(colorOf(drinks, drink)), document.createTextNode(drink));
      const share = all ? `${((100 * totals.get(drink)) / all).toFixed(1)} %` : '–';
      tr.append(name, el('td', 'num orders', count(totals.get(drink))), el('td', 'num share', share));
      return tr;
    });
    if (!rows.length) {
      const tr = el('tr');
      const td = el('td', 'empty', 'no orders in these weeks');
      td.colSpan = 3;
      tr.appendChild(td);
      rows.push(tr);
    }
    q(panel, '.legend tbody').replaceChildren(...rows);
  }

  /** Hour of day × weekday: hour buckets folded by the local date and hour of their start. */
  function renderHeat(answer) {
    const panel = document.getElementById('history-heat');
    const cells = WEEKDAYS.map(() => new Array(24).fill(0));
    for (const b of answer.buckets) {
      cells[weekday(localDate(b.start))][localHour(b.start)] += b.orders;
    }
    const max = Math.max(1, ...cells.flat());
    const head = el('tr');
    head.appendChild(el('th', 'day', ''));
    for (let h = 0; h < 24; h++) head.appendChild(el('th', '', h % 3 === 0 ? String(h).padStart(2, '0') : ''));
    q(panel, '.heat thead').replaceChildren(head);
    const rows = WEEKDAYS.map((name, d) => {
      const tr = el('tr');
      tr.appendChild(el('th', 'day', name));
      for (let h = 0; h < 24; h++) {
        const n = cells[d][h];
        const td = el('td', 'cell', n ? count(n) : '');
        td.dataset.weekday = name;
        td.dataset.hour = String(h);
        td.dataset.orders = String(n);
        td.title = `${name} ${String(h).padStart(2, '0')}:00–${String(h + 1).padStart(2, '0')}:00 · ${count(n)} orders`;
        if (n) td.style.backgroundColor = `rgba(95, 179, 179, ${(0.15 + (0.85 * n) / max).toFixed(3)})`;
        tr.appendChild(td);
      }
      return tr;
    });
    q(panel, '.heat tbody').replaceChildren(...rows);
  }

  function showTab(name) {
    const isHistory = name === 'history';
    document.getElementById('versions').hidden = isHistory;
    document.getElementById('history').hidden = !isHistory;
    document.getElementById('tab-live').setAttribute('aria-selected', String(!isHistory));
    document.getElementById('tab-history').setAttribute('aria-selected', String(isHistory));
    document.body.dataset.tab = isHistory ? 'history' : 'live';
    q(document, 'header.top h1 .muted').textContent = isHistory ? 'history' : 'live';
    document.title = `coffee-rt · ${isHistory ? 'history' : 'live'}`;
    if (location.hash !== (isHistory ? '#history' : '')) {
      window.history.replaceState(null, '', isHistory ? '#history' : location.pathname + location.search);
    }
    if (isHistory) {
      loadHistory();
    } else {
      // Charts sized while hidden are 0 wide: size the live ones again.
      for (const p of Object.values(panels)) if (p.chart) p.chart.setSize(chartSize(p.node));
    }
  }

  function buildTabs() {
    document.getElementById('tab-live').addEventListener('click', () => showTab('live'));
    document.getElementById('tab-history').addEventListener('click', () => showTab('history'));
    document.getElementById('history-refresh').addEventListener('click', () => loadHistory());
    window.addEventListener('resize', () => {
      const box = q(document.getElementById('history-revenue'), '.chart');
      if (hist.revenueChart && !document.getElementById('history').hidden) {
        hist.revenueChart.setSize({ width: Math.max(300, box.clientWidth), height: 240 });
      }
    });
    if (location.hash === '#history') showTab('history');
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
      if (socket === ws) checkAccessThenReconnect();
    };
    ws.onerror = () => ws.close();
  }

  // A browser never tells a page why a WebSocket handshake failed. A 401 from /api/dashboard
  // says the read-token cookie is missing or the token has changed: retrying cannot help, and
  // the page says how to get in again (the cookie is HttpOnly; this script never sees the token).
  function checkAccessThenReconnect() {
    fetch('/api/dashboard', { headers: { accept: 'application/json' } })
      .then((res) => {
        if (res.status === 401) setConnection('down', 'not authorised · open this page once as /?token=<read token>');
        else scheduleReconnect();
      })
      .catch(() => scheduleReconnect());
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
  buildTabs();
  connect();
})();

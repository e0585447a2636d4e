// The marketlake dashboard: reads the JSON API of the server that serves this page.
"use strict";

const LC = window.LightweightCharts;
const STAGES = ["fetch_history", "consume_history", "process", "load_warehouse", "success"];
const DAILY = new Set(["1d", "1w", "1mo"]);
const $ = (id) => document.getElementById(id);
const state = { symbol: null, live: null, liveBars: new Map(), liveCount: 0 };

class Unauthorised extends Error {}

function headers() {
  const token = sessionStorage.getItem("marketlake-token");
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function getJSON(url) {
  const response = await fetch(url, { headers: headers() });
  if (response.status === 401) throw new Unauthorised("a token is needed");
  const body = await response.json();
  if (!response.ok) {
    const error = new Error(body.error ? body.error.message : response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

// Every row of a paged endpoint, following the `next` links.
async function allRows(url) {
  const rows = [];
  for (let next = url; next; ) {
    const page = await getJSON(next);
    rows.push(...page.data);
    next = page.next;
  }
  return rows;
}

const seconds = (iso) => Math.floor(Date.parse(iso) / 1000);

function say(text) { $("status").textContent = text || ""; }

function chartOptions(height) {
  return {
    autoSize: true,
    height,
    layout: { background: { color: "#ffffff" }, textColor: "#1d2330", panes: { separatorColor: "#e5e7eb" } },
    grid: { vertLines: { color: "#f3f4f6" }, horzLines: { color: "#f3f4f6" } },
    timeScale: { timeVisible: true, secondsVisible: false },
    rightPriceScale: { borderColor: "#e5e7eb" },
  };
}

// The main chart: candles and volume in pane 0, RSI in pane 1, MACD in pane 2.
function buildMainChart() {
  const chart = LC.createChart($("chart"), chartOptions(620));
  const candles = chart.addSeries(LC.CandlestickSeries, {
    upColor: "#16a34a", downColor: "#dc2626", wickUpColor: "#16a34a", wickDownColor: "#dc2626",
    borderVisible: false,
  });
  const volume = chart.addSeries(LC.HistogramSeries, {
    priceScaleId: "volume", priceFormat: { type: "volume" }, color: "#93c5fd",
  });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  const line = (color, pane, extra) =>
    chart.addSeries(LC.LineSeries, { color, lineWidth: 1, priceLineVisible: false,
      lastValueVisible: false, ...extra }, pane);
  const overlays = {
    sma: [line("#f59e0b", 0)],
    ema: [line("#8b5cf6", 0)],
    bollinger: [line("#64748b", 0, { lineStyle: 2 }), line("#64748b", 0),
      line("#64748b", 0, { lineStyle: 2 })],
  };
  // any column of indicators_1d (the configured set), on a scale of its own
  const extra = line("#db2777", 0, { priceScaleId: "left", lastValueVisible: true });
  const rsi = line("#0ea5e9", 1, { lastValueVisible: true });
  const macd = line("#2563eb", 2, { lastValueVisible: true });
  const signal = line("#f97316", 2);
  const histogram = chart.addSeries(LC.HistogramSeries, { priceLineVisible: false,
    lastValueVisible: false }, 2);
  const markers = LC.createSeriesMarkers(candles, []);
  const panes = chart.panes();
  if (panes.length === 3) {  // prices take most of the height; RSI and MACD share the rest
    panes[0].setStretchFactor(0.64);
    panes[1].setStretchFactor(0.16);
    panes[2].setStretchFactor(0.2);
  }
  return { chart, candles, volume, overlays, extra, rsi, macd, signal, histogram, markers };
}

function values(rows, column) {
  return rows.filter((r) => r[column] !== null && r[column] !== undefined)
    .map((r) => ({ time: seconds(r.ts), value: r[column] }));
}

// The indicator select offers every column the indicators table holds, whatever the
// [indicators] configuration computes; the chosen one is drawn on the left scale.
function showExtra(main, indicators) {
  const select = $("extra");
  const columns = indicators.length
    ? Object.keys(indicators[0]).filter((c) => c !== "symbol" && c !== "ts") : [];
  const offered = Array.from(select.options).map((o) => o.value).slice(1);
  if (columns.length && columns.join() !== offered.join()) {
    const chosen = select.value;
    select.length = 1;
    for (const column of columns) select.add(new Option(column, column));
    select.value = columns.includes(chosen) ? chosen : "";
  }
  const points = select.value ? values(indicators, select.value) : [];
  main.extra.setData(points);
  main.chart.applyOptions({ leftPriceScale: { visible: points.length > 0 } });
  document.body.dataset.extraPoints = String(points.length);
}

function actionMarkers(actions, times) {
  // A marker sits on the first bar at or after the ex-date (weekly and monthly bars too).
  const markers = [];
  for (const action of actions) {
    const at = seconds(action.ex_date);
    let time = null;
    for (let i = times.length - 1; i >= 0 && times[i] >= at - 31 * 86400; i -= 1) {
      if (times[i] <= at) { time = times[i]; break; }
    }
    if (time === null) continue;
    const split = action.kind === "split";
    markers.push({
      time, position: split ? "aboveBar" : "belowBar", shape: split ? "arrowDown" : "circle",
      color: split ? "#7c3aed" : "#0891b2",
      text: split ? `S ${action.ratio}:1` : `D ${action.amount}`,
    });
  }
  return markers.sort((a, b) => a.time - b.time);
}

async function drawMain(main) {
  const symbol = state.symbol;
  const interval = $("interval").value;
  const daily = DAILY.has(interval);
  $("adjusted").disabled = !daily;
  const adjusted = daily && $("adjusted").checked;
  $("chart-title").textContent = `${symbol} · ${interval} · ${adjusted ? "adjusted" : "as traded"}`;
  const query = `interval=${interval}&adjusted=${adjusted}` + (daily ? "" : "&order=desc&limit=2000");
  let bars = [];
  try {
    bars = await allRows(`/api/v1/bars/${encodeURIComponent(symbol)}?${query}`);
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  bars.sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
  main.candles.setData(bars.map((b) => ({ time: seconds(b.ts), open: b.open, high: b.high,
    low: b.low, close: b.close })));
  main.volume.setData(bars.map((b) => ({ time: seconds(b.ts), value: b.volume,
    color: b.close >= b.open ? "#86efac" : "#fca5a5" })));
  const indicators = interval === "1d"
    ? await allRows(`/api/v1/indicators/${encodeURIComponent(symbol)}`) : [];
  const show = (name, series, columns) => series.forEach((s, i) =>
    s.setData($(name).checked ? values(indicators, columns[i]) : []));
  show("sma", main.overlays.sma, ["sma_20"]);
  show("ema", main.overlays.ema, ["ema_20"]);
  show("bollinger", main.overlays.bollinger, ["bb_upper", "bb_middle", "bb_lower"]);
  showExtra(main, indicators);
  main.rsi.setData(values(indicators, "rsi_14"));
  main.macd.setData(values(indicators, "macd"));
  main.signal.setData(values(indicators, "macd_signal"));
  main.histogram.setData(values(indicators, "macd_hist").map((p) => ({ ...p,
    color: p.value >= 0 ? "#86efac" : "#fca5a5" })));
  const actions = daily ? await allRows(`/api/v1/actions/${encodeURIComponent(symbol)}`) : [];
  main.markers.setMarkers(actionMarkers(actions, bars.map((b) => seconds(b.ts))));
  main.chart.timeScale().fitContent();
  document.body.dataset.bars = String(bars.length);
  document.body.dataset.markers = String(main.markers.markers().length);
}

function buildLiveChart() {
  const chart = LC.createChart($("live"), chartOptions(300));
  const candles = chart.addSeries(LC.CandlestickSeries, {
    upColor: "#16a34a", downColor: "#dc2626", wickUpColor: "#16a34a", wickDownColor: "#dc2626",
    borderVisible: false,
  });
  return { chart, candles };
}

function liveBar(row) {
  return { time: seconds(row.ts), open: row.open, high: row.high, low: row.low, close: row.close };
}

async function loadLiveHistory(live) {
  state.liveBars = new Map();
  let rows = [];
  try {
    rows = (await getJSON(`/api/v1/bars/${encodeURIComponent(state.symbol)}?interval=1m&order=desc&limit=500`)).data;
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  for (const row of rows) state.liveBars.set(seconds(row.ts), liveBar(row));
  live.candles.setData([...state.liveBars.values()].sort((a, b) => a.time - b.time));
  live.chart.timeScale().fitContent();
  $("live-status").textContent = rows.length ? "" : "(no 1-minute bars yet: start marketlake stream)";
}

function applyLiveBar(live, row) {
  if (row.symbol !== state.symbol) return;
  const bar = liveBar(row);
  const last = state.liveBars.size ? Math.max(...state.liveBars.keys()) : -Infinity;
  state.liveBars.set(bar.time, bar);
  if (bar.time >= last) live.candles.update(bar);
  else live.candles.setData([...state.liveBars.values()].sort((a, b) => a.time - b.time));
  state.liveCount += 1;
  document.body.dataset.liveBars = String(state.liveCount);
  $("live-status").textContent = `last update ${new Date().toLocaleTimeString()} · bar ${row.ts}`;
}

// Reads the Server-Sent Events of /api/v1/live with fetch, so the token header can be sent.
async function followLive(live) {
  for (;;) {
    try {
      const response = await fetch("/api/v1/live", { headers: headers() });
      if (response.status === 401) throw new Unauthorised("a token is needed");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let kind = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) kind = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (kind === "bar" && data) applyLiveBar(live, JSON.parse(data));
        }
      }
    } catch (error) {
      if (error instanceof Unauthorised) { askToken(); return; }
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
}

async function drawRuns() {
  const rows = (await getJSON("/api/v1/runs?limit=500")).data;
  const runs = new Map();
  for (const row of rows) {
    if (!runs.has(row.run_id)) runs.set(row.run_id, { started: row.started_at, stages: {} });
    const run = runs.get(row.run_id);
    run.stages[row.stage] = row;
    if (row.started_at && (!run.started || row.started_at < run.started)) run.started = row.started_at;
  }
  const head = $("runs").tHead;
  head.innerHTML = "";
  const titles = head.insertRow();
  for (const title of ["Run", "Started (UTC)", ...STAGES]) {
    const th = document.createElement("th");
    th.textContent = title;
    titles.appendChild(th);
  }
  const body = $("runs").tBodies[0];
  body.innerHTML = "";
  for (const [id, run] of [...runs].slice(0, 20)) {
    const tr = body.insertRow();
    cell(tr, id);
    cell(tr, run.started ? run.started.replace("T", " ").slice(0, 19) : "");
    for (const stage of STAGES) {
      const record = run.stages[stage];
      cell(tr, record ? `${record.status}${record.duration_s != null ? ` ${record.duration_s.toFixed(2)} s` : ""}` : "",
        record ? record.status : "");
    }
  }
}

async function drawQuality() {
  const rows = await allRows(`/api/v1/quality/${encodeURIComponent(state.symbol)}`);
  const counts = {};
  for (const row of rows) counts[row.check] = (counts[row.check] || 0) + 1;
  $("quality-summary").textContent = rows.length
    ? Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ") : "no findings";
  const body = $("quality").tBodies[0];
  body.innerHTML = "";
  for (const row of rows.slice(0, 100)) {
    const tr = body.insertRow();
    cell(tr, row.ts.slice(0, 10) + (row.ts_end ? ` … ${row.ts_end.slice(0, 10)}` : ""));
    cell(tr, row.check);
    cell(tr, row.reason || "");
    cell(tr, row.detail || "");
  }
}

function askToken() {
  $("token-form").hidden = false;
  say("this server needs a token");
}

async function refresh(main, live) {
  try {
    say("");
    await drawMain(main);
    await loadLiveHistory(live);
    await drawQuality();
    await drawRuns();
    document.body.dataset.ready = "true";
  } catch (error) {
    if (error instanceof Unauthorised) askToken();
    else say(error.message);
  }
}

async function start() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("marketlake-token", $("token").value);
    window.location.reload();
  });
  const main = buildMainChart();
  const live = buildLiveChart();
  let symbols;
  try {
    symbols = (await getJSON("/api/v1/symbols")).data.map((r) => r.symbol);
  } catch (error) {
    if (error instanceof Unauthorised) askToken(); else say(error.message);
    return;
  }
  const select = $("symbol");
  for (const symbol of symbols) select.add(new Option(symbol, symbol));
  const wanted = new URLSearchParams(window.location.search).get("symbol");
  state.symbol = symbols.includes(wanted) ? wanted : symbols[0];
  select.value = state.symbol;
  if (!state.symbol) { say("no symbols yet: run marketlake run"); return; }
  select.addEventListener("change", () => { state.symbol = select.value; refresh(main, live); });
  for (const id of ["interval", "adjusted", "sma", "ema", "bollinger", "extra"]) {
    $(id).addEventListener("change", () => drawMain(main).catch((e) => say(e.message)));
  }
  await refresh(main, live);
  followLive(live);
  setInterval(() => drawRuns().catch(() => {}), 30000);
}

start();

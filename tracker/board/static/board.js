// newsdesk's dashboard: polls the store every second through the JSON API of
// tracker.board.app and draws with uPlot (vendored under static/vendor/uplot).
"use strict";

const POLL_MS = 250;
const FOLLOW_COUNT = 6;
const CURVES = ["train/loss", "val/loss", "val/acc"];
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777",
  "#65a30d", "#7c3aed", "#ca8a04", "#0f766e", "#be123c", "#4338ca", "#a16207", "#15803d"];
const MARKER_TEXT = { nan: "NaN", inf: "+inf", "-inf": "-inf" };

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
};
const fmt = (v, digits = 4) => {
  if (v === null || v === undefined) return "-";
  if (typeof v === "string") return MARKER_TEXT[v] || v;
  if (Number.isInteger(v) && Math.abs(v) >= 100) return v.toLocaleString("en");
  return Number(v).toPrecision(digits).replace(/\.?0+$/, "");
};

// ----- state --------------------------------------------------------------------------------
const board = {
  settings: null,
  experiment: null,
  runs: [],            // the experiment's runs, newest first
  versions: {},        // run id -> version the charts were drawn at
  selected: new Set(),
  follow: true,
  x: "step",
  charts: {},          // key -> {plot, curves: {runId: payload}, zoom: {lo, hi} | null}
  colors: {},
  evaluations: {},     // run id -> {version, records}
  live: { last: null, failures: 0 },
};
window.board = board; // the browser tests read what the charts hold

async function api(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function colorOf(runId) {
  if (!(runId in board.colors)) board.colors[runId] = PALETTE[Object.keys(board.colors).length % PALETTE.length];
  return board.colors[runId];
}

function runById(id) { return board.runs.find((r) => r.id === id); }
function runLabel(run) { return run.model && !run.name.includes(run.model) ? `${run.name} (${run.model})` : run.name; }

// ----- URL state ----------------------------------------------------------------------------
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { exp: params.get("exp"), runs: params.get("runs"), x: params.get("x"), tab: params.get("tab") };
}
function writeHash() {
  const params = new URLSearchParams();
  if (board.experiment) params.set("exp", board.experiment);
  if (!board.follow) params.set("runs", [...board.selected].join(","));
  if (board.x !== "step") params.set("x", board.x);
  const tab = document.querySelector(".tab.active")?.dataset.tab;
  if (tab && tab !== "runs") params.set("tab", tab);
  history.replaceState(null, "", "#" + params.toString());
}

// ----- run list -----------------------------------------------------------------------------
function matches(run, query) {
  if (!query) return true;
  return query.split(/\s+/).filter(Boolean).every((term) => {
    const [key, value] = term.includes("=") ? term.split("=", 2) : [null, term];
    if (key === "parent") {
      const parent = runById(run.parent);
      return run.parent === value || (parent && parent.name.includes(value)) || run.id === value;
    }
    if (key) return String(run.tags[key] ?? run.params[key] ?? (key === "model" ? run.model : "")).includes(value);
    const hay = [run.name, run.model, run.status, ...Object.values(run.tags)].join(" ").toLowerCase();
    return hay.includes(value.toLowerCase());
  });
}

function renderRuns() {
  const query = $("filter").value.trim();
  const list = $("runs");
  list.replaceChildren();
  const shown = board.runs.filter((r) => matches(r, query));
  for (const run of shown) {
    const box = el("input", { type: "checkbox", "data-run": run.id });
    box.checked = board.selected.has(run.id);
    box.addEventListener("change", () => {
      board.follow = false; $("follow").checked = false;
      if (box.checked) board.selected.add(run.id); else board.selected.delete(run.id);
      selectionChanged();
    });
    const link = board.settings.mlflow_ui
      ? el("a", { href: `${board.settings.mlflow_ui}/#/experiments/${run.experiment_id}/runs/${run.id}`, target: "_blank", title: "this run in the MLflow UI" }, "MLflow")
      : "";
    const meta = [run.model, run.parent ? `in ${runById(run.parent)?.name || run.parent.slice(0, 8)}` : ""].filter(Boolean).join(" · ");
    list.append(el("li", { class: run.parent ? "child" : "", "data-run": run.id },
      box,
      el("span", { class: "swatch", style: `background:${colorOf(run.id)}` }),
      el("div", {},
        el("div", {}, el("span", { class: "run-name" }, run.name), " ", el("span", { class: `status ${run.status}` }, run.status), " ", link),
        el("div", { class: "run-meta" }, meta),
        run.status === "FAILED" && run.failure_reason ? el("div", { class: "reason" }, run.failure_reason) : "")));
  }
  if (!shown.length) list.append(el("li", { class: "empty" }, board.runs.length ? "no run matches the filter" : "no runs yet"));
}

function followNewest() {
  if (!board.follow) return false;
  const leaves = board.runs.filter((r) => !board.runs.some((c) => c.parent === r.id));
  const wanted = new Set(leaves.slice(0, FOLLOW_COUNT).map((r) => r.id));
  const same = wanted.size === board.selected.size && [...wanted].every((id) => board.selected.has(id));
  board.selected = wanted;
  return !same;
}

// ----- curves -------------------------------------------------------------------------------
function chartKeys() {
  const extra = $("extra-metric").value;
  return extra ? [...CURVES, extra] : CURVES;
}

function ensureChart(key) {
  if (board.charts[key]) return board.charts[key];
  const box = el("div", { class: "chart", "data-key": key },
    el("div", { class: "chart-head" }, el("strong", {}, key), el("span", { class: "count" }, "")),
    el("div", { class: "plot" }),
    el("div", { class: "nonfinite" }));
  $("charts").append(box);
  const chart = { key, box, plot: null, curves: {}, zoom: null, order: [] };
  board.charts[key] = chart;
  return chart;
}

function dropChart(key) {
  const chart = board.charts[key];
  if (!chart) return;
  chart.plot?.destroy();
  chart.box.remove();
  delete board.charts[key];
}

async function fetchCurves(runIds, keys, zoom) {
  if (!runIds.length || !keys.length) return {};
  const width = Math.max(200, Math.round(($("charts").clientWidth || 1000) / 2));
  const q = new URLSearchParams({ experiment: board.experiment, runs: runIds.join(","), keys: keys.join(","), x: board.x, width });
  if (zoom) { q.set("lo", zoom.lo); q.set("hi", zoom.hi); }
  const body = await api(`api/curves?${q}`);
  return body.curves;
}

async function refreshCurves(runIds) {
  const keys = chartKeys();
  for (const key of Object.keys(board.charts)) if (!keys.includes(key)) dropChart(key);
  const selected = [...board.selected];
  for (const key of keys) {
    const chart = ensureChart(key);
    for (const id of Object.keys(chart.curves)) if (!board.selected.has(id)) delete chart.curves[id];
  }
  const full = keys.filter((k) => !board.charts[k].zoom);
  const curves = await fetchCurves(runIds.filter((id) => board.selected.has(id)), full);
  for (const [runId, byKey] of Object.entries(curves)) {
    for (const key of full) {
      if (byKey[key]) board.charts[key].curves[runId] = byKey[key];
      else delete board.charts[key].curves[runId];
    }
  }
  for (const key of keys.filter((k) => board.charts[k].zoom)) await refetchZoomed(board.charts[key]);
  for (const key of keys) draw(board.charts[key], selected);
}

async function refetchZoomed(chart) {
  const curves = await fetchCurves([...board.selected], [chart.key], chart.zoom);
  chart.curves = {};
  for (const [runId, byKey] of Object.entries(curves)) if (byKey[chart.key]) chart.curves[runId] = byKey[chart.key];
}

function draw(chart, order) {
  const ids = order.filter((id) => chart.curves[id]);
  const tables = ids.map((id) => [chart.curves[id].x, chart.curves[id].y]);
  const data = tables.length ? uPlot.join(tables) : [[]];
  let shown = 0, total = 0;
  const notes = [];
  for (const id of ids) {
    const c = chart.curves[id];
    shown += c.shown; total += c.total;
    if (c.markers.length) {
      const first = c.markers[0];
      notes.push(`${runById(id)?.name || id}: ${c.markers.length} non-finite (${MARKER_TEXT[first.kind]} at ${fmt(first.x)})`);
    }
  }
  chart.box.querySelector(".count").textContent = `${shown.toLocaleString("en")} of ${total.toLocaleString("en")} points`;
  chart.box.dataset.shown = shown; chart.box.dataset.total = total;
  chart.box.querySelector(".nonfinite").textContent = notes.join(" · ");
  const sameSeries = chart.plot && chart.order.length === ids.length && chart.order.every((id, i) => id === ids[i]) && chart.plot.__x === board.x;
  if (sameSeries) {
    chart.plot.setData(data, !chart.zoom);
    return;
  }
  chart.plot?.destroy();
  chart.order = ids;
  const width = chart.box.clientWidth - 14;
  const opts = {
    width: Math.max(300, width), height: 260,
    scales: { x: { time: false } },
    axes: [{ label: board.x === "step" ? "global_step" : "seconds since the run started" }, {}],
    series: [{ label: board.x }, ...ids.map((id) => ({
      // A curve of one or two points (the linear baseline's single validation) is drawn as dots.
      label: runLabel(runById(id) || { name: id }), stroke: colorOf(id), width: 1.5, spanGaps: true,
      points: { show: chart.curves[id].x.length <= 2, size: 7, fill: colorOf(id) },
    }))],
    cursor: { drag: { x: true, y: false } },
    hooks: {
      setSelect: [(u) => {
        if (u.select.width < 4) return;
        const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
        chart.zoom = { lo, hi };
        u.setSelect({ width: 0, height: 0 }, false);
        zoomTo(chart);
      }],
      draw: [(u) => drawMarkers(u, chart)],
    },
  };
  chart.plot = new uPlot(opts, data, chart.box.querySelector(".plot"));
  chart.plot.__x = board.x;
  chart.plot.over.addEventListener("dblclick", () => { chart.zoom = null; refreshCurves([...board.selected]); });
}

async function zoomTo(chart) {
  try {
    await refetchZoomed(chart);
    draw(chart, [...board.selected]);
    chart.plot.setScale("x", { min: chart.zoom.lo, max: chart.zoom.hi });
  } catch (error) { showError(error); }
}

// Non-finite values as red triangles on the top edge (a line cannot draw them).
function drawMarkers(u, chart) {
  const ctx = u.ctx;
  ctx.save();
  for (const id of chart.order) {
    const c = chart.curves[id];
    if (!c) continue;
    for (const m of c.markers) {
      const px = u.valToPos(m.x, "x", true);
      if (px < u.bbox.left || px > u.bbox.left + u.bbox.width) continue;
      const top = u.bbox.top + (m.kind === "-inf" ? u.bbox.height - 8 : 2);
      ctx.fillStyle = colorOf(id);
      ctx.strokeStyle = "#b91c1c";
      ctx.beginPath();
      ctx.moveTo(px - 5, top); ctx.lineTo(px + 5, top); ctx.lineTo(px, top + 9); ctx.closePath();
      ctx.fill(); ctx.stroke();
    }
  }
  ctx.restore();
}

// ----- side by side -------------------------------------------------------------------------
async function refreshCompare() {
  const ids = [...board.selected];
  const box = $("compare");
  if (!ids.length) { box.replaceChildren(el("p", { class: "empty" }, "select runs to compare")); return; }
  const c = await api(`api/compare?${new URLSearchParams({ experiment: board.experiment, runs: ids.join(",") })}`);
  const parts = [];
  const paramKeys = Object.keys(c.params);
  parts.push(el("h3", {}, "Params that differ"));
  parts.push(paramKeys.length
    ? el("div", { class: "scroll" }, el("table", { id: "params-diff" }, el("tr", {}, el("th", { class: "text" }, "param"), c.runs.map((r) => el("th", {}, r.name))),
      paramKeys.map((k) => el("tr", {}, el("td", { class: "text" }, k), c.params[k].map((v) => el("td", {}, v ?? "-"))))))
    : el("p", { class: "empty" }, "the selected runs have the same params"));
  parts.push(el("h3", {}, "Final metrics ", el("small", {}, "Δ: against the linear baseline trained on the same data")));
  parts.push(el("table", { id: "finals" },
    el("tr", {}, el("th", { class: "text" }, "run"), c.final_metrics.map((k) => el("th", {}, k)), el("th", { class: "text" }, "baseline")),
    c.rows.map((row) => el("tr", {}, el("td", { class: "text" }, row.name),
      c.final_metrics.map((k) => {
        const m = row.metrics[k];
        const delta = m.delta === null ? "" : ` (${m.delta >= 0 ? "+" : ""}${fmt(m.delta, 3)})`;
        const better = /loss|seconds/.test(k) ? -m.delta : m.delta; // lower is better for these
        return el("td", { class: better > 0 ? "delta-pos" : better < 0 ? "delta-neg" : "" }, fmt(m.value) + delta);
      }),
      el("td", { class: "text" }, row.baseline ? row.baseline.name : "-")))));
  parts.push(el("h3", {}, "Per-class test F1"));
  if (c.classes.length) {
    parts.push(el("table", { id: "f1-heatmap", class: "heat" },
      el("tr", {}, el("th", { class: "text" }, "run"), c.classes.map((name) => el("th", { class: "class-name" }, name))),
      c.f1.map((row, i) => el("tr", {}, el("td", { class: "text" }, c.runs[i].name),
        row.map((v) => el("td", { style: typeof v === "number" ? `background:${heat(v)}` : "" }, fmt(v, 3)))))));
  } else parts.push(el("p", { class: "empty" }, "no per-class F1 yet (logged when a run ends with its test evaluation)"));
  box.replaceChildren(...parts);
}

function heat(v) { // 0 red .. 1 green, light enough for the text on it
  const hue = Math.max(0, Math.min(1, v)) * 120;
  return `hsl(${hue}, 70%, 78%)`;
}

// ----- the classifier over time -------------------------------------------------------------
async function refreshEvaluations(force) {
  const select = $("eval-run");
  const ids = [...board.selected].filter((id) => runById(id));
  const current = select.value;
  select.replaceChildren(...ids.map((id) => el("option", { value: id }, runLabel(runById(id)))));
  if (ids.includes(current)) select.value = current;
  const runId = select.value;
  if (!runId) { renderEvaluation(); return; }
  const run = runById(runId);
  const cached = board.evaluations[runId];
  if (!force && cached && cached.version === run.version) { renderEvaluation(); return; }
  const body = await api(`api/evaluations?${new URLSearchParams({ run: runId })}`);
  const atEnd = !cached || Number($("eval-slider").value) >= cached.records.length - 1;
  board.evaluations[runId] = { version: run.version, records: body.evaluations };
  const slider = $("eval-slider");
  slider.max = Math.max(0, body.evaluations.length - 1);
  if (atEnd) slider.value = slider.max;
  // Other selected runs' last evaluations, to compare against.
  for (const other of ids) {
    if (other === runId || board.evaluations[other]?.version === runById(other).version) continue;
    const b = await api(`api/evaluations?${new URLSearchParams({ run: other })}`);
    board.evaluations[other] = { version: runById(other).version, records: b.evaluations };
  }
  renderBaseOptions(runId, ids);
  renderEvaluation();
}

function renderBaseOptions(runId, ids) {
  const base = $("eval-base");
  const current = base.value;
  const options = [el("option", { value: "previous" }, "the previous evaluation"), el("option", { value: "first" }, "the first evaluation")];
  for (const other of ids) {
    if (other !== runId && board.evaluations[other]?.records.length) {
      options.push(el("option", { value: `run:${other}` }, `${runLabel(runById(other))}, last evaluation`));
    }
  }
  base.replaceChildren(...options);
  if ([...base.options].some((o) => o.value === current)) base.value = current;
}

function renderEvaluation() {
  const runId = $("eval-run").value;
  const records = board.evaluations[runId]?.records || [];
  const slider = $("eval-slider");
  if (!records.length) {
    $("eval-label").textContent = runId ? "no evaluations logged for this run" : "select a run";
    $("confusion").replaceChildren(); $("mistakes").replaceChildren(); $("changes").replaceChildren();
    return;
  }
  const index = Math.min(Number(slider.value), records.length - 1);
  const record = records[index];
  $("eval-label").textContent = `step ${record.step} (${index + 1} of ${records.length}) · val/acc ${fmt(record.val_acc)} · val/loss ${fmt(record.val_loss)}`;
  $("confusion").replaceChildren(confusionTable(record));
  $("mistakes").replaceChildren(mistakesTable(record));
  $("changes").replaceChildren(changesView(record, baseRecord(records, index)));
}

function baseRecord(records, index) {
  const base = $("eval-base").value || "previous";
  if (base === "first") return { record: records[0], label: `step ${records[0].step}` };
  if (base.startsWith("run:")) {
    const other = board.evaluations[base.slice(4)]?.records || [];
    const last = other[other.length - 1];
    return last ? { record: last, label: `${runById(base.slice(4))?.name}, step ${last.step}` } : null;
  }
  return index > 0 ? { record: records[index - 1], label: `step ${records[index - 1].step}` } : null;
}

function confusionTable(record) {
  const labels = record.labels;
  const table = el("table", { id: "confusion-matrix", class: "confusion", "data-step": record.step },
    el("tr", {}, el("th", {}, ""), labels.map((l) => el("th", { class: "class-name" }, l))));
  record.confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    table.append(el("tr", {}, el("th", { class: "text class-name" }, labels[i]),
      row.map((n, j) => el("td", {
        style: `background:${i === j ? `rgba(22,163,74,${0.1 + 0.6 * n / total})` : n ? `rgba(220,38,38,${Math.min(0.75, 0.08 + 2 * n / total)})` : "#fff"}`,
        title: `true ${labels[i]}, predicted ${labels[j]}: ${n}`,
      }, String(n)))));
  });
  return table;
}

function mistakesTable(record) {
  if (!record.misclassified?.length) return el("p", { class: "empty" }, "no misclassified headlines at this step");
  return el("table", { id: "mistakes-table" },
    el("tr", {}, el("th", { class: "text" }, "headline"), el("th", { class: "text" }, "true"), el("th", { class: "text" }, "predicted"), el("th", {}, "probability")),
    record.misclassified.map((m) => el("tr", {}, el("td", { class: "text" }, m.text), el("td", { class: "text" }, record.labels[m.true]),
      el("td", { class: "text" }, record.labels[m.predicted]), el("td", {}, fmt(m.probability, 3)))));
}

function changesView(record, base) {
  if (!base) return el("p", { class: "empty" }, "nothing to compare with yet");
  const labels = record.labels;
  const changes = [];
  record.confusion.forEach((row, i) => row.forEach((n, j) => {
    if (i !== j) changes.push({ pair: `${labels[i]} → ${labels[j]}`, delta: n - (base.record.confusion[i]?.[j] ?? 0), now: n });
  }));
  changes.sort((a, b) => a.delta - b.delta);
  const better = changes.filter((c) => c.delta < 0).slice(0, 5);
  const worse = changes.filter((c) => c.delta > 0).slice(-5).reverse();
  const list = (items, cls) => items.length
    ? el("table", {}, items.map((c) => el("tr", {}, el("td", { class: "text" }, c.pair), el("td", { class: cls }, `${c.delta > 0 ? "+" : ""}${c.delta}`), el("td", {}, `now ${c.now}`))))
    : el("p", { class: "empty" }, "none");
  return el("div", { id: "changes-view" },
    el("p", {}, `against ${base.label}: mistakes per class pair (true → predicted)`),
    el("strong", {}, "fewer mistakes"), list(better, "delta-pos"),
    el("strong", {}, "more mistakes"), list(worse, "delta-neg"));
}

// ----- registry -----------------------------------------------------------------------------
async function refreshRegistry() {
  const body = await api("api/registry");
  const box = $("registry");
  if (!body.models.length) { box.replaceChildren(el("p", { class: "empty" }, "no registered models yet (newsdesk promote registers one)")); return; }
  box.replaceChildren(...body.models.map((m) => el("div", { class: "model" },
    el("h2", {}, m.name, " ", el("small", {}, Object.entries(m.aliases).map(([a, v]) => `@${a} → v${v}`).join("  "))),
    el("table", { class: "versions" },
      el("tr", {}, ["version", "aliases", "registered", "run", "status"].map((h) => el("th", { class: "text" }, h))),
      m.versions.map((v) => el("tr", {},
        el("td", { class: "text" }, `v${v.version}`),
        el("td", { class: "text alias" }, v.aliases.join(", ")),
        el("td", { class: "text" }, v.created ? new Date(v.created).toLocaleString() : "-"),
        el("td", { class: "text" }, v.run_id ? el("a", { href: `#exp=${v.experiment_id}&runs=${v.run_id}`, onclick: () => setTimeout(() => location.reload(), 0) }, v.run_name || v.run_id.slice(0, 8)) : "-"),
        el("td", { class: "text" }, v.status || "")))))));
}

// ----- the loop -----------------------------------------------------------------------------
function showError(error) {
  const box = $("errors");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

async function poll() {
  try {
    const body = await api(`api/runs?${new URLSearchParams({ experiment: board.experiment })}`);
    board.runs = body.runs;
    const selectionMoved = followNewest();
    for (const id of [...board.selected]) if (!runById(id)) board.selected.delete(id);
    const changed = [...board.selected].filter((id) => board.versions[id] !== runById(id).version);
    renderRuns();
    updateExtraMetrics();
    if (changed.length || selectionMoved) {
      await refreshCurves(selectionMoved ? [...board.selected] : changed);
      for (const id of board.selected) board.versions[id] = runById(id).version;
      await refreshCompare();
      await refreshEvaluations(false);
    }
    board.live.last = new Date();
    board.live.failures = 0;
    $("live").textContent = `live · ${board.live.last.toLocaleTimeString()}`;
    $("live").className = "live ok";
    showError(null);
  } catch (error) {
    board.live.failures += 1;
    $("live").textContent = "the store does not answer; retrying";
    $("live").className = "live down";
    if (board.live.failures > 2) showError(error);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function updateExtraMetrics() {
  const select = $("extra-metric");
  const keys = new Set();
  for (const id of board.selected) for (const k of Object.keys(runById(id)?.metrics || {})) if (!CURVES.includes(k)) keys.add(k);
  const current = select.value;
  const wanted = ["", ...[...keys].sort()];
  if (wanted.join("|") === [...select.options].map((o) => o.value).join("|")) return;
  select.replaceChildren(...wanted.map((k) => el("option", { value: k }, k || "—")));
  select.value = wanted.includes(current) ? current : "";
}

function selectionChanged() {
  writeHash();
  board.versions = {};
  renderRuns();
  refreshCurves([...board.selected]).then(refreshCompare).then(() => refreshEvaluations(false))
    .then(() => { for (const id of board.selected) board.versions[id] = runById(id)?.version; })
    .catch(showError);
}

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  $("page-runs").hidden = name !== "runs";
  $("page-registry").hidden = name !== "registry";
  if (name === "registry") refreshRegistry().catch(showError);
  writeHash();
}

async function start() {
  board.settings = await api("api/settings");
  const hash = readHash();
  const select = $("experiment");
  select.replaceChildren(...board.settings.experiments.map((e) => el("option", { value: e.id }, e.name)));
  board.experiment = hash.exp || board.settings.experiment;
  if (board.experiment) select.value = board.experiment;
  if (hash.runs) { board.follow = false; $("follow").checked = false; board.selected = new Set(hash.runs.split(",")); }
  if (hash.x) { board.x = hash.x; $("x-axis").value = hash.x; }
  if (board.settings.mlflow_ui) {
    const link = $("mlflow-link");
    link.hidden = false;
    link.href = `${board.settings.mlflow_ui}/#/experiments/${board.experiment}/runs`;
  }
  select.addEventListener("change", () => {
    board.experiment = select.value; board.selected = new Set(); board.follow = true; $("follow").checked = true;
    for (const key of Object.keys(board.charts)) dropChart(key);
    writeHash();
  });
  $("x-axis").addEventListener("change", () => {
    board.x = $("x-axis").value;
    for (const chart of Object.values(board.charts)) chart.zoom = null;
    selectionChanged();
  });
  $("filter").addEventListener("input", renderRuns);
  $("follow").addEventListener("change", () => { board.follow = $("follow").checked; if (board.follow) { followNewest(); selectionChanged(); } });
  $("select-shown").addEventListener("click", () => {
    board.follow = false; $("follow").checked = false;
    for (const run of board.runs.filter((r) => matches(r, $("filter").value.trim()))) board.selected.add(run.id);
    selectionChanged();
  });
  $("select-none").addEventListener("click", () => { board.follow = false; $("follow").checked = false; board.selected = new Set(); selectionChanged(); });
  $("extra-metric").addEventListener("change", () => refreshCurves([...board.selected]).catch(showError));
  $("eval-run").addEventListener("change", () => refreshEvaluations(true).catch(showError));
  $("eval-slider").addEventListener("input", renderEvaluation);
  $("eval-base").addEventListener("change", renderEvaluation);
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  if (hash.tab) showTab(hash.tab);
  poll();
}

start().catch(showError);

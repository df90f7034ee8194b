// agentry's trace viewer. Everything shown comes from models and tools and is untrusted:
// the DOM is built with text nodes only (no innerHTML anywhere), and the server's
// content security policy forbids any other script.
"use strict";

const main = document.getElementById("main");
const SVGNS = "http://www.w3.org/2000/svg";

// el("tag", {attr: value, onclick: fn}, child, "text", …): children that are strings
// become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return node;
}
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children) node.append(typeof c === "string" ? document.createTextNode(c) : c);
  return node;
}

async function api(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  let body = null;
  try { body = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}
function problem(e) { return el("div", { class: "error", id: "problem" }, String(e.message || e)); }
function secs(us) { return us >= 1e6 ? +(us / 1e6).toFixed(2) + " s" : +(us / 1e3).toFixed(1) + " ms"; }
function when(ms) { return new Date(ms).toLocaleString(); }
function niceStep(raw) {
  const mag = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}
function cut(s, n) { s = String(s ?? ""); return s.length > n ? s.slice(0, n) + "…" : s; }

let live = null; // the open EventSource, closed on every page change
function stopLive() { if (live) { live.close(); live = null; } }

// ---------------------------------------------------------------- runs
const runsState = { q: "", status: "", mode: "", cursors: [], page: null };

function runRow(r, fresh) {
  return el("tr", { class: "run" + (fresh ? " fresh" : ""), "data-id": r.id, onclick: () => { location.hash = "#/run/" + encodeURIComponent(r.id); } },
    el("td", {}, when(r.started_at_ms)),
    el("td", { class: "task", title: r.task }, r.task),
    el("td", {}, r.model),
    el("td", {}, r.mode),
    el("td", {}, el("span", { class: "status " + r.status }, r.status)),
    el("td", { class: "num" }, r.status === "running" ? "…" : secs(r.wall_us)),
    el("td", { class: "num" }, r.calls),
    el("td", { class: "num" }, r.tokens),
    el("td", { class: "num muted" }, "—"));
}

async function showRuns() {
  stopLive();
  const s = runsState;
  const q = el("input", { id: "filter", type: "search", placeholder: "filter: task, model or run id", value: s.q });
  const status = el("select", { id: "status-filter" }, ...["", "running", "answered", "failed", "budget_exhausted", "cancelled", "stopped", "loop_detected", "interrupted"].map((v) => el("option", { value: v, selected: v === s.status }, v || "any status")));
  const mode = el("select", { id: "mode-filter" }, ...["", "sequential", "compiled"].map((v) => el("option", { value: v, selected: v === s.mode }, v || "any mode")));
  const body = el("tbody", { id: "runs-body" });
  const info = el("span", { class: "muted", id: "runs-total" });
  const newer = el("button", { id: "newer", disabled: s.cursors.length === 0, onclick: () => { s.cursors.pop(); load(); } }, "← newer");
  const older = el("button", { id: "older", disabled: true, onclick: () => { if (s.page && s.page.next) { s.cursors.push(s.page.next); load(); } } }, "older →");
  const table = el("table", { id: "runs" },
    el("thead", {}, el("tr", {}, ...["started", "task", "model", "mode", "status", "duration", "calls", "tokens", "cost"].map((h, i) => el("th", { class: i >= 5 ? "num" : "" }, h)))),
    body);
  main.replaceChildren(el("div", { class: "filters" }, q, status, mode, info), table, el("div", { class: "pager" }, newer, older));
  let timer = null;
  const refilter = () => { s.q = q.value; s.status = status.value; s.mode = mode.value; s.cursors = []; load(); };
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refilter, 200); });
  status.addEventListener("change", refilter);
  mode.addEventListener("change", refilter);

  async function load() {
    const params = new URLSearchParams({ limit: "50" });
    if (s.q) params.set("q", s.q);
    if (s.status) params.set("status", s.status);
    if (s.mode) params.set("mode", s.mode);
    const c = s.cursors[s.cursors.length - 1];
    if (c) { params.set("before_ms", c.started_at_ms); params.set("before_id", c.id); }
    try {
      s.page = await api("/api/runs?" + params);
    } catch (e) { main.replaceChildren(problem(e)); return; }
    body.replaceChildren(...s.page.runs.map((r) => runRow(r, false)));
    if (s.page.runs.length === 0) body.append(el("tr", {}, el("td", { colspan: 9, class: "muted" }, s.q || s.status || s.mode ? "No run matches." : "No runs yet: `agentry run \"…\"` records one.")));
    info.textContent = `${s.page.total} run(s)`;
    newer.disabled = s.cursors.length === 0;
    older.disabled = !s.page.next;
  }
  await load();

  // Live: runs that start or change appear without a reload (on the newest page).
  live = new EventSource("/api/live");
  live.addEventListener("runs", (ev) => {
    if (s.cursors.length) return;
    const rows = JSON.parse(ev.data).filter((r) =>
      (!s.status || r.status === s.status) && (!s.mode || r.mode === s.mode) &&
      (!s.q || r.task.toLowerCase().includes(s.q.toLowerCase()) || r.model.toLowerCase().includes(s.q.toLowerCase()) || r.id.startsWith(s.q)));
    for (const r of rows.reverse()) {
      const old = body.querySelector(`tr[data-id="${CSS.escape(r.id)}"]`);
      const row = runRow(r, !old || old.classList.contains("fresh"));
      const first = s.page.runs[0];
      if (old) old.replaceWith(row);
      else if (!first || r.started_at_ms > first.started_at_ms || (r.started_at_ms === first.started_at_ms && r.id > first.id)) {
        s.page.runs.unshift(r);
        body.querySelector("td[colspan]")?.parentElement.remove();
        body.prepend(row);
        s.page.total += 1;
        info.textContent = `${s.page.total} run(s)`;
      }
    }
  });
}

// ---------------------------------------------------------------- one run
const COLORS = { model: "#5b8def", call: "#3fae6a", user: "#a0a0a0", failed: "#d9534f", unfinished: "#f0ad4e" };

async function showRun(id) {
  stopLive();
  let view;
  try { view = await api("/api/runs/" + encodeURIComponent(id)); } catch (e) { main.replaceChildren(problem(e)); return; }
  const detail = el("div", { id: "detail" }, el("p", { class: "muted" }, "Click a bar or a plan task to see its arguments, result, policy decision or model exchange."));
  const box = el("div", { id: "gantt-box" });
  const canvas = el("canvas", { id: "gantt" });
  const spacer = el("div", { id: "gantt-spacer" });
  box.append(canvas, spacer);
  const facts = el("div", { class: "facts", id: "facts" });
  const answer = el("div", { class: "answer", id: "answer" });
  const dag = el("div", { id: "dag" });
  const critical = el("div", { class: "muted", id: "critical" });
  main.replaceChildren(
    el("p", {}, el("a", { href: "#/runs" }, "← runs")),
    el("h2", { id: "run-task" }, view.task),
    facts, answer,
    el("div", { class: "layout" },
      el("div", {},
        el("div", { class: "panel" }, el("h3", {}, "Timeline"),
          el("div", { class: "legend" }, ...[["model", COLORS.model], ["call", COLORS.call], ["failed", COLORS.failed], ["unfinished", COLORS.unfinished], ["user", COLORS.user]].map(([n, c]) => el("span", {}, el("i", { "data-c": c }), n)), el("span", {}, "outlined: critical path"), el("a", { href: `/api/runs/${encodeURIComponent(view.id)}/timeline.svg`, download: `${view.id}.svg` }, "SVG")),
          box, critical),
        el("div", { class: "panel", id: "plan-panel" }, el("h3", {}, "Plan"), dag)),
      el("div", {}, el("div", { class: "panel" }, el("h3", {}, "Detail"), detail))));
  // Legend swatches: colours set through the DOM, not inline style attributes.
  for (const i of main.querySelectorAll(".legend i")) i.style.background = i.dataset.c;

  let selected = null;
  const select = async (key) => {
    selected = key;
    drawGantt();
    for (const n of dag.querySelectorAll(".dag-node")) n.classList.toggle("selected", n.dataset.key === key);
    await showDetail(view.id, key, detail);
  };

  // The Gantt chart on a canvas: only the rows in view are drawn, so a run of 10,000
  // calls draws as fast as one of ten.
  const ROW = 18, LABEL = 170, AXIS = 22;
  let rows = [];
  function layout() {
    rows = view.steps.map((s, i) => ({ s, row: i }));
    spacer.style.height = (AXIS + rows.length * ROW) + "px";
  }
  function drawGantt() {
    const width = box.clientWidth - 2;
    const height = box.clientHeight - 2;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio; canvas.height = height * ratio;
    canvas.style.width = width + "px"; canvas.style.height = height + "px";
    canvas.style.marginBottom = (-height) + "px";
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const total = Math.max(view.wall_us, ...view.steps.slice(-1).map((s) => s.end_us), 1);
    const plot = width - LABEL - 10;
    const x = (us) => LABEL + plot * us / total;
    const top = box.scrollTop;
    const first = Math.max(0, Math.floor((top - AXIS) / ROW) - 1);
    const last = Math.min(rows.length, first + Math.ceil(height / ROW) + 2);
    g.font = "11px DejaVu Sans, sans-serif";
    g.textBaseline = "middle";
    for (let i = first; i < last; i++) {
      const { s } = rows[i];
      const y = AXIS + i * ROW - top;
      if (s.key === selected) { g.fillStyle = "#fff4c2"; g.fillRect(0, y, width, ROW); }
      g.fillStyle = "#333";
      g.fillText(cut(`${s.id} ${s.label}`, 24), 4, y + ROW / 2);
      const x0 = x(s.start_us), w = Math.max(2, x(s.end_us) - x0);
      g.fillStyle = s.unfinished ? COLORS.unfinished : !s.ok ? COLORS.failed : COLORS[s.kind];
      g.fillRect(x0, y + 3, w, ROW - 6);
      if (s.critical) { g.strokeStyle = "#111"; g.lineWidth = 2; g.strokeRect(x0, y + 3, w, ROW - 6); }
      // The duration beside the bar, or inside it when the bar reaches the right edge.
      const took = secs(s.end_us - s.start_us);
      const tw = g.measureText(took).width;
      g.fillStyle = "#555";
      if (x0 + w + 4 + tw < width) g.fillText(took, x0 + w + 4, y + ROW / 2);
      else if (w > tw + 6) { g.fillStyle = "#fff"; g.fillText(took, x0 + w - tw - 3, y + ROW / 2); }
    }
    // The axis, pinned to the top.
    g.fillStyle = "#fff"; g.fillRect(0, 0, width, AXIS);
    g.fillStyle = "#666"; g.strokeStyle = "#e4e4e4"; g.lineWidth = 1;
    const tick = niceStep(total / 8);
    for (let us = 0; us <= total; us += tick) {
      const tx = x(us);
      g.beginPath(); g.moveTo(tx, AXIS - 4); g.lineTo(tx, height); g.stroke();
      g.fillText(secs(us), Math.min(tx - 12, width - 50), AXIS / 2);
    }
  }
  canvas.addEventListener("click", (ev) => {
    const r = canvas.getBoundingClientRect();
    const i = Math.floor((ev.clientY - r.top + box.scrollTop - AXIS) / ROW);
    if (i >= 0 && i < rows.length) select(rows[i].s.key);
  });
  box.addEventListener("scroll", () => requestAnimationFrame(drawGantt));
  window.addEventListener("resize", () => requestAnimationFrame(drawGantt));

  function render() {
    facts.replaceChildren(
      el("span", {}, "status ", el("b", { id: "run-status" }, view.status)),
      el("span", {}, "model ", el("b", {}, view.model)),
      el("span", {}, "mode ", el("b", {}, view.mode)),
      el("span", {}, "wall ", el("b", {}, secs(view.wall_us))),
      el("span", {}, "calls ", el("b", { id: "run-calls" }, view.steps.filter((s) => s.kind === "call").length)),
      el("span", {}, "tokens ", el("b", {}, view.tokens)),
      el("span", {}, "at most ", el("b", { id: "max-parallel" }, view.max_parallel), " at once"),
      el("span", { class: "muted" }, view.id));
    answer.textContent = view.answer ?? (view.status === "running" ? "running…" : "no answer");
    critical.textContent = "critical path: " + cut(view.critical_path.join(" → "), 600);
    layout();
    drawGantt();
    drawDag(view, dag, select);
    document.getElementById("plan-panel").hidden = view.plan.length === 0;
  }
  render();

  if (view.status === "running") {
    live = new EventSource(`/api/live?run=${encodeURIComponent(view.id)}&after=${view.last_seq}`);
    let pending = false;
    live.addEventListener("events", async () => {
      if (pending) return;
      pending = true;
      setTimeout(async () => {
        pending = false;
        try { view = await api("/api/runs/" + encodeURIComponent(id)); render(); } catch { /* next event retries */ }
        if (view.status !== "running") stopLive();
      }, 250);
    });
  }
}

// The plan as a graph: one layer per plan (a replan is a new layer), tasks in columns
// by how deep their inputs go, `$N` references as arrows.
function drawDag(view, box, select) {
  box.replaceChildren();
  if (!view.plan.length) return;
  const W = 150, H = 34, GX = 60, GY = 16, PAD = 10;
  let y0 = PAD;
  const layers = [];
  for (const layer of view.plan) {
    const depth = {};
    const byTask = Object.fromEntries(layer.tasks.map((t) => [t.task, t]));
    const d = (t, seen = new Set()) => {
      if (depth[t.task] !== undefined) return depth[t.task];
      if (seen.has(t.task)) return 0;
      seen.add(t.task);
      depth[t.task] = t.deps.filter((n) => byTask[n]).reduce((m, n) => Math.max(m, d(byTask[n], seen) + 1), 0);
      return depth[t.task];
    };
    layer.tasks.forEach((t) => d(t));
    const cols = {};
    const pos = {};
    for (const t of layer.tasks) {
      const c = depth[t.task];
      cols[c] = (cols[c] || 0) + 1;
      pos[t.task] = { x: PAD + c * (W + GX), y: y0 + 20 + (cols[c] - 1) * (H + GY) };
    }
    const rowsUsed = Math.max(1, ...Object.values(cols));
    layers.push({ layer, pos, y0, byTask });
    y0 += 20 + rowsUsed * (H + GY) + 14;
  }
  const width = PAD * 2 + (W + GX) * Math.max(1, ...layers.flatMap((l) => Object.values(l.pos).map((p) => (p.x - PAD) / (W + GX) + 1)));
  const root = svg("svg", { id: "dag-svg", width, height: y0, viewBox: `0 0 ${width} ${y0}` });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a93a6" }))));
  layers.forEach(({ layer, pos, y0, byTask }, i) => {
    root.append(svg("text", { x: PAD, y: y0 + 12, "font-size": "12", fill: "#555" }, i === 0 ? `plan (${layer.step})` : `replan ${i} (${layer.step})`));
    for (const t of layer.tasks) {
      for (const n of t.deps) {
        if (!byTask[n]) continue;
        const a = pos[n], b = pos[t.task];
        root.append(svg("path", { class: "dag-edge", "data-from": n, "data-to": t.task, d: `M ${a.x + W} ${a.y + H / 2} C ${a.x + W + GX / 2} ${a.y + H / 2}, ${b.x - GX / 2} ${b.y + H / 2}, ${b.x} ${b.y + H / 2}` }));
      }
    }
    for (const t of layer.tasks) {
      const p = pos[t.task];
      const g = svg("g", { class: "dag-node" + (t.ok ? "" : " failed") + (t.critical ? " critical" : ""), "data-key": t.key, "data-task": t.task, transform: `translate(${p.x},${p.y})`, onclick: () => select(t.key) },
        svg("rect", { width: W, height: H, rx: 5 }),
        svg("text", { x: 8, y: 21, "font-size": "12" }, cut(`$${t.task} ${t.label}`, 22)));
      root.append(g);
    }
  });
  box.append(root);
}

async function showDetail(runId, key, box) {
  let d;
  try { d = await api(`/api/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(key)}`); } catch (e) { box.replaceChildren(problem(e)); return; }
  const items = [];
  const item = (name, value, pre) => items.push(el("dt", {}, name), el("dd", {}, pre ? el("pre", {}, value) : value));
  const json = (v) => JSON.stringify(v, null, 2);
  if (d.kind === "call") {
    item("tool", d.tool);
    item("call", d.call_id);
    if (d.task !== null && d.task !== undefined) item("plan task", "$" + d.task);
    item("arguments", d.arguments !== undefined ? json(d.arguments) : d.arguments_text + `\n… (${d.arguments_truncated} bytes in all)`, true);
    if (d.policy) {
      const p = d.policy;
      item("policy", `${p.action} by ${p.rule || "the default"}${p.approved === true ? " (approved)" : p.approved === false ? " (refused)" : ""}${p.reason ? ": " + p.reason : ""}`);
      if (p.rewritten) item("ran with (rewritten)", json(p.rewritten), true);
    }
    if (d.ok !== undefined) {
      item("outcome", d.ok ? "ok" : "error: " + d.error_kind);
      item(d.ok ? "result" : "error", d.result, true);
      if (d.truncated) items.push(el("dd", {}, el("a", { id: "download", href: `/api/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(key)}/result`, download: "" }, `download the whole result (${d.truncated} bytes)`)));
      item("attempts", d.attempts);
      item("took", secs(d.duration_us));
    } else item("outcome", "still running");
  } else if (d.kind === "model") {
    item("request", `${d.purpose}, ${d.messages} message(s)`);
    if (d.error) item("failed", d.error, true);
    if (d.prompt_tokens !== undefined) item("tokens", `${d.prompt_tokens} prompt + ${d.completion_tokens} completion` + (d.ttft_us ? ` · first token after ${secs(d.ttft_us)}` : ""));
    if (d.text) item("text", d.text, true);
    if (d.calls && d.calls.length) item("calls", d.calls.map((c) => `${c.name}(${JSON.stringify(c.arguments)})`).join("\n"), true);
    if (d.malformed && d.malformed.length) item("malformed", d.malformed.join("\n"), true);
  } else {
    item("user said", d.text, true);
    if (d.ends) item("", "(this ended the conversation)");
  }
  box.replaceChildren(el("h4", { id: "detail-title" }, key), el("dl", {}, ...items));
}

// ---------------------------------------------------------------- evals
async function showEvals() {
  stopLive();
  let list;
  try { list = await api("/api/evals"); } catch (e) { main.replaceChildren(problem(e)); return; }
  if (!list.reports.length) {
    main.replaceChildren(el("p", { class: "muted" }, `No eval reports under ${list.dirs.join(", ")}. \`agentry eval bfcl run …\` and \`agentry eval taubench run …\` write them; \`agentry ui --reports DIR\` looks elsewhere.`));
    return;
  }
  main.replaceChildren(el("h2", {}, "Eval reports"), el("table", { id: "evals" },
    el("thead", {}, el("tr", {}, el("th", {}, "benchmark"), el("th", {}, "what"), el("th", { class: "num" }, "score"), el("th", {}, "file"))),
    el("tbody", {}, ...list.reports.map((r) => el("tr", { class: "run", onclick: () => { location.hash = "#/eval/" + r.n; } },
      el("td", {}, r.kind === "bfcl" ? "BFCL" : "τ-bench"),
      el("td", {}, r.kind === "bfcl" ? `${r.headline.model} · ${r.headline.entries} entries` : `${r.headline.agent} · ${r.headline.domain}/${r.headline.split}`),
      el("td", { class: "num" }, r.kind === "bfcl" ? (100 * r.headline.accuracy).toFixed(2) + "%" : "reward " + Number(r.headline.average_reward).toFixed(3)),
      el("td", { class: "muted" }, r.path))))));
}

async function showEval(n) {
  stopLive();
  let e;
  try { e = await api("/api/evals/" + n); } catch (err) { main.replaceChildren(problem(err)); return; }
  const r = e.report;
  const back = el("p", {}, el("a", { href: "#/evals" }, "← reports"));
  if (e.kind === "bfcl") {
    const cats = el("table", { id: "categories" }, el("thead", {}, el("tr", {}, ...["category", "accuracy", "", "entries", "decoded", "schema-valid", "p50 ms", "tokens"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...r.categories.map((c) => el("tr", {}, el("td", {}, c.category), el("td", { class: "num" }, (100 * c.accuracy).toFixed(2) + "%"),
        el("td", {}, barOf(c.accuracy)), el("td", { class: "num" }, c.entries), el("td", { class: "num" }, (100 * c.decoded_rate).toFixed(1) + "%"),
        el("td", { class: "num" }, (100 * c.schema_valid_rate).toFixed(1) + "%"), el("td", { class: "num" }, Number(c.latency_p50_ms || 0).toFixed(0)), el("td", { class: "num" }, c.tokens)))));
    const onlyFailed = el("input", { type: "checkbox", id: "only-failed" });
    const vbody = el("tbody", { id: "verdicts-body" });
    const fill = () => vbody.replaceChildren(...e.verdicts.filter((v) => !onlyFailed.checked || !v.valid).slice(0, 2000).map((v) =>
      el("tr", {}, el("td", {}, v.id), el("td", {}, v.trial), el("td", { class: v.valid ? "" : "verdict-fail" }, v.valid ? "pass" : "fail"), el("td", {}, v.error_type || ""), el("td", {}, cut((v.reason || []).join ? (v.reason || []).join("; ") : v.reason, 400)))));
    onlyFailed.addEventListener("change", fill);
    fill();
    main.replaceChildren(back, el("h2", {}, `BFCL · ${r.model} · ${r.mode} · ${(100 * r.accuracy).toFixed(2)}% of ${r.entries}`), cats,
      el("h3", {}, "Verdicts ", el("label", {}, onlyFailed, " failed only")),
      e.verdicts.length ? el("table", { id: "verdicts" }, el("thead", {}, el("tr", {}, ...["entry", "trial", "verdict", "error", "checker's reason"].map((h) => el("th", {}, h)))), vbody) : el("p", { class: "muted" }, "No verdicts file beside the report."));
  } else {
    const curve = passCurve(r.pass_hat_k);
    const ended = Object.entries(r.ended || {}).map(([k, v]) => `${k}: ${v}`).join(" · ");
    const eps = el("table", { id: "episodes" }, el("thead", {}, el("tr", {}, ...["task", "trial", "reward", "ended", "calls", "run"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(r.episodes || []).slice(0, 5000).map((x) => el("tr", {}, el("td", {}, x.task_index), el("td", {}, x.trial), el("td", { class: "num" }, x.reward), el("td", {}, x.ended), el("td", { class: "num" }, x.calls),
        el("td", {}, el("a", { href: "#/run/" + encodeURIComponent(x.run_id) }, cut(x.run_id, 16)))))));
    main.replaceChildren(back, el("h2", {}, `τ-bench · ${r.domain}/${r.split} · ${r.agent}`),
      el("div", { class: "facts" }, el("span", {}, "average reward ", el("b", { id: "average-reward" }, Number(r.average_reward).toFixed(3))), el("span", {}, `${r.tasks} tasks × ${r.trials} trial(s)`), el("span", {}, ended),
        el("span", {}, "agent tokens ", el("b", {}, r.agent_tokens)), r.agent_cost_usd != null ? el("span", {}, "cost ", el("b", {}, "$" + Number(r.agent_cost_usd).toFixed(4))) : null),
      el("div", { class: "panel" }, el("h3", {}, "pass^k"), curve), eps);
  }
}
function barOf(f) { const b = el("span", { class: "bar" }); b.style.width = Math.round(160 * f) + "px"; return b; }
function passCurve(values) {
  const W = 420, H = 180, P = 34;
  const root = svg("svg", { id: "pass-k", width: W, height: H });
  const n = values.length;
  const x = (k) => P + (W - 2 * P) * (n > 1 ? (k - 1) / (n - 1) : 0.5);
  const y = (v) => H - P - (H - 2 * P) * v;
  root.append(svg("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#999" }), svg("line", { x1: P, y1: P, x2: P, y2: H - P, stroke: "#999" }));
  root.append(svg("text", { x: 4, y: P + 4, "font-size": "10" }, "1.0"), svg("text", { x: 4, y: H - P, "font-size": "10" }, "0"));
  if (n) root.append(svg("polyline", { fill: "none", stroke: "#5b8def", "stroke-width": "2", points: values.map((v, i) => `${x(i + 1)},${y(v)}`).join(" ") }));
  values.forEach((v, i) => {
    root.append(svg("circle", { cx: x(i + 1), cy: y(v), r: 3, fill: "#5b8def" }));
    root.append(svg("text", { x: x(i + 1) - 8, y: H - P + 14, "font-size": "10" }, `k=${i + 1}`));
    root.append(svg("text", { x: x(i + 1) - 10, y: y(v) - 7, "font-size": "10" }, v.toFixed(2)));
  });
  return root;
}

// ---------------------------------------------------------------- routing
async function route() {
  const [, page, arg] = location.hash.split("/");
  document.getElementById("nav-runs").classList.toggle("on", !page || page === "runs" || page === "run");
  document.getElementById("nav-evals").classList.toggle("on", page === "evals" || page === "eval");
  if (page === "run" && arg) return showRun(decodeURIComponent(arg));
  if (page === "evals") return showEvals();
  if (page === "eval" && arg) return showEval(arg);
  return showRuns();
}
window.addEventListener("hashchange", route);
api("/api/status").then((s) => { document.getElementById("store").textContent = `${s.db} · ${s.runs} run(s)`; })
  .catch((e) => { document.getElementById("store").textContent = "trace store unavailable"; });
route();

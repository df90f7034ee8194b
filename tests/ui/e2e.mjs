// End-to-end test of `agentry ui` in headless Chromium (Debian's), driven by
// playwright-core (installed by scripts/browser into $AGENTRY_NPM_DIR):
//   node tests/ui/e2e.mjs URL SHOTS_DIR SCENARIO_JSON
// SCENARIO_JSON names the runs the test recorded: {"compiled": ID, "hostile": ID,
// "huge": ID, "big": ID, "runs": N, "agentry": BIN, "db": FILE} (the agentry binary and
// store record one more run while the list is open, to see it arrive live). Prints one JSON line of findings and timings; exits 1
// on the first check that fails, saying which.
import { createRequire } from "node:module";
import path from "node:path";
import os from "node:os";
import { execFileSync } from "node:child_process";

const npm = process.env.AGENTRY_NPM_DIR || path.join(os.homedir(), ".cache/agentry/npm");
const require = createRequire(path.join(npm, "node_modules", "x.js"));
const { chromium } = require("playwright-core");

const [base, shots, scenarioJson] = process.argv.slice(2);
const scenario = JSON.parse(scenarioJson);
const found = {};
// Opens a run's page and waits until it shows that run (the hash changes in one document).
async function openRun(page, id) {
  await page.goto(base + "#/run/" + id);
  await page.waitForFunction((id) => document.querySelector("#facts .muted")?.textContent === id && document.querySelector("#gantt"), id);
}
const fail = (why) => { console.error("FAILED: " + why); process.exitCode = 1; throw new Error(why); };
const check = (ok, why) => { if (!ok) fail(why); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });

  // The runs list: newest first, paginated, the count of all runs.
  let t0 = Date.now();
  await page.goto(base + "#/runs");
  await page.waitForSelector("#runs-body tr.run");
  found.runs_list_ms = Date.now() - t0;
  const rows = await page.locator("#runs-body tr.run").count();
  check(rows === 50, `the first page shows 50 runs, not ${rows}`);
  const total = await page.textContent("#runs-total");
  check(total.startsWith(String(scenario.runs)), `the list counts ${scenario.runs} runs: ${total}`);
  await page.screenshot({ path: path.join(shots, "runs.png") });
  // The next page, and a filter.
  t0 = Date.now();
  await page.click("#older");
  await page.waitForFunction(() => !document.querySelector("#newer").disabled);
  found.next_page_ms = Date.now() - t0;
  t0 = Date.now();
  await page.selectOption("#mode-filter", "compiled");
  await page.waitForFunction(() => [...document.querySelectorAll("#runs-body tr.run td:nth-child(4)")].every((td) => td.textContent === "compiled"));
  found.filter_ms = Date.now() - t0;
  await page.fill("#filter", "hostile");
  await page.selectOption("#mode-filter", "");
  await page.waitForFunction(() => document.querySelectorAll("#runs-body tr.run").length === 1);

  // A run appears live, without a reload: the test's helper records one now.
  await page.fill("#filter", "");
  await page.waitForFunction((n) => document.querySelectorAll("#runs-body tr.run").length === 50 && document.querySelector("#runs-total").textContent.startsWith(String(n)), scenario.runs);
  execFileSync(scenario.agentry, ["run", "a live run", "--model", "sim:plan", "--quiet", "--trace-db", scenario.db]);
  const liveTask = await page.waitForSelector("#runs-body tr.run.fresh", { timeout: 20000 }).then((e) => e.textContent());
  found.live_row = liveTask.slice(0, 80);

  // The compiled run: the parallel calls overlap on the timeline, the plan has its edges.
  t0 = Date.now();
  await openRun(page, scenario.compiled);
  await page.waitForSelector("#dag-svg .dag-node");
  found.compiled_open_ms = Date.now() - t0;
  const parallel = Number(await page.textContent("#max-parallel"));
  check(parallel >= 2, `the compiled run shows ${parallel} steps at once`);
  const edges = await page.locator("#dag-svg .dag-edge").count();
  check(edges >= 2, `the plan graph has ${edges} edges ($1 and $2 into $3)`);
  found.dag = { nodes: await page.locator("#dag-svg .dag-node").count(), edges };
  // On the canvas itself: two call bars share pixels of the same columns.
  const overlap = await page.evaluate(async (id) => {
    const view = await (await fetch("/api/runs/" + id)).json();
    const calls = view.steps.map((s, i) => ({ ...s, row: i })).filter((s) => s.kind === "call");
    let pair = null;
    for (const a of calls) for (const b of calls) if (!pair && a.row < b.row && a.start_us < b.end_us && b.start_us < a.end_us) pair = [a, b];
    if (!pair) return { ok: false, why: "no two calls overlap in the data" };
    const canvas = document.getElementById("gantt");
    const box = document.getElementById("gantt-box");
    const ratio = window.devicePixelRatio || 1;
    const width = box.clientWidth - 2, LABEL = 170, ROW = 18, AXIS = 22;
    const total = Math.max(view.wall_us, view.steps[view.steps.length - 1].end_us, 1);
    const x = (us) => LABEL + (width - LABEL - 10) * us / total;
    const mid = (Math.max(pair[0].start_us, pair[1].start_us) + Math.min(pair[0].end_us, pair[1].end_us)) / 2;
    const g = canvas.getContext("2d");
    const green = (row) => {
      const [r, gg, b] = g.getImageData(Math.round(x(mid) * ratio), Math.round((AXIS + row * ROW + ROW / 2) * ratio), 1, 1).data;
      return gg > 150 && r < 120 && b < 150;
    };
    return { ok: green(pair[0].row) && green(pair[1].row), rows: [pair[0].row, pair[1].row] };
  }, scenario.compiled);
  check(overlap.ok, "two parallel calls are drawn overlapping: " + JSON.stringify(overlap));
  // Click a call's bar: its arguments show.
  const row = overlap.rows[0];
  const canvasBox = await page.locator("#gantt").boundingBox();
  await page.mouse.click(canvasBox.x + 300, canvasBox.y + 22 + row * 18 + 9);
  await page.waitForSelector("#detail dl");
  const detail = await page.textContent("#detail");
  check(detail.includes("arguments") && detail.includes("city"), "a clicked call shows its arguments: " + detail.slice(0, 200));
  // Click a plan task: the same detail.
  await page.locator("#dag-svg .dag-node").last().click();
  await page.waitForFunction(() => document.querySelector("#detail-title") && document.querySelector(".dag-node.selected"));
  await page.screenshot({ path: path.join(shots, "run-compiled.png"), fullPage: true });

  // Untrusted content stays text: a result holding <script>, arguments holding HTML.
  await openRun(page, scenario.hostile);
  const hostileBox = await page.locator("#gantt").boundingBox();
  await page.mouse.click(hostileBox.x + 300, hostileBox.y + 22 + 1 * 18 + 9);
  await page.waitForSelector("#detail dl");
  const pwned = await page.evaluate(() => window.__pwned === 1 || document.querySelector("#detail img, #detail script, #answer script") !== null);
  check(!pwned, "markup in a result or arguments was executed or became elements");
  const shown = await page.textContent("#detail");
  check(shown.includes("<script>window.__pwned=1</script>"), "the hostile result is shown as text");
  check((await page.textContent("#run-task")).includes("<img"), "the hostile task is shown as text");
  await page.screenshot({ path: path.join(shots, "run-hostile.png"), fullPage: true });

  // A 10 MB result is cut, with the whole as a download.
  await openRun(page, scenario.huge);
  const hugeBox = await page.locator("#gantt").boundingBox();
  await page.mouse.click(hugeBox.x + 300, hugeBox.y + 22 + 1 * 18 + 9);
  await page.waitForSelector("#download");
  const pre = await page.evaluate(() => Math.max(...[...document.querySelectorAll("#detail pre")].map((p) => p.textContent.length)));
  check(pre < 70 * 1024, `the big result is cut (${pre} characters shown)`);
  const href = await page.getAttribute("#download", "href");
  const whole = await page.evaluate(async (h) => (await (await fetch(h)).text()).length, href);
  check(whole >= 10 * 1000 * 1000, `the download holds the whole result (${whole} bytes)`);
  found.huge = { shown: pre, whole };

  // 10,000 calls: the page is drawn and a click works.
  t0 = Date.now();
  await openRun(page, scenario.big);
  await page.waitForFunction(() => document.querySelector("#run-calls").textContent === "10000");
  found.big_open_ms = Date.now() - t0;
  await page.locator("#gantt-box").evaluate((b) => { b.scrollTop = 90000; });
  await page.waitForTimeout(100);
  await page.screenshot({ path: path.join(shots, "run-10000-calls.png") });

  // The evals: BFCL's categories and verdicts, τ-bench's reward and pass^k curve.
  await page.goto(base + "#/evals");
  await page.waitForSelector("#evals tbody tr");
  const reports = await page.locator("#evals tbody tr").count();
  check(reports === 2, `two reports are listed, not ${reports}`);
  await page.screenshot({ path: path.join(shots, "evals.png") });
  await page.locator("#evals tbody tr", { hasText: "BFCL" }).click();
  await page.waitForSelector("#categories tbody tr");
  await page.check("#only-failed");
  const failedVerdicts = await page.locator("#verdicts-body tr").count();
  check(failedVerdicts === 1, `one failed verdict, not ${failedVerdicts}`);
  check((await page.textContent("#verdicts-body")).includes("wrong unit"), "the checker's reason is shown");
  await page.screenshot({ path: path.join(shots, "eval-bfcl.png"), fullPage: true });
  await page.goto(base + "#/evals");
  await page.waitForSelector("#evals tbody tr");
  await page.locator("#evals tbody tr", { hasText: "τ-bench" }).click();
  await page.waitForSelector("#pass-k circle");
  check((await page.locator("#pass-k circle").count()) === 3, "pass^1..3 are drawn");
  check((await page.textContent("#average-reward")) === "0.500", "the average reward shows");
  await page.screenshot({ path: path.join(shots, "eval-taubench.png"), fullPage: true });

  check(problems.length === 0, "the page logged errors: " + problems.join(" | "));
  console.log(JSON.stringify(found));
} finally {
  await browser.close();
}

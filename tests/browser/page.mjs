#!/usr/bin/env node
// The web page in a real browser: Debian's Chromium (driven by playwright-core) opens the page a
// running `wasmline serve` serves, picks a model, predicts every sample row through the one-click
// examples, and the page must show what the control plane's own KServe endpoint answers for the
// same rows (labels identical, numbers within 1e-5 by model_wasm::parity's rule). Then, through
// the page: a schema error names the feature, a CSV batch gives the same answers, a wrong token is
// refused and the admin token promotes another version and rolls it back (checked through the
// API), runs compare side by side, the page's telemetry reaches /metrics as runtime="browser", and
// the page pins the control plane's signing key on first load: with another key pinned it refuses
// every model, saying why, until the pin is forgotten.
// Screenshots of each tab go to the output directory; the last line reports the time from page
// load to the first prediction and the bytes downloaded until then.
//
//   node tests/browser/page.mjs --url http://127.0.0.1:PORT --model NAME --token ADMIN_TOKEN --out DIR
//   node tests/browser/page.mjs --url http://127.0.0.1:PORT --model NAME --only predict --out DIR
//
// `--only predict` stops after the predictions (no token needed): a newcomer's first visit, with
// every file downloaded until the first prediction listed. Otherwise the model needs a
// `production` alias and at least two versions. playwright-core is resolved
// through NODE_PATH (scripts/lib/tools.sh sets it). Exit status: 0 when everything holds, 1 on a
// problem (each is listed), 2 when the test cannot run (missing tool, server not answering).

import { createRequire } from "node:module";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";

const CHROMIUM = "/usr/bin/chromium";
const TOLERANCE = 1e-5; // model_wasm::parity::TOLERANCE
const SCALE_FLOOR = 0.1; // model_wasm::parity::SCALE_FLOOR
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

function fail(code, message) {
  console.error(`web page: ${message}`);
  process.exit(code);
}

function parseArgs(argv) {
  const args = { timeoutMs: 30000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    const name = { "--url": "url", "--model": "model", "--token": "token", "--out": "out", "--timeout-ms": "timeoutMs", "--only": "only" }[key];
    if (!name || value === undefined) fail(2, `unknown or incomplete argument ${key}`);
    args[name] = name === "timeoutMs" ? Number(value) : name === "out" ? resolve(value) : value;
  }
  if (args.only !== undefined && args.only !== "predict") fail(2, `--only takes 'predict', not '${args.only}'`);
  for (const k of ["url", "model", "out", ...(args.only ? [] : ["token"])]) if (!args[k]) fail(2, `--${k} is required`);
  args.url = args.url.replace(/\/$/, "");
  return args;
}

// |a - b| / max(|a|, |b|, 0.1): model_wasm::parity::scaled_difference.
const scaledDifference = (a, b) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), SCALE_FLOOR);
const agree = (a, b) => typeof a === "number" && typeof b === "number" && scaledDifference(a, b) <= TOLERANCE;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let chromium;
  try {
    ({ chromium } = createRequire(import.meta.url)("playwright-core"));
  } catch {
    fail(2, "playwright-core is not installed: run through scripts/test (it installs it into ~/.cache/wasmline/node and sets NODE_PATH)");
  }
  if (!existsSync(CHROMIUM)) fail(2, `${CHROMIUM} is missing: apt-get install chromium (scripts/test does)`);
  mkdirSync(args.out, { recursive: true });
  for (const f of readdirSync(args.out)) if (f.endsWith(".png")) rmSync(join(args.out, f)); // a previous run's

  /** The control plane's JSON, as the test sees it (not through the page). */
  async function api(path, init = {}) {
    const r = await fetch(`${args.url}${path}`, init);
    const text = await r.text();
    if (!r.ok) throw new Error(`${init.method ?? "GET"} ${path}: HTTP ${r.status}: ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  }
  const alias = async () => (await api(`/api/v1/models/${args.model}/aliases/production`)).version;

  try {
    await api("/v2/health/live");
  } catch (e) {
    fail(2, `the control plane at ${args.url} does not answer: ${e.message}`);
  }
  const production = await alias().catch((e) => fail(2, `${args.model} has no production alias: ${e.message}`));
  const manifest = await api(`/api/v1/models/${args.model}/versions/${production}/artifacts/manifest.json`);
  const names = manifest.features.map((f) => f.name);
  const classes = manifest.output.classes ?? [];
  const samples = manifest.sample_rows;
  if (!samples?.length) fail(2, `${args.model} v${production} has no sample_rows in its manifest`);

  // The browser requests /metrics counts for this model: (ok, error, the lines), from before the page.
  async function browserRequests() {
    const text = await (await fetch(`${args.url}/metrics`)).text();
    const lines = text.split("\n").filter((l) => l.startsWith("wasmline_inference_requests_total{") && l.includes('runtime="browser"') && l.includes(`model="${args.model}"`));
    const sum = (outcome) => lines.filter((l) => l.includes(`outcome="${outcome}"`)).reduce((s, l) => s + Number(l.split(" ").pop()), 0);
    return [sum("ok"), sum("error"), lines];
  }
  const before = await browserRequests().catch(() => [0, 0, []]);

  const problems = [];
  const check = (ok, text) => ok || problems.push(text);
  const profile = mkdtempSync(join(tmpdir(), "wasmline-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: DESKTOP,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(args.timeoutMs);
  const log = [];
  page.on("console", (m) => m.type() !== "verbose" && log.push(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => {
    log.push(`page error: ${e.message}`);
    problems.push(`page error: ${e.message}`);
  });

  // Every response until the first prediction: its body, what was sent for it (the body as the
  // server encoded it: gzipped ahead of time, or on the fly), and the body through node's gzip.
  const downloads = [];
  let loading = true;
  const outside = new Set();
  page.on("request", (r) => !r.url().startsWith(`${args.url}/`) && !r.url().startsWith("data:") && outside.add(r.url()));
  page.on("response", (response) => {
    if (!loading) return;
    downloads.push(
      response.body().then(
        async (body) => {
          const sizes = await response.request().sizes().catch(() => ({ responseHeadersSize: 0, responseBodySize: body.length }));
          const sent = sizes.responseBodySize;
          return { url: response.url(), raw: body.length, sent, gzip: gzipSync(body).length, headers: sizes.responseHeadersSize };
        },
        () => null,
      ),
    );
  });

  const timeout = args.timeoutMs;
  const shot = (name) => page.screenshot({ path: join(args.out, name), fullPage: true });
  /** Runs one part of the test; a failure is a problem with a screenshot, and the next part runs. */
  async function part(name, f) {
    try {
      await f();
    } catch (e) {
      // Playwright's call log, without its colours.
      problems.push(`${name}: ${e.message.replace(/\x1b\[[0-9;]*m/g, "").split("\n").slice(0, 6).join("\n")}`);
      await shot(`failed-${name}.png`).catch(() => {});
    }
  }
  /** What the page shows for its prediction number `seq`. */
  async function shownPrediction(seq) {
    const el = await page.waitForSelector(`#result .prediction[data-seq="${seq}"]`, { timeout });
    return el.evaluate((p) => ({
      version: Number(p.dataset.version),
      label: p.dataset.label,
      value: p.dataset.value === undefined ? undefined : Number(p.dataset.value),
      probabilities: Object.fromEntries([...p.querySelectorAll(".bar")].map((b) => [b.dataset.class, Number(b.dataset.p)])),
    }));
  }

  let firstPredictionMs = NaN;
  let readyMs = NaN;
  let wallMs = NaN;
  const shown = [];
  let okCalls = 0;
  let errorCalls = 0;
  try {
    await part("predict", async () => {
      const start = Date.now();
      await page.goto(`${args.url}/`);
      await page.waitForSelector(`#model option[value="${args.model}"]`, { state: "attached", timeout });
      await page.selectOption("#model", args.model);
      await page.waitForFunction(
        ([name, v]) => document.getElementById("model-info").textContent.startsWith(`${name} v${v}:`) && document.querySelector("#samples [data-sample]"),
        [args.model, production],
        { timeout },
      );
      for (let i = 0; i < samples.length; i++) {
        await page.click(`#samples [data-sample="${i}"]`);
        shown.push(await shownPrediction(i + 1));
        okCalls++;
        if (i === 0) {
          wallMs = Date.now() - start;
          loading = false;
          [readyMs, firstPredictionMs] = (await page.evaluate(() => [document.documentElement.dataset.readyMs, document.documentElement.dataset.firstPredictionMs])).map(Number);
        }
      }
      // The control plane's own answer for the same rows (server-side, the same module in wasmtime).
      const body = { inputs: [{ name: "input", shape: [samples.length, names.length], datatype: "FP64", data: samples.flat() }] };
      const served = await api(`/v2/models/${args.model}/infer`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      check(String(served.model_version) === String(production), `the server answered with version ${served.model_version}, the page predicted with ${production}`);
      const output = (n) => served.outputs.find((o) => o.name === n)?.data;
      let worst = 0;
      samples.forEach((_, i) => {
        const got = shown[i];
        check(got.version === production, `example ${i + 1}: predicted by v${got.version}, expected v${production}`);
        if (classes.length) {
          const label = output("label")[i];
          check(got.label === label, `example ${i + 1}: the page shows label ${JSON.stringify(got.label)}, the server ${JSON.stringify(label)}`);
          classes.forEach((c, k) => {
            const [a, b] = [got.probabilities[c], output("probabilities")[i * classes.length + k]];
            if (agree(a, b)) worst = Math.max(worst, scaledDifference(a, b));
            else problems.push(`example ${i + 1}: the page shows P(${c}) = ${a}, the server ${b}`);
          });
        } else {
          const [a, b] = [got.value, (output("value") ?? output("predictions"))[i]];
          if (agree(a, b)) worst = Math.max(worst, scaledDifference(a, b));
          else problems.push(`example ${i + 1}: the page shows ${a}, the server ${b}`);
        }
      });
      console.log(
        `web page: ${args.model}@${production}: ${samples.length} examples predicted in the page agree with POST /v2/models/${args.model}/infer ` +
          `(${classes.length ? "labels identical, " : ""}largest scaled difference ${worst.toExponential(2)}, tolerance ${TOLERANCE})`,
      );
    });

    // The rest drives the API through the page (`--only predict` stops here).
    rest: {
    if (args.only === "predict") {
      await shot("predict.png");
      break rest;
    }

    await part("schema-errors", async () => {
      // A NaN and a missing value: the page says which feature, and marks its field.
      await page.fill("#f0", "NaN");
      await page.click("#run");
      let text = await (await page.waitForSelector("#result .error", { timeout })).textContent();
      errorCalls++;
      check(text.includes(`'${names[0]}'`) && text.includes("NaN"), `a NaN in ${names[0]} shows ${JSON.stringify(text)}`);
      check(await page.$(`#f0[aria-invalid="true"]`), `the field of ${names[0]} is not marked invalid`);
      await page.click(`#samples [data-sample="0"]`);
      await shownPrediction(samples.length + 1);
      okCalls++;
      await page.fill("#f1", "");
      await page.click("#run");
      text = await (await page.waitForSelector("#result .error", { timeout })).textContent();
      errorCalls++;
      check(text.includes(`'${names[1]}'`) && text.includes("missing"), `a missing ${names[1]} shows ${JSON.stringify(text)}`);
    });

    await part("batch", async () => {
      const csv = [names.join(","), ...samples.map((r) => r.join(","))].join("\n");
      await page.click("#batch summary");
      await page.fill("#csv", csv);
      await page.click("#csv-run");
      await page.waitForSelector(`#batch-result tbody tr:nth-child(${samples.length})`, { timeout });
      okCalls++;
      const cells = await page.$$eval("#batch-result tbody tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
      cells.forEach((row, i) => {
        const want = classes.length ? shown[i]?.label : shown[i]?.value;
        const got = classes.length ? row[row.length - 2] : Number(row[row.length - 1]);
        check(classes.length ? got === want : Math.abs(got - want) <= 1e-5 * Math.max(Math.abs(want), 1), `CSV line ${i + 2}: ${got}, the example gave ${want}`);
      });
      await shot("predict.png");
      await page.setViewportSize(PHONE);
      await page.click(`#samples [data-sample="0"]`);
      okCalls++;
      await shot("predict-phone.png");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(overflow <= 1, `on a phone-sized screen the Predict tab is ${overflow} px wider than the screen`);
      await page.setViewportSize(DESKTOP);
    });

    await part("models", async () => {
      const { models } = await api("/api/v1/models");
      const entry = models.find((m) => m.name === args.model);
      const other = Math.max(...entry.versions.filter((v) => v !== production));
      if (!Number.isFinite(other)) throw new Error(`${args.model} has one version (${entry.versions}); the test needs two`);
      await page.click("#tab-models");
      await page.click(`#registry button[data-model="${args.model}"]`);
      await page.waitForSelector(`#model-detail tr[data-version="${other}"]`, { timeout });
      // A wrong token: refused, said so, and the alias stays.
      await page.fill("#token", "not-the-admin-token");
      await page.fill("#promote-alias", "production");
      await page.selectOption("#promote-version", String(other));
      await page.click("#promote button[type=submit]");
      const refused = await (await page.waitForSelector("#alias-status .error", { timeout })).textContent();
      check(refused.includes("401"), `a wrong token shows ${JSON.stringify(refused)}`);
      check((await alias()) === production, "a wrong token moved the alias");
      // The admin token: production moves to the other version.
      await page.fill("#token", args.token);
      await page.click("#promote button[type=submit]");
      await page.waitForSelector("#alias-status .ok", { timeout });
      check((await alias()) === other, `after Promote, production is at v${await alias()}, expected v${other}`);
      const stored = await page.evaluate(() => [sessionStorage.getItem("wasmline.adminToken"), JSON.stringify(localStorage)]);
      check(stored[0] === args.token && !stored[1].includes(args.token), "the token must be in sessionStorage only");
      await page.waitForSelector(`#model-detail li[data-alias="production"]`, { timeout });
      await shot("models.png");
      // The Predict tab follows the alias.
      await page.waitForFunction(([name, v]) => document.getElementById("model-info").textContent.startsWith(`${name} v${v}:`), [args.model, other], { timeout });
      // Roll back: production is back where it was.
      await page.click(`#model-detail li[data-alias="production"] button`);
      await page.waitForFunction((v) => document.querySelector("#alias-status .ok")?.textContent.includes(`production → v${v}`), production, { timeout });
      check((await alias()) === production, `after Roll back, production is at v${await alias()}, expected v${production}`);
      console.log(`web page: the Models tab refused a wrong token, promoted v${other} to production and rolled it back to v${production} (checked through the API)`);
    });

    await part("runs", async () => {
      await page.click("#tab-runs");
      await page.waitForSelector("#run-list tbody tr:nth-child(2)", { timeout });
      const boxes = await page.$$("#run-list tbody input[type=checkbox]");
      await boxes[0].check();
      await boxes[1].check();
      await page.click("#compare");
      await page.waitForSelector("#comparison table", { timeout });
      const metrics = await page.$$eval("#comparison tr[data-metric]", (rows) => rows.map((r) => r.dataset.metric));
      check(metrics.length > 0, "the run comparison shows no metric");
      check((await page.$$("#comparison .delta")).length > 0, "the run comparison shows no delta");
      await shot("runs.png");
    });

    await part("telemetry", async () => {
      await page.click("#tab-monitoring");
      await page.click("#send-telemetry");
      await page.waitForSelector("#telemetry-status.ok, #telemetry-status.error", { timeout });
      const status = await page.textContent("#telemetry-status");
      // The page also sends by itself every 10 s: the click sends, or finds it already went.
      check(status.startsWith("sent") || status.startsWith("nothing new to send: the last report went at"), `Send telemetry: ${JSON.stringify(status)}`);
      // /metrics counts the page's predict calls under runtime="browser".
      const deadline = Date.now() + 15000;
      let ok = 0, error = 0, lines = [];
      while (Date.now() < deadline) {
        [ok, error, lines] = await browserRequests();
        [ok, error] = [ok - before[0], error - before[1]];
        if (ok >= okCalls && error >= errorCalls) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      check(ok >= okCalls && error >= errorCalls, `/metrics shows ${ok} ok and ${error} failed browser requests for ${args.model}, the page made ${okCalls} and ${errorCalls}:\n${lines.join("\n")}`);
      await page.waitForSelector(`#charts .card[data-runtime="browser"][data-model="${args.model}"]`, { timeout });
      await shot("monitoring.png");
      console.log(`web page: the page's telemetry reached /metrics: ${ok} ok and ${error} failed predict calls under runtime="browser"`);
    });

    await part("signing-key", async () => {
      // The first load pinned the control plane's key, and the models loaded verified under it.
      const served = await api("/api/v1/signing-key");
      const pinned = await page.evaluate(() => JSON.parse(localStorage.getItem("wasmline.signingKey")));
      check(pinned?.key_id === served.key_id && pinned?.public_key === served.public_key, `the page pinned ${JSON.stringify(pinned)}, the control plane's key is ${JSON.stringify(served)}`);
      await page.click("#tab-predict");
      const info = await page.textContent("#model-info");
      check(info.includes(`manifest signature verified with key ${served.key_id}`), `the model line says ${JSON.stringify(info)}`);
      // Another key pinned, as if the control plane's key had changed since: every model is
      // refused, and the page says why.
      const other = { algorithm: "ed25519", key_id: "0123456789abcdef", public_key: "ab".repeat(32), pinned_at: "2026-01-01T00:00:00Z" };
      await page.evaluate((pin) => localStorage.setItem("wasmline.signingKey", JSON.stringify(pin)), other);
      await page.goto(`${args.url}/?model=${args.model}#predict`);
      const refused = await (await page.waitForSelector("#model-info .error", { timeout })).textContent();
      check(
        refused.includes(`presents signing key ${served.key_id}`) && refused.includes(`pinned key ${other.key_id}`) && refused.includes("models are refused"),
        `under another pinned key the page shows ${JSON.stringify(refused)}`,
      );
      check(!(await page.$("#samples [data-sample]")) && !(await page.$("#form input")) && (await page.isDisabled("#run")), "the page offers a model although the key changed");
      const stillPinned = await page.evaluate(() => JSON.parse(localStorage.getItem("wasmline.signingKey")));
      check(stillPinned?.key_id === other.key_id, `a refused key replaced the pin: ${JSON.stringify(stillPinned)}`);
      await shot("key-changed.png");
      // Forgetting the pin: the control plane's key is pinned again and the model loads.
      await page.click("#forget-key");
      await page.waitForFunction(([name, v]) => document.getElementById("model-info").textContent.startsWith(`${name} v${v}:`), [args.model, production], { timeout });
      const repinned = await page.evaluate(() => JSON.parse(localStorage.getItem("wasmline.signingKey")));
      check(repinned?.key_id === served.key_id, `after Forget the pin is ${JSON.stringify(repinned)}, expected key ${served.key_id}`);
      await page.click(`#samples [data-sample="0"]`);
      const again = await shownPrediction(1);
      check(again.version === production, `after Forget the page predicted with v${again.version}, expected v${production}`);
      console.log(
        `web page: the page pinned signing key ${served.key_id} on first load, refused the model while another key (${other.key_id}) was pinned, ` +
          "and predicted again once the pin was forgotten",
      );
    });
    }
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }

  check(outside.size === 0, `the page fetched from outside the control plane: ${[...outside].join(", ")}`);
  const files = (await Promise.all(downloads)).filter(Boolean);
  const group = (f) => (f.url.includes("/sdk/") ? "sdk" : f.url.includes("/artifacts/") ? "model" : f.url.includes("/api/") ? "api" : "page");
  const totals = { all: { raw: 0, sent: 0, gzip: 0, headers: 0 } };
  for (const f of files) {
    for (const g of [(totals[group(f)] ??= { raw: 0, sent: 0, gzip: 0 }), totals.all]) {
      g.raw += f.raw;
      g.sent += f.sent;
      g.gzip += f.gzip;
    }
    totals.all.headers += f.headers;
  }
  const part2 = (g) => `${totals[g]?.raw ?? 0} B (${totals[g]?.sent ?? 0} B sent, ${totals[g]?.gzip ?? 0} B by node's gzip)`;
  for (const f of files) console.log(`web page: downloaded ${new URL(f.url).pathname}: ${f.raw} B (${f.sent} B sent, ${f.gzip} B by node's gzip)`);
  if (Number.isFinite(firstPredictionMs)) {
    console.log(
      `web page: load to first prediction ${firstPredictionMs} ms (page clock from navigation start; the model's form was ready at ${readyMs} ms, ` +
        `the rest is the test finding and clicking Example 1; ${wallMs} ms as the test saw it); ` +
        `${files.length} responses until then, bodies ${part2("all")} + ${totals.all.headers} B of headers: ` +
        `page ${part2("page")}, SDK ${part2("sdk")}, model ${part2("model")}, API ${part2("api")}`,
    );
  }
  if (problems.length) fail(1, `${problems.length} problem(s) (screenshots in ${args.out}):\n${problems.join("\n")}\n--- page log:\n${log.join("\n")}`);
  console.log(`web page: ok (screenshots in ${args.out})`);
}

main().catch((e) => fail(1, e.stack ?? String(e)));

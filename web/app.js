// Wasmline's web page: predict in this browser with a model's WebAssembly module (through the
// browser SDK at /sdk/), browse the registry, promote and roll back, compare runs, and watch
// latency and drift. Vanilla modules, no build step, nothing from outside the control plane.

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

// The SDK: imported now, awaited where a model is loaded (the other tabs work without it).
const sdk = import("/sdk/wasmline_sdk.js").then(async (m) => {
  await m.default();
  return m;
});
sdk.catch(() => {}); // shown where it is used


// ---------- small helpers ----------

/** An element: h("td", {class: "num", onclick}, "text", child, ...). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** JSON from the control plane; a failure throws its `{"error": {"code", "message"}}` message. */
async function api(path, { method = "GET", body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: the status says enough */
  }
  if (!r.ok) {
    const e = new Error(`${data?.error?.message ?? (text.slice(0, 200) || r.statusText)} (HTTP ${r.status} on ${method} ${path})`);
    e.status = r.status;
    throw e;
  }
  return data;
}

const num = (x, digits = 4) => (typeof x === "number" && Number.isFinite(x) ? Number(x.toPrecision(digits)).toString() : "–");
const ms = (seconds) => (typeof seconds === "number" ? `${num(seconds * 1000, 3)} ms` : "–");
const when = (t) => (t ? new Date(t).toLocaleString([], { dateStyle: "short", timeStyle: "medium" }) : "–");
const dataset = (d) => (!d ? "–" : typeof d === "string" ? d : `${d.name ?? "?"}${d.version !== undefined ? ` v${d.version}` : ""}`);
const duration = (a, b) => (a && b ? `${num((new Date(b) - new Date(a)) / 1000, 3)} s` : "–");
// Metrics where a smaller number is better.
const lowerIsBetter = (metric) => /rmse|mae|mse|loss|error/i.test(metric);

function message(el, text, kind = "error") {
  el.replaceChildren(h("p", { class: kind, role: kind === "error" ? "alert" : undefined }, text));
}

function table(head, rows, attrs = {}) {
  return h("div", { class: "scroll" }, h("table", attrs, h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))), h("tbody", {}, rows)));
}

// ---------- tabs ----------

const TABS = ["predict", "models", "runs", "monitoring"];
const shown = { models: loadModelsTab, runs: loadRuns, monitoring: loadMonitoring };

function showTab(name) {
  if (!TABS.includes(name)) name = "predict";
  for (const t of TABS) {
    $(t).hidden = t !== name;
    $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  shown[name]?.();
}
for (const t of TABS) $(`tab-${t}`).addEventListener("click", () => showTab(t));
addEventListener("hashchange", () => showTab(location.hash.slice(1)));

// ---------- the registry ----------

const state = {
  registry: null, // [{name, latest_version, versions, aliases}] or null when unavailable
  loaded: new Map(), // "name@version" -> Model (kept: its telemetry is posted)
  loading: new Map(), // "name@version" -> the loadModel promise while it runs
  model: null,
  choice: 0, // increases with every model choice; a slower earlier load does not win
  predictions: 0, // shown so far (each result carries its number)
};

async function loadRegistry() {
  const { models } = await api("/api/v1/models");
  state.registry = models;
  return models;
}

// ---------- Predict ----------

function fillModelSelect() {
  const select = $("model");
  const names = state.registry.map((m) => m.name);
  const previous = select.value || new URLSearchParams(location.search).get("model");
  select.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  const preferred = state.registry.find((m) => m.aliases?.production !== undefined)?.name ?? names[0];
  select.value = names.includes(previous) ? previous : preferred ?? "";
  fillVersionSelect();
}

function fillVersionSelect() {
  const entry = state.registry?.find((m) => m.name === $("model").value);
  const select = $("version");
  const previous = select.value;
  const aliases = Object.entries(entry?.aliases ?? { production: undefined });
  const versions = [...(entry?.versions ?? [])].sort((a, b) => b - a);
  select.replaceChildren(
    ...aliases.map(([a, v]) => h("option", { value: `alias:${a}` }, v === undefined ? a : `${a} (v${v})`)),
    ...versions.map((v) => h("option", { value: `v:${v}` }, `v${v}`)),
  );
  const values = [...select.options].map((o) => o.value);
  select.value = values.includes(previous) ? previous : values.includes("alias:production") ? "alias:production" : values[0] ?? "";
}

// ---------- the signing key, pinned on first load ----------

// loadModel trusts a manifest only if its signature verifies against the key it is given. The
// first load of the page pins the control plane's key (GET /api/v1/signing-key) in localStorage;
// later loads use the pinned key, and if the control plane presents another one, every model is
// refused, saying why, until the user clicks "Forget the pinned key" (which pins the new one).
// A control plane that cannot be reached leaves the pin in use. As an edge pins its key.
const KEY_PIN = "wasmline.signingKey";
let trusted = null; // the promise of this page's key: {algorithm, key_id, public_key, pinned_at}

class KeyChanged extends Error {}

function trustedKey() {
  trusted ??= (async () => {
    let pinned = null;
    try {
      pinned = JSON.parse(localStorage.getItem(KEY_PIN));
    } catch {
      /* not JSON: as if none */
    }
    let served;
    try {
      served = await api("/api/v1/signing-key");
    } catch (e) {
      if (pinned) return pinned;
      throw new Error(`Cannot get the control plane's signing key, which every model's manifest must verify against: ${e.message}`);
    }
    const { algorithm, key_id, public_key } = served;
    if (!pinned?.key_id) {
      const pin = { algorithm, key_id, public_key, pinned_at: new Date().toISOString() };
      localStorage.setItem(KEY_PIN, JSON.stringify(pin));
      return pin;
    }
    if (pinned.algorithm !== algorithm || pinned.key_id !== key_id || pinned.public_key !== public_key) {
      throw new KeyChanged(
        `The control plane now presents signing key ${key_id}, but this browser pinned key ${pinned.key_id}` +
          `${pinned.pinned_at ? ` on ${when(pinned.pinned_at)}` : ""}: models are refused, as they may not come from the control plane you trusted. ` +
          `If its key was replaced on purpose, forget the pinned key to trust the new one.`,
      );
    }
    return pinned;
  })();
  const asked = trusted;
  asked.catch(() => trusted === asked && (trusted = null)); // asked again on the next load
  return asked;
}

function forgetPinnedKey() {
  localStorage.removeItem(KEY_PIN);
  trusted = null;
  chooseModel();
}

async function chooseModel() {
  const choice = ++state.choice;
  const name = $("model").value;
  const pick = $("version").value;
  const info = $("model-info");
  $("run").disabled = $("csv-run").disabled = true;
  $("result").replaceChildren();
  if (!name || !pick) return message(info, "No model in the registry yet: train one with `wasmline pipeline run`.", "muted");
  info.className = "muted";
  info.textContent = `Loading ${name}…`;
  try {
    // An alias as the registry list just gave it (one round trip less), or as the server says now.
    const alias = pick.startsWith("alias:") ? pick.slice(6) : null;
    const listed = alias && state.registry?.find((m) => m.name === name)?.aliases?.[alias];
    const version = !alias ? Number(pick.slice(2)) : listed ?? (await api(`/api/v1/models/${enc(name)}/aliases/${enc(alias)}`)).version;
    const key = `${name}@${version}`;
    let model = state.loaded.get(key);
    const start = performance.now();
    const signingKey = await trustedKey();
    if (!model) {
      let m;
      try {
        m = await sdk;
      } catch (e) {
        // The import error says little; the server's answer says how to get the SDK.
        const why = await api("/sdk/wasmline_sdk.js").then(() => String(e), (e2) => e2.message);
        throw new Error(`The browser SDK cannot be loaded: ${why}`);
      }
      // Choices of one version made while it loads share that load (two ran at once on a first
      // visit, and fetched the manifest and the module twice).
      let loading = state.loading.get(key);
      if (!loading) {
        loading = m.loadModel(`/api/v1/models/${enc(name)}/versions/${version}/artifacts`, signingKey);
        state.loading.set(key, loading);
      }
      try {
        model = await loading;
      } finally {
        state.loading.delete(key);
      }
      state.loaded.set(key, model);
    }
    if (choice !== state.choice) return;
    state.model = model;
    const loadMs = performance.now() - start;
    info.className = "muted";
    info.textContent =
      `${model.name} v${model.version}: ${model.task} of ${model.target}` +
      (model.classes.length ? ` (classes ${model.classes.join(", ")})` : "") +
      `, ${model.features.length} features; manifest signature verified with key ${signingKey.key_id}, module checked against its sha256` +
      (loadMs > 1 ? ` and loaded in ${num(loadMs, 3)} ms` : "") + ".";
    renderForm(model);
  } catch (e) {
    if (choice !== state.choice) return;
    state.model = null;
    $("form").replaceChildren();
    $("samples").replaceChildren();
    message(info, `Cannot load ${name}: ${e.message ?? e}`);
    if (e instanceof KeyChanged) info.append(h("button", { id: "forget-key", type: "button", onclick: forgetPinnedKey }, "Forget the pinned key"));
  }
}

function renderForm(model) {
  const fields = model.features.map((f, i) => {
    const hint = Number.isFinite(f.min) && Number.isFinite(f.max) ? `${num(f.min)} – ${num(f.max)}` : "";
    const input = f.categories
      ? h("select", { id: `f${i}`, name: f.name }, h("option", { value: "" }, "—"), f.categories.map((c, k) => h("option", { value: k }, c)))
      : h("input", { id: `f${i}`, name: f.name, type: "text", placeholder: hint, "aria-describedby": `h${i}` });
    return h("div", { class: "field" }, h("label", { for: `f${i}` }, f.name), input, h("small", { id: `h${i}`, class: "muted" }, f.categories ? `${f.categories.length} categories` : hint && `training range ${hint}`));
  });
  $("form").replaceChildren(...fields);
  $("samples").replaceChildren(
    model.sampleRows.length ? h("span", { class: "muted" }, "Examples from the test split:") : "",
    ...model.sampleRows.map((row, i) =>
      h("button", { type: "button", class: "chip", dataset: { sample: i }, onclick: () => (fillForm(model, row), predictForm()) }, `Example ${i + 1}`),
    ),
  );
  $("run").disabled = $("csv-run").disabled = false;
  // Since navigation started: when a visitor can first ask for a prediction.
  document.documentElement.dataset.readyMs ??= performance.now().toFixed(0);
}

function fillForm(model, row) {
  model.features.forEach((f, i) => ($(`f${i}`).value = String(row[f.name])));
}

/** A typed cell: empty is missing, a number is a number, anything else goes as text (the SDK names it). */
function cell(text) {
  const t = text.trim();
  if (t === "") return undefined;
  const x = Number(t);
  return Number.isNaN(x) && !/^[+-]?nan$/i.test(t) ? t : x;
}

function predictForm() {
  const model = state.model;
  if (!model) return;
  const row = {};
  model.features.forEach((f, i) => {
    const v = cell($(`f${i}`).value);
    if (v !== undefined) row[f.name] = v;
  });
  for (const el of $("form").querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const result = $("result");
  let out;
  const start = performance.now();
  try {
    [out] = model.predict([row]);
  } catch (e) {
    const text = String(e.message ?? e);
    const feature = /feature '([^']+)'/.exec(text)?.[1];
    const i = model.features.findIndex((f) => f.name === feature);
    if (i >= 0) {
      $(`f${i}`).setAttribute("aria-invalid", "true");
      $(`f${i}`).focus();
    }
    return message(result, `The model refused this row: ${text.replace(/^rows\[0\]: /, "")}`);
  }
  const elapsed = performance.now() - start;
  const shown = renderPrediction(model, out, elapsed);
  shown.dataset.seq = ++state.predictions;
  result.replaceChildren(shown);
  // Since navigation started: what a visitor waits for the first answer.
  if (state.predictions === 1) document.documentElement.dataset.firstPredictionMs = performance.now().toFixed(0);
}

function renderPrediction(model, out, elapsed) {
  const took = h("p", { class: "muted" }, `Predicted in this browser in ${elapsed < 1 ? `${Math.round(elapsed * 1000)} µs` : `${num(elapsed, 3)} ms`} by ${model.name} v${model.version} (WebAssembly).`);
  if (!("label" in out)) {
    return h("div", { class: "prediction", dataset: { value: out.value, model: model.name, version: model.version } }, h("p", { class: "big" }, `${model.target} = `, h("strong", {}, num(out.value, 6))), took);
  }
  const bars = Object.entries(out.probabilities).map(([c, p]) =>
    h("div", { class: `bar${c === out.label ? " top" : ""}`, dataset: { class: c, p } },
      h("span", { class: "name" }, c),
      h("span", { class: "track" }, h("span", { class: "fill", style: `width:${Math.max(0, Math.min(1, p)) * 100}%` })),
      h("span", { class: "pct" }, `${(p * 100).toFixed(2)}%`)),
  );
  return h("div", { class: "prediction", dataset: { label: out.label, model: model.name, version: model.version } },
    h("p", { class: "big" }, `${model.target} = `, h("strong", {}, out.label)), h("div", { class: "bars", role: "list", "aria-label": "class probabilities" }, bars), took);
}

// Batch: a CSV with a header row.
function parseCsv(text) {
  const rows = [];
  let row = [], value = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') value += c;
      else if (text[i + 1] === '"') (value += '"'), i++;
      else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ",") row.push(value), (value = "");
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(value), rows.push(row), (row = []), (value = "");
    } else value += c;
  }
  if (value !== "" || row.length) row.push(value), rows.push(row);
  return rows.filter((r) => r.length > 1 || r[0].trim() !== "");
}

const MAX_SHOWN = 200;

function predictCsv() {
  const model = state.model;
  const out = $("batch-result");
  if (!model) return;
  const [header, ...lines] = parseCsv($("csv").value);
  if (!header || !lines.length) return message(out, "Paste or choose a CSV: a header row naming the features, then one row per line.");
  const names = header.map((c) => c.trim());
  const featureNames = new Set(model.features.map((f) => f.name));
  const missing = [...featureNames].filter((n) => !names.includes(n));
  if (missing.length) return message(out, `The CSV has no column for ${missing.map((m) => `'${m}'`).join(", ")} (its header: ${names.join(", ")}).`);
  const extra = names.map((n, j) => [n, j]).filter(([n]) => !featureNames.has(n));
  const rows = lines.map((cells) => Object.fromEntries(names.map((n, j) => [n, cell(cells[j] ?? "")]).filter(([n, v]) => featureNames.has(n) && v !== undefined)));
  let results;
  const start = performance.now();
  try {
    results = model.predict(rows);
  } catch (e) {
    const text = String(e.message ?? e).replace(/^rows\[(\d+)\]/, (_, i) => `line ${Number(i) + 2} of the CSV`);
    return message(out, `The model refused the CSV: ${text}`);
  }
  const elapsed = performance.now() - start;
  const isClass = model.classes.length > 0;
  const target = names.indexOf(model.target);
  let score = "";
  if (target >= 0) {
    if (isClass) {
      const right = results.filter((r, i) => String(cell(lines[i][target] ?? "")) === r.label).length;
      score = ` Agreement with the CSV's ${model.target} column: ${right} of ${results.length} (${num((100 * right) / results.length, 3)}%).`;
    } else {
      const se = results.reduce((s, r, i) => s + (r.value - Number(lines[i][target])) ** 2, 0);
      score = ` RMSE against the CSV's ${model.target} column: ${num(Math.sqrt(se / results.length))}.`;
    }
  }
  const head = ["line", ...extra.map(([n]) => n), ...(isClass ? ["label", "probability"] : [model.target])];
  const body = results.slice(0, MAX_SHOWN).map((r, i) =>
    h("tr", {}, h("td", {}, i + 2), extra.map(([, j]) => h("td", {}, lines[i][j] ?? "")),
      isClass ? [h("td", {}, r.label), h("td", { class: "num" }, num(r.probabilities[r.label]))] : h("td", { class: "num" }, num(r.value, 6))),
  );
  out.replaceChildren(
    h("p", { class: "muted" }, `${results.length} rows predicted in this browser in ${num(elapsed, 3)} ms (${num((elapsed * 1000) / results.length, 3)} µs a row).${score}` +
      (results.length > MAX_SHOWN ? ` The first ${MAX_SHOWN} are shown.` : "")),
    table(head, body),
  );
}

$("form").addEventListener("submit", (e) => (e.preventDefault(), predictForm()));
$("model").addEventListener("change", () => (fillVersionSelect(), chooseModel()));
$("version").addEventListener("change", chooseModel);
$("csv-run").addEventListener("click", predictCsv);
$("csv-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  if (file.size > 20e6) return message($("batch-result"), `${file.name} is ${num(file.size / 1e6, 3)} MB; at most 20 MB here.`);
  $("csv").value = await file.text();
  predictCsv();
});

async function startPredict() {
  try {
    await loadRegistry();
    fillModelSelect();
  } catch (e) {
    // Without the registry list, a model named in ?model= (default: none) still loads.
    const name = new URLSearchParams(location.search).get("model");
    $("model").replaceChildren(...(name ? [h("option", { value: name }, name)] : []));
    fillVersionSelect();
    if (!name) return message($("model-info"), `Cannot list the registry: ${e.message}`);
  }
  await chooseModel();
}

// ---------- Models ----------

const TOKEN_KEY = "wasmline.adminToken";
$("token").value = sessionStorage.getItem(TOKEN_KEY) ?? "";
$("token").form.addEventListener("submit", (e) => e.preventDefault());
$("token").addEventListener("input", (e) => sessionStorage.setItem(TOKEN_KEY, e.target.value));

async function loadModelsTab() {
  const list = $("registry");
  try {
    const models = await loadRegistry();
    const rows = models.map((m) =>
      h("tr", {},
        h("td", {}, h("button", { type: "button", class: "link", dataset: { model: m.name }, onclick: () => showModel(m.name) }, m.name)),
        h("td", {}, (m.versions ?? []).map((v) => `v${v}`).join(" ")),
        h("td", {}, Object.entries(m.aliases ?? {}).map(([a, v]) => h("span", { class: "chip static" }, `${a} → v${v}`)))),
    );
    list.replaceChildren(models.length ? table(["Model", "Versions", "Aliases"], rows) : h("p", { class: "muted" }, "The registry is empty."));
    const current = $("model-detail").dataset.model ?? $("model").value ?? models[0]?.name;
    if (current && models.some((m) => m.name === current)) await showModel(current);
  } catch (e) {
    message(list, `Cannot list the registry: ${e.message}`);
  }
}

async function showModel(name) {
  const detail = $("model-detail");
  detail.dataset.model = name;
  let m;
  try {
    m = await api(`/api/v1/models/${enc(name)}`);
  } catch (e) {
    return message(detail, `Cannot read ${name}: ${e.message}`);
  }
  const versions = [...m.versions].sort((a, b) => b.version - a.version);
  const aliasesOf = (v) => Object.entries(m.aliases ?? {}).filter(([, a]) => a.version === v).map(([a]) => a);
  const rows = versions.map((v) =>
    h("tr", { dataset: { version: v.version } },
      h("td", {}, `v${v.version}`, aliasesOf(v.version).map((a) => h("span", { class: "chip static" }, a))),
      h("td", {}, v.family ?? "–"),
      h("td", {}, Object.entries(v.metrics ?? {}).map(([k, x]) => h("span", { class: k === v.selection_metric ? "metric chosen" : "metric", title: k === v.selection_metric ? "selection metric" : undefined }, `${k} ${num(x)}`))),
      h("td", {}, dataset(v.dataset)),
      h("td", {}, v.run_id ? h("button", { type: "button", class: "link", onclick: () => ((state.highlightRun = v.run_id), showTab("runs")) }, v.run_id) : "–"),
      h("td", {}, when(v.created_at))),
  );
  const aliases = Object.entries(m.aliases ?? {}).map(([a, rec]) =>
    h("li", { dataset: { alias: a } },
      h("strong", {}, a), ` → v${rec.version}, ${when(rec.updated_at)} by ${rec.by ?? "?"} `,
      h("button", { type: "button", disabled: !(rec.history ?? []).length, title: "point it back at its previous version", onclick: () => aliasAction(name, a, "rollback") }, "Roll back"),
      (rec.history ?? []).length ? h("details", {}, h("summary", {}, `history (${rec.history.length})`), h("ul", {}, rec.history.map((x) => h("li", {}, `v${x.version}, ${when(x.updated_at)} by ${x.by ?? "?"}`)))) : ""),
  );
  const aliasNames = Object.keys(m.aliases ?? {});
  detail.replaceChildren(
    h("h2", {}, name),
    h("h3", {}, "Versions"),
    table(["Version", "Family", "Metrics (selection metric in bold)", "Dataset", "Run", "Created"], rows),
    h("h3", {}, "Aliases"),
    aliases.length ? h("ul", { class: "aliases" }, aliases) : h("p", { class: "muted" }, "No alias yet."),
    h("form", { id: "promote", class: "row", onsubmit: (e) => (e.preventDefault(), aliasAction(name, $("promote-alias").value.trim(), "promote", Number($("promote-version").value))) },
      h("label", {}, "Move alias ", h("input", { id: "promote-alias", value: aliasNames.includes("production") || !aliasNames.length ? "production" : aliasNames[0], list: "alias-names", size: 12, required: true })),
      h("datalist", { id: "alias-names" }, aliasNames.map((a) => h("option", { value: a }))),
      h("label", {}, "to ", h("select", { id: "promote-version" }, versions.map((v) => h("option", { value: v.version }, `v${v.version}`)))),
      h("button", { type: "submit" }, "Promote")),
    h("p", { id: "alias-status", "aria-live": "polite" }),
  );
}

async function aliasAction(name, alias, action, version) {
  const status = $("alias-status");
  const token = $("token").value.trim();
  const path = `/api/v1/models/${enc(name)}/aliases/${enc(alias)}`;
  try {
    const rec = action === "promote"
      ? await api(path, { method: "PUT", body: { version }, token })
      : await api(`${path}/rollback`, { method: "POST", token });
    await loadModelsTab();
    message($("alias-status"), `${name}: ${alias} → v${rec.version}${rec.by ? ` (by ${rec.by})` : ""}.`, "ok");
    await refreshPredictChoices();
  } catch (e) {
    message(status, e.status === 401 ? `Not allowed: ${e.message}. Enter the admin token above.` : `Cannot ${action === "promote" ? "promote" : "roll back"}: ${e.message}`);
  }
}

// After an alias moved, the Predict tab's choices say so (the model in use reloads if it followed).
async function refreshPredictChoices() {
  fillModelSelect();
  if ($("version").value.startsWith("alias:")) await chooseModel();
}

// ---------- Runs ----------

async function loadRuns() {
  const list = $("run-list");
  let runs;
  try {
    ({ runs } = await api("/api/v1/runs?limit=50"));
  } catch (e) {
    return message(list, `Cannot list runs: ${e.message}`);
  }
  const metricNames = [...new Set(runs.flatMap((r) => Object.keys(r.metrics ?? {})))].slice(0, 6);
  const kinds = new Set(runs.map((r) => r.kind).filter(Boolean));
  const rows = runs.map((r) =>
    h("tr", { class: r.run_id === state.highlightRun ? "highlight" : undefined, dataset: { run: r.run_id } },
      h("td", {}, h("input", { type: "checkbox", value: r.run_id, "aria-label": `select ${r.run_id}`, onchange: updateCompare })),
      h("td", {}, r.run_id), kinds.size > 1 && h("td", {}, r.kind), h("td", {}, h("span", { class: `status ${r.status}` }, r.status ?? "–")),
      h("td", {}, runModel(r), Object.keys(runParams(r)).length ? h("small", { class: "muted" }, " ", Object.entries(runParams(r)).map(([k, v]) => `${k}=${v}`).join(" ")) : ""), h("td", {}, runDataset(r)), h("td", {}, when(started(r))), h("td", {}, duration(started(r), finished(r))),
      metricNames.map((k) => h("td", { class: "num" }, num(r.metrics?.[k])))),
  );
  list.replaceChildren(runs.length ? table(["", "Run", ...(kinds.size > 1 ? ["Kind"] : []), "Status", "Model", "Dataset", "Started", "Took", ...metricNames], rows) : h("p", { class: "muted" }, "No runs yet."));
  list.querySelector(".highlight")?.scrollIntoView({ block: "center" });
  updateCompare();
}

// Run records as stored: a pipeline run names its model in its config; a candidate its family.
const runModel = (r) => r.model ?? r.config?.train?.model_name ?? r.candidate?.family ?? r.family ?? "–";
const runParams = (r) => r.params ?? r.candidate?.params ?? {};
const runDataset = (r) => (typeof r.dataset === "string" && r.dataset_version !== undefined ? `${r.dataset} v${r.dataset_version}` : dataset(r.dataset));
const started = (r) => r.started_at ?? r.created_at;
const finished = (r) => r.finished_at ?? (["running", "queued"].includes(r.status) ? undefined : r.updated_at);

function selectedRuns() {
  return [...$("run-list").querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);
}

function updateCompare() {
  const n = selectedRuns().length;
  $("compare").disabled = n < 2;
  $("runs-note").textContent = n < 2 ? "Select two or more runs to compare them (the first is the baseline)." : `${n} runs selected.`;
}

$("compare").addEventListener("click", async () => {
  const ids = selectedRuns();
  const out = $("comparison");
  let c;
  try {
    c = await api(`/api/v1/runs/compare?ids=${ids.map(enc).join(",")}`);
  } catch (e) {
    return message(out, `Cannot compare: ${e.message}`);
  }
  const base = ids[0];
  const metricRows = Object.entries(c.metrics ?? {}).map(([metric, byRun]) =>
    h("tr", { dataset: { metric } }, h("th", {}, metric), ids.map((id) => {
      const [x, b] = [byRun[id], byRun[base]];
      if (id === base || typeof x !== "number" || typeof b !== "number") return h("td", { class: "num" }, num(x));
      const d = x - b;
      const better = d === 0 ? "" : (d < 0) === lowerIsBetter(metric) ? "better" : "worse";
      return h("td", { class: "num" }, num(x), " ", h("span", { class: `delta ${better}`, dataset: { delta: d } }, `${d >= 0 ? "+" : ""}${num(d, 3)}`));
    })),
  );
  const byId = new Map((c.runs ?? []).map((r) => [r.run_id, r]));
  const paramNames = [...new Set((c.runs ?? []).flatMap((r) => Object.keys(runParams(r))))];
  const show = (v) => (v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const paramRows = paramNames.map((p) => h("tr", {}, h("th", {}, p), ids.map((id) => h("td", {}, show(runParams(byId.get(id) ?? {})[p])))));
  const info = (label, f) => h("tr", {}, h("th", {}, label), ids.map((id) => h("td", {}, f(byId.get(id) ?? {}))));
  out.replaceChildren(
    h("h2", {}, "Comparison"),
    h("p", { class: "muted" }, `Deltas against ${base}; green is better.`),
    table(["", ...ids.map((id) => (id === base ? `${id} (baseline)` : id))],
      [info("model", runModel), info("kind", (r) => r.kind ?? "–"), info("dataset", runDataset), info("status", (r) => r.status ?? "–"), ...metricRows, ...paramRows], { class: "compare" }),
  );
});

// ---------- Monitoring ----------

let monitorTimer = null;

async function loadMonitoring() {
  clearTimeout(monitorTimer);
  const out = $("charts");
  try {
    const { models } = await api("/api/v1/telemetry/summary");
    out.replaceChildren(...(models.length ? models.map(monitorCard) : [h("p", { class: "muted" }, "No telemetry yet: predictions from edges and browsers show here.")]));
  } catch (e) {
    message(out, `Cannot read the telemetry summary: ${e.message}`);
  }
  if (!$("monitoring").hidden) monitorTimer = setTimeout(() => !document.hidden && !$("monitoring").hidden && loadMonitoring(), 10000);
}

function monitorCard(m) {
  const series = m.series ?? [];
  const last = series[series.length - 1];
  const rate = last ? `${num((last.ok ?? 0) + (last.error ?? 0), 3)}/min` : "–";
  const l = m.latency_seconds ?? {};
  const stat = (label, value) => h("div", { class: "stat" }, h("span", { class: "muted" }, label), h("strong", {}, value));
  const card = h("article", { class: "card", dataset: { model: m.model, version: m.version, runtime: m.runtime, node: m.node } },
    h("h3", {}, `${m.model} v${m.version}`, h("span", { class: "muted" }, ` · ${m.runtime} · ${m.node}`)),
    h("div", { class: "stats" }, stat("requests", `${m.ok ?? 0} ok, ${m.error ?? 0} failed`), stat(last ? `minute of ${new Date(last.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : "latest minute", rate), stat("p50", ms(l.p50)), stat("p95", ms(l.p95)), stat("p99", ms(l.p99)), stat("drift ratio", num(m.drift_ratio, 2))),
  );
  if (!series.length && !(m.features ?? []).length) return card.appendChild(h("p", { class: "muted" }, "No per-minute series or drift window yet.")), card;
  const charts = h("div", { class: "charts" });
  charts.innerHTML =
    lineChart("requests per minute", series.map((s) => [s.minute, (s.ok ?? 0) + (s.error ?? 0)]), {}) +
    lineChart("p95 latency (ms)", series.map((s) => [s.minute, s.p95 == null ? null : s.p95 * 1000]), {}) +
    lineChart("drift ratio", series.map((s) => [s.minute, s.drift_ratio]), { max: 1, threshold: 0.5 }) +
    psiChart(m.features ?? []);
  card.append(charts);
  return card;
}

const W = 320, H = 120, PAD = 28;

/** A line over minutes, as SVG text: points [[rfc3339, y or null]]. */
function lineChart(title, points, { max, threshold }) {
  const pts = points.filter(([, y]) => typeof y === "number" && Number.isFinite(y)).map(([t, y]) => [Date.parse(t), y]);
  const head = `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`;
  if (!pts.length) return `${head}<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="muted">no data yet</text></svg></figure>`;
  const [t0, t1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  const top = max ?? (Math.max(...pts.map((p) => p[1]), threshold ?? 0) * 1.1 || 1);
  const x = (t) => PAD + ((t - t0) / (t1 - t0 || 1)) * (W - PAD - 6);
  const y = (v) => H - 16 - (v / top) * (H - 24);
  const line = pts.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const dots = pts.length < 40 ? pts.map(([t, v]) => `<circle cx="${x(t).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2"><title>${esc(new Date(t).toLocaleTimeString())}: ${num(v)}</title></circle>`).join("") : "";
  const limit = threshold === undefined ? "" : `<line class="threshold" x1="${PAD}" x2="${W - 6}" y1="${y(threshold)}" y2="${y(threshold)}"/>`;
  const time = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return `${head}<line class="axis" x1="${PAD}" x2="${W - 6}" y1="${H - 16}" y2="${H - 16}"/><text x="2" y="12">${num(top, 2)}</text><text x="2" y="${H - 16}">0</text>` +
    `<text x="${PAD}" y="${H - 3}">${time(t0)}</text><text x="${W - 6}" y="${H - 3}" text-anchor="end">${time(t1)}</text>${limit}<path d="${line}"/>${dots}</svg></figure>`;
}

/** Per-feature PSI as horizontal bars, with the 0.2 drift threshold. */
function psiChart(features) {
  const title = "PSI per feature (drifted over 0.2)";
  if (!features.length) return `<figure><figcaption>${title}</figcaption><p class="muted">no drift window yet</p></figure>`;
  const row = 16, left = 130, height = features.length * row + 18;
  const top = Math.max(0.3, ...features.map((f) => f.psi ?? 0));
  const x = (v) => left + (v / top) * (W - left - 40);
  const bars = features.map((f, i) =>
    `<g class="${f.drifted ? "drifted" : ""}"><text x="${left - 4}" y="${i * row + 12}" text-anchor="end">${esc(f.name.length > 20 ? `${f.name.slice(0, 19)}…` : f.name)}</text>` +
    `<rect x="${left}" y="${i * row + 3}" width="${Math.max(1, x(f.psi ?? 0) - left).toFixed(1)}" height="${row - 5}"><title>${esc(f.name)}: PSI ${num(f.psi)}</title></rect>` +
    `<text x="${(x(f.psi ?? 0) + 3).toFixed(1)}" y="${i * row + 12}">${num(f.psi, 2)}</text></g>`).join("");
  return `<figure><figcaption>${title}</figcaption><svg viewBox="0 0 ${W} ${height}" role="img" aria-label="${title}">${bars}` +
    `<line class="threshold" x1="${x(0.2)}" x2="${x(0.2)}" y1="0" y2="${height - 14}"/><text x="${x(0.2)}" y="${height - 2}" text-anchor="middle">0.2</text></svg></figure>`;
}

// ---------- telemetry from this browser ----------

// A client id (not a secret): random, kept in this browser. getRandomValues works on plain http too.
const CLIENT_KEY = "wasmline.clientId";
const clientId = localStorage.getItem(CLIENT_KEY) ?? (() => {
  const id = `browser-${[...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  localStorage.setItem(CLIENT_KEY, id);
  return id;
})();
let batchSeq = 0;
// Batches taken from the models but not delivered yet. A model's window is reset as soon as its
// report is in a batch, so predictions made while a post is in flight go to the next one; a batch
// is retried with the same batch_id, which the control plane counts once.
const outbox = [];

function collectTelemetry() {
  const reports = [];
  for (const model of state.loaded.values()) {
    const t = model.telemetry();
    if (t.predictions.ok + t.predictions.error > 0) {
      reports.push(t);
      model.resetTelemetry();
    }
  }
  if (reports.length) outbox.push({ batch_id: `${clientId}.${Date.now().toString(36)}.${batchSeq++}`, node: clientId, reports });
  outbox.splice(0, Math.max(0, outbox.length - 50)); // bounded: the oldest go first
}

const post = (batch, keepalive) =>
  fetch("/api/v1/telemetry/browser", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(batch), keepalive });

// When a batch last reached the control plane (by the 10 s timer or the button).
let lastSent = null;

async function sendTelemetry() {
  collectTelemetry();
  let sent = 0, reports = 0;
  while (outbox.length) {
    const batch = outbox[0];
    let r;
    try {
      r = await post(batch, false);
    } catch (e) {
      return { sent, reports, error: `cannot reach the control plane (${e.message}); kept for later` };
    }
    if (!r.ok) {
      const text = await r.text();
      const why = (() => { try { return JSON.parse(text).error.message; } catch { return text.slice(0, 200); } })();
      // 429 and 5xx pass; anything else would be refused again.
      if (r.status === 429 || r.status >= 500) return { sent, reports, error: `HTTP ${r.status}: ${why}; kept for later` };
      outbox.shift();
      return { sent, reports, error: `HTTP ${r.status}: ${why}; batch dropped` };
    }
    outbox.shift();
    sent++;
    reports += batch.reports.length;
  }
  if (sent) lastSent = new Date();
  return { sent, reports };
}

async function sendAndShow() {
  const status = $("telemetry-status");
  const r = await sendTelemetry();
  const what = r.sent
    ? `sent ${r.reports} report(s) in ${r.sent} batch(es) at ${lastSent.toLocaleTimeString()}`
    : lastSent
      ? `nothing new to send: the last report went at ${lastSent.toLocaleTimeString()} (reports go every 10 s)`
      : "nothing to send: no predictions yet";
  status.textContent = r.error ? `${r.sent ? `${what}; then ` : ""}${r.error}` : what;
  status.className = r.error ? "error" : "ok";
  return r;
}

setInterval(() => sendTelemetry().then((r) => r.sent && !$("monitoring").hidden && loadMonitoring()), 10000);
$("send-telemetry").addEventListener("click", async () => {
  const r = await sendAndShow();
  if (r.sent) await loadMonitoring();
});
// Leaving or hiding the page: what is left goes out with keepalive (the page may be gone before an
// answer). A batch stays in the outbox until it is acknowledged; posting it again is harmless.
function flushOnExit() {
  collectTelemetry();
  for (const batch of outbox) {
    post(batch, true).then((r) => r.ok && outbox.includes(batch) && outbox.splice(outbox.indexOf(batch), 1), () => {});
  }
}
addEventListener("pagehide", flushOnExit);
document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && flushOnExit());

// ---------- start ----------

showTab(location.hash.slice(1));
startPredict();

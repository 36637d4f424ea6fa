// The browser parity page: loads the SDK and a model, predicts the rows of a JSON file, and puts
// everything on `window.__results` for tests/browser/parity.mjs (which compares it with the
// reference evaluator). Query parameters: `sdk` (URL of the browser SDK's wasmline_sdk.js),
// `model` (the model directory: manifest.json, model.wasm), `key` (the control plane's signing
// key, as GET /api/v1/signing-key returns it) and `rows` (a JSON array of rows).

const params = new URLSearchParams(location.search);
const status = document.getElementById("status");

function show(text, kind) {
  status.textContent = text;
  status.className = kind;
}

function table(features, rows, predictions) {
  const shown = Math.min(rows.length, 12);
  const head = ["#", ...features.map((f) => f.name), "prediction"];
  const body = [];
  for (let i = 0; i < shown; i++) {
    const p = predictions[i];
    const out = "label" in p
      ? `${p.label} (${Math.max(...Object.values(p.probabilities)).toFixed(3)})`
      : p.value.toFixed(4);
    const shownValue = (v) => (v === null || v === undefined || Number.isNaN(v) ? "missing" : Number(v.toPrecision(4)));
    body.push([i, ...features.map((f) => shownValue(rows[i][f.name])), out]);
  }
  const cell = (tag, v) => `<${tag}>${String(v)}</${tag}>`;
  document.getElementById("table").innerHTML =
    `<table><tr>${head.map((h) => cell("th", h)).join("")}</tr>` +
    body.map((r) => `<tr>${r.map((v) => cell("td", v)).join("")}</tr>`).join("") +
    `</table>${rows.length > shown ? `<p>… ${rows.length - shown} more rows</p>` : ""}`;
}

// The message of calling `f`, or null when it does not throw.
function errorOf(f) {
  try {
    f();
    return null;
  } catch (e) {
    return String(e && e.message !== undefined ? e.message : e);
  }
}

let stage = "loading the SDK";

async function run() {
  const sdk = await import(params.get("sdk"));
  await sdk.default();
  const key = await (await fetch(params.get("key"))).json();
  stage = "loadModel";
  const model = await sdk.loadModel(params.get("model"), key);
  stage = "predict";
  const features = model.features;
  document.getElementById("model").textContent =
    `${model.name}@${model.version}: ${model.task}, ${features.length} features` +
    (model.classes.length ? `, classes ${model.classes.join(", ")}` : `, target ${model.target}`);

  const rows = await (await fetch(params.get("rows"))).json();
  const predictions = model.predict(rows);

  // The same rows as arrays in feature order, and enough copies to take several predict calls.
  const arrays = model.predict(rows.map((r) => features.map((f) => r[f.name])));
  const many = [];
  while (many.length <= 2100) many.push(...rows);
  const start = performance.now();
  const batched = model.predict(many);
  const batchMs = performance.now() - start;
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const arrayMismatches = arrays.filter((p, i) => !same(p, predictions[i])).length;
  const batchMismatches = batched.filter((p, i) => !same(p, predictions[i % rows.length])).length;

  // Rows the SDK must refuse, each with a message naming the row and the feature (NaN and null
  // are missing values, accepted, where the model routes them: `missing` in the features).
  const first = rows[0];
  const [a, b] = features.map((f) => f.name);
  const without = { ...first };
  delete without[b];
  const errors = {
    missing: errorOf(() => model.predict([first, without])),
    unknown: errorOf(() => model.predict([{ ...first, not_a_feature: 1 }])),
    string: errorOf(() => model.predict([{ ...first, [a]: "12.5" }])),
    nan: errorOf(() => model.predict([first, first, { ...first, [b]: NaN }])),
    infinity: errorOf(() => model.predict([{ ...first, [a]: -Infinity }])),
    nullValue: errorOf(() => model.predict([{ ...first, [a]: null }])),
    shortArray: errorOf(() => model.predict([[1]])),
    notArray: errorOf(() => model.predict(first)),
  };

  table(features, rows, predictions);
  show(`${rows.length} rows predicted in the browser`, "ok");
  return {
    ok: true,
    model: {
      name: model.name,
      version: model.version,
      task: model.task,
      target: model.target,
      features,
      classes: model.classes,
      sampleRows: model.sampleRows,
    },
    predictions,
    arrayMismatches,
    batchRows: many.length,
    batchMs,
    batchMismatches,
    errors,
    drift: model.driftSnapshot(),
    telemetry: model.telemetry(),
  };
}

run().then(
  (results) => {
    window.__results = results;
  },
  (e) => {
    const message = String(e && e.message !== undefined ? e.message : e);
    if (stage !== "predict") document.getElementById("model").textContent = "no model loaded";
    show(`${stage} failed: ${message}`, "error");
    window.__results = { ok: false, stage, error: message };
  },
);

// Wasmline's browser SDK. The rules (signature, manifest, digests, module ABI, row checks,
// telemetry, drift) are model-wasm's, compiled into wasmline_sdk_bg.wasm (web/sdk/src); this file
// does what only JavaScript can: fetch, WebCrypto's Ed25519, instantiating and calling the model's
// module, and turning values into cells and results into objects.
//
//   import init, { loadModel } from "/sdk/wasmline_sdk.js";
//   await init();
//   const key = await (await fetch("/api/v1/signing-key")).json();   // pin it: web/app.js
//   const model = await loadModel("/api/v1/models/wine/versions/3/artifacts", key);
//   const [p] = model.predict([{ alcohol: 11.2, pH: 3.3 /* ... every feature */ }]);
//   // p = { label: "1", probabilities: { "0": 0.2, "1": 0.8 } }, or { value: 5.6 } for a regressor
//   model.telemetry();   // counts, latency histogram and drift, ready to post

let w; // the SDK module's exports, once init() ran
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Instantiates the SDK's module: `input` is its URL (by default the file beside this one), a
 * Response, its bytes or a WebAssembly.Module. */
export default async function init(input) {
  if (w) return w;
  input = await (input ?? new URL("wasmline_sdk_bg.wasm", import.meta.url));
  if (typeof input === "string" || input instanceof URL) input = await fetch(input);
  if (typeof input?.arrayBuffer === "function") {
    if (!input.ok) throw new Error(`cannot fetch the SDK's module ${input.url}: HTTP ${input.status}`);
    input = await input.arrayBuffer();
  }
  // The module's one import: decimal text to a number, correctly rounded (model-wasm's decimal.rs).
  const wasmline = { decimal_to_f64: (ptr, len) => Number(decoder.decode(new Uint8Array(w.memory.buffer, ptr >>> 0, len))) };
  const instance = await WebAssembly.instantiate(input, { wasmline });
  w = (instance.instance ?? instance).exports;
  return w;
}

// ---------- the module's ABI (web/sdk/src/exports.rs) ----------

/** Writes strings (UTF-8) and byte arrays back to back into the module's inbox; their lengths. */
function put(...parts) {
  const bytes = parts.map((p) => (typeof p === "string" ? encoder.encode(p) : p));
  const ptr = w.sdk_inbox(bytes.reduce((n, b) => n + b.length, 0)) >>> 0;
  let at = ptr;
  for (const b of bytes) {
    new Uint8Array(w.memory.buffer, at, b.length).set(b);
    at += b.length;
  }
  return bytes.map((b) => b.length);
}

/** The last call's output bytes and numbers, copied out. */
function outBytes() {
  const ptr = w.sdk_text_ptr() >>> 0;
  return new Uint8Array(w.memory.buffer, ptr, w.sdk_text_len() >>> 0).slice();
}
function outNumbers() {
  const ptr = w.sdk_numbers_ptr() >>> 0;
  return new Float64Array(w.memory.buffer, ptr, w.sdk_numbers_len() >>> 0).slice();
}
const outText = () => decoder.decode(outBytes());

/** A call's status: the error it left when negative. */
function ok(status) {
  if (status < 0) throw new Error(outText());
  return status;
}

/** Numbers and strings in the order `Tape` (web/sdk/src/session.rs) wrote them. */
class Tape {
  #numbers = outNumbers();
  #text = outBytes();
  #i = 0;
  #at = 0;

  #num() {
    return this.#numbers[this.#i++];
  }
  #flag() {
    return this.#num() === 1;
  }
  #str() {
    const end = this.#at + this.#num();
    const s = decoder.decode(this.#text.subarray(this.#at, end));
    this.#at = end;
    return s;
  }
  #nums() {
    const n = this.#num();
    const end = this.#i + n;
    const items = Array.from(this.#numbers.subarray(this.#i, end));
    this.#i = end;
    return items;
  }
  /** `{threshold, drifted_ratio, features: [{name, counts, missing, observed, psi, drifted, ks?}]}` */
  drift() {
    const threshold = this.#num();
    const drifted_ratio = this.#num();
    const features = Array.from({ length: this.#num() }, () => {
      const f = { name: this.#str(), counts: this.#nums(), missing: this.#num(), observed: this.#num(), psi: this.#num(), drifted: this.#flag() };
      const hasKs = this.#flag();
      const ks = this.#num();
      if (hasKs) f.ks = ks;
      return f;
    });
    return { threshold, drifted_ratio, features };
  }
  report() {
    return {
      model: this.#str(),
      version: this.#num(),
      runtime: this.#str(),
      predictions: { ok: this.#num(), error: this.#num(), rows: this.#num() },
      latency_seconds: { le: this.#nums(), counts: this.#nums(), sum: this.#num(), count: this.#num() },
      drift: this.drift(),
    };
  }
}

const messageOf = (e) => (e instanceof Error ? e.message : typeof e === "string" ? e : String(e));

/** `invalid model module: model.wasm: ${what}`. */
function moduleError(what) {
  w.sdk_module_error(...put(what));
  return new Error(outText());
}

/** A value that is not a number or a missing value, described as row errors describe it. */
function describe(v) {
  if (typeof v === "string") {
    w.sdk_describe_string(...put(v));
    return outText();
  }
  if (typeof v === "boolean") return `a boolean (${v})`;
  if (typeof v === "bigint") return "a BigInt";
  if (Array.isArray(v)) return "an array";
  return `of type ${typeof v}`;
}

// ---------- loading ----------

const KEY_NEEDED =
  "loadModel(baseUrl, signingKey) needs the control plane's signing key, {algorithm, key_id, public_key} " +
  "as GET /api/v1/signing-key returns it (pinned on first use), to verify the manifest";
const NO_WEBCRYPTO =
  "manifest signature cannot be checked: this page is not a secure context (https, or http on " +
  "localhost), so the browser offers no WebCrypto (crypto.subtle); refusing the model";

/** Loads the model at `baseUrl` (a directory holding `manifest.json` and `model.wasm`) and trusts
 * it only as far as `signingKey` does: the control plane's public key as `GET /api/v1/signing-key`
 * returns it, `{algorithm, key_id, public_key}` (an object or its JSON text). The manifest must be
 * signed by that key (same key id, `ed25519`, a signature over its canonical bytes that
 * verifies); only then is the module checked against the manifest's sha256, instantiated with no
 * imports and its exports checked against the module ABI and the manifest. Each refusal is an
 * error naming the file and the reason. */
export async function loadModel(baseUrl, signingKey) {
  if (!w) throw new Error("loadModel: call the SDK's init() (its default export) first");
  const key = trustedKey(signingKey);
  const base = String(baseUrl).replace(/\/+$/, "");
  const manifestUrl = `${base}/manifest.json`;
  const manifest = await fetchBytes(manifestUrl);
  const signed = w.sdk_signed(...put(manifest, ...key));
  if (signed === -2) throw new Error(outText()); // the key itself is refused
  let handle;
  try {
    ok(signed);
    await verifySignature(outBytes());
    handle = ok(w.sdk_open(...put(manifest)));
  } catch (e) {
    throw new Error(`${manifestUrl}: ${messageOf(e)}`);
  }
  try {
    const bytes = await fetchBytes(`${base}/model.wasm`);
    ok(w.sdk_verify_module(handle, ...put(bytes)));
    let instance;
    try {
      instance = (await WebAssembly.instantiate(bytes, {})).instance;
    } catch (e) {
      throw moduleError(`cannot instantiate it: ${messageOf(e)}`);
    }
    return new Model(handle, instance, JSON.parse(decoder.decode(manifest)));
  } catch (e) {
    w.sdk_free(handle);
    throw e;
  }
}

/** The key's three members, from the object or its JSON text. */
function trustedKey(value) {
  let o = value;
  if (typeof value === "string") {
    try {
      o = JSON.parse(value);
    } catch {
      o = undefined;
    }
  }
  const key = ["algorithm", "key_id", "public_key"].map((name) => o?.[name]);
  if (!key.every((v) => typeof v === "string")) throw new Error(KEY_NEEDED);
  return key; // checked by the module with the manifest's signature (sdk_signed)
}

/** The ed25519 arithmetic of the manifest's signature, by WebCrypto, once the module checked every
 * rule: `signed` is the key's 32 bytes, the signature's 64, and the signed message. */
async function verifySignature(signed) {
  const subtle = globalThis.crypto?.subtle;
  if (typeof subtle !== "object" || subtle === null) throw new Error(NO_WEBCRYPTO);
  const unavailable = (e) => new Error(`manifest signature cannot be checked: WebCrypto Ed25519: ${messageOf(e)}`);
  const refused = (badKey, why = "") => {
    w.sdk_signature_refused(badKey, ...put(why));
    return new Error(outText());
  };
  let pending;
  try {
    pending = subtle.importKey("raw", signed.subarray(0, 32), "Ed25519", false, ["verify"]);
  } catch (e) {
    throw unavailable(e);
  }
  const cryptoKey = await pending.catch((e) => {
    throw refused(1, messageOf(e));
  });
  let verified;
  try {
    verified = await subtle.verify("Ed25519", cryptoKey, signed.subarray(32, 96), signed.subarray(96));
  } catch (e) {
    throw unavailable(e);
  }
  if (verified !== true) throw refused(0);
}

/** The bytes at `url`, or an error naming the URL and the HTTP status. */
async function fetchBytes(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch ${url}: ${messageOf(e)}`);
  }
  if (typeof response?.arrayBuffer !== "function") throw new Error(`cannot fetch ${url}: not a Response`);
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status} ${response.statusText}`);
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    throw new Error(`cannot read ${url}: ${messageOf(e)}`);
  }
}

// ---------- a loaded model ----------

const freed = typeof FinalizationRegistry === "function" ? new FinalizationRegistry((h) => w.sdk_free(h)) : null;

/** A loaded model: its manifest, the instantiated module, and its telemetry. */
export class Model {
  #h;
  #manifest;
  #names;
  #classes;
  #memory;
  #calls;
  #layout;

  constructor(handle, instance, manifest) {
    w.sdk_abi_names();
    const abi = JSON.parse(outText());
    const exports = instance.exports;
    const memory = exports[abi.memory];
    if (!(memory instanceof WebAssembly.Memory)) throw moduleError(`it does not export a memory named '${abi.memory}'`);
    const fn = (name) => {
      if (typeof exports[name] !== "function") throw moduleError(`it does not export the function '${name}'`);
      return (...args) => call(name, exports[name], args);
    };
    // Every function looked up before any is called, in the ABI's order: the first missing is named.
    const queries = abi.layout.map(fn);
    const calls = abi.calls.map(fn);
    const layout = queries.map((query) => query());
    ok(w.sdk_start(handle, ...layout, memory.buffer.byteLength));
    const [, nFeatures, , stride, maxRows, input, output] = layout;
    this.#layout = { n: nFeatures, stride, maxRows, input, output, ok: abi.ok, nonFinite: abi.non_finite };
    this.#calls = Object.fromEntries(abi.calls.map((name, i) => [name, calls[i]]));
    this.#h = handle;
    this.#manifest = manifest;
    this.#memory = memory;
    this.#names = manifest.features.map((f) => f.name);
    this.#classes = manifest.output.classes ?? [];
    freed?.register(this, handle, this);
  }

  /** The model's name. */
  get name() {
    return this.#manifest.name;
  }
  /** The registry version. */
  get version() {
    return this.#manifest.version;
  }
  /** `classification` or `regression`. */
  get task() {
    return this.#classes.length ? "classification" : "regression";
  }
  /** The target column the model predicts. */
  get target() {
    return this.#manifest.output.target;
  }
  /** The inputs, in model order: `[{name, min, max}]` (min and max as seen in training; an
   * ordinal-encoded feature also has `categories`, the category of each code, and one whose
   * missing values the model routes `missing: true`). */
  get features() {
    return this.#manifest.features.map((f) => {
      const o = { name: f.name, min: f.min, max: f.max };
      if (f.categories != null) o.categories = [...f.categories];
      if (f.missing === true) o.missing = true;
      return o;
    });
  }
  /** The classes in index order (empty for a regressor). */
  get classes() {
    return [...this.#classes];
  }
  /** A few test rows from training, as objects `{feature: number}`. */
  get sampleRows() {
    return (this.#manifest.sample_rows ?? []).map((r) => Object.fromEntries(r.slice(0, this.#names.length).map((v, j) => [this.#names[j], v])));
  }

  /** Predicts `rows`: an array of objects `{feature: number}` (every feature, no other key) or of
   * arrays in feature order. Returns `[{label, probabilities: {class: p}}]` for a classifier and
   * `[{value}]` for a regressor. A feature the model routes missing values of (`missing: true` in
   * `features`) takes `null`, `undefined` or `NaN`. A row that cannot be predicted (missing or
   * unknown feature, a value that is not a finite number, a missing value elsewhere) fails the
   * whole call with an error naming the row and the feature. */
  predict(rows) {
    const h = this.#live;
    const start = performance.now();
    let x, results;
    try {
      [x, results] = this.#predict(rows);
    } catch (e) {
      w.sdk_record_error(h);
      throw e;
    }
    const seconds = (performance.now() - start) / 1000;
    const ptr = w.sdk_rows(h, rows.length) >>> 0;
    new Float64Array(w.memory.buffer, ptr, x.length).set(x);
    w.sdk_record_ok(h, seconds);
    return results;
  }

  /** The drift of every monitored feature since the last reset:
   * `{threshold, drifted_ratio, features: [{name, counts, missing, observed, psi, drifted}]}`. */
  driftSnapshot() {
    w.sdk_drift(this.#live);
    return new Tape().drift();
  }

  /** Counts, latency histogram and drift since the last reset, as the control plane ingests them:
   * `{model, version, runtime: "browser", predictions: {ok, error, rows},
   * latency_seconds: {le, counts, sum, count}, drift}`. */
  telemetry() {
    w.sdk_report(this.#live);
    return new Tape().report();
  }

  /** Starts a new telemetry window (call it once a report was delivered). */
  resetTelemetry() {
    w.sdk_reset(this.#live);
  }

  /** Frees the model's state in the SDK (also done when the Model is garbage collected); the
   * Model is of no use after. */
  free() {
    if (this.#h < 0) return;
    freed?.unregister(this);
    w.sdk_free(this.#h);
    this.#h = -1;
  }

  /** The model's handle in the SDK, or an error once freed (another model may hold it since). */
  get #live() {
    if (this.#h < 0) throw new Error("this Model was freed");
    return this.#h;
  }

  /** The checked feature vectors (concatenated) and the results. */
  #predict(rows) {
    if (!Array.isArray(rows)) {
      throw new Error("predict takes an array of rows (objects {feature: number} or arrays in feature order); wrap a single row in [ ]");
    }
    const { n, stride, maxRows } = this.#layout;
    const x = new Float64Array(rows.length * n);
    for (let i = 0; i < rows.length; i++) this.#row(i, rows[i], x.subarray(i * n, (i + 1) * n));
    const y = new Float64Array(rows.length * stride);
    for (let first = 0; first < rows.length; first += maxRows) {
      const end = Math.min(rows.length, first + maxRows);
      this.#run(first, x.subarray(first * n, end * n), y.subarray(first * stride, end * stride));
    }
    return [x, Array.from({ length: rows.length }, (_, i) => this.#result(y.subarray(i * stride, (i + 1) * stride)))];
  }

  /** Fills `out` from row `i`: straight through when it holds exactly the features as finite
   * numbers (what the check accepts as it is), else through the module's row check. */
  #row(i, row, out) {
    const h = this.#h;
    const names = this.#names;
    const finite = (v) => typeof v === "number" && Number.isFinite(v);
    if (Array.isArray(row)) {
      let fast = row.length === out.length; // (not `every`, which skips an array's holes)
      for (let j = 0; fast && j < row.length; j++) fast = finite(row[j]);
      if (fast) return out.set(row);
      w.sdk_row_begin(h);
      for (let j = 0; j < row.length; j++) this.#cell(row[j]);
      return this.#check(i, out, 0);
    }
    if (typeof row !== "object" || row === null) {
      const what = typeof row === "number" ? `the number ${row}` : row == null ? String(row) : describe(row);
      throw this.#rowError(i, -1, `is ${what}, not an object {feature: number} or an array in feature order`);
    }
    const keys = Object.keys(row);
    if (keys.length === out.length && names.every((name) => Object.hasOwn(row, name) && finite(row[name]))) {
      return names.forEach((name, j) => (out[j] = row[name]));
    }
    w.sdk_row_begin(h);
    for (const key of keys) w.sdk_row_key(h, ...put(key));
    for (const name of names) Object.hasOwn(row, name) ? this.#cell(row[name]) : w.sdk_cell_absent(h);
    this.#check(i, out, 1);
  }

  #check(i, out, named) {
    ok(w.sdk_row_check(this.#h, i, named));
    out.set(outNumbers());
  }

  /** One value, as the row check sees it: `null` and `undefined` are missing values (taken, as
   * NaN is, by the features the model routes). */
  #cell(v) {
    const h = this.#h;
    if (typeof v === "number") w.sdk_cell_number(h, v);
    else if (v === undefined || v === null) w.sdk_cell_null(h, v === undefined ? 1 : 0);
    else w.sdk_cell_other(h, ...put(describe(v)));
  }

  /** `rows[i]: feature 'name' ${reason}` (no feature when `feature` is negative). */
  #rowError(i, feature, reason) {
    w.sdk_row_error(this.#h, i, feature, ...put(reason));
    return new Error(outText());
  }

  /** One `predict` call of the module on at most `max_rows` rows (`x`) whose first is
   * `rows[first]`; fills `y` with their output slots. */
  #run(first, x, y) {
    const { n, input, output, ok: statusOk, nonFinite } = this.#layout;
    const calls = this.#calls;
    new Float64Array(this.#memory.buffer, input, x.length).set(x);
    const status = calls.predict(x.length / n);
    if (status === statusOk) return y.set(new Float64Array(this.#memory.buffer, output, y.length));
    if (status === nonFinite) {
      throw this.#rowError(first + calls.error_row(), calls.error_feature(), "is not a finite number (refused by the module)");
    }
    throw moduleError(`predict returned status ${status}: ${this.#lastError()}`);
  }

  /** The module's message for its last non-zero status ("" when it has none to give). */
  #lastError() {
    try {
      const ptr = this.#calls.last_error_ptr();
      const len = this.#calls.last_error_len();
      const inside = ptr >= 0 && len >= 0 && ptr + len <= this.#memory.buffer.byteLength;
      return inside ? decoder.decode(new Uint8Array(this.#memory.buffer, ptr, len)) : "";
    } catch {
      return ""; // it trapped
    }
  }

  /** `{label, probabilities}` or `{value}` from one row's output slots. */
  #result(out) {
    const classes = this.#classes;
    if (!classes.length) return { value: out[0] };
    const index = out[0];
    if (!(Number.isInteger(index) && index >= 0 && index < classes.length)) {
      throw moduleError(`it returned label index ${index} for ${classes.length} classes`);
    }
    const probabilities = {};
    classes.forEach((c, k) => (probabilities[c] = out[1 + k]));
    return { label: classes[index], probabilities };
  }
}

/** Calls a module export that returns an `i32`; a trap becomes an error naming it. */
function call(name, f, args) {
  let v;
  try {
    v = f(...args);
  } catch (e) {
    throw moduleError(`'${name}' trapped: ${messageOf(e)}`);
  }
  if (typeof v !== "number") throw moduleError(`'${name}' did not return a number`);
  return v | 0;
}

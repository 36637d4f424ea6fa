// The SDK's JavaScript half in Node, as a page uses it: node sdk.mjs SDK_DIR FIXTURES_DIR.
// SDK_DIR holds wasmline_sdk.js and wasmline_sdk_bg.wasm; FIXTURES_DIR (written by
// web/sdk/tests/node.rs) holds model directories (manifest.json, model.wasm) and keys.json. A
// stand-in fetch serves FIXTURES_DIR. Prints what each scenario gave, as JSON, for node.rs to
// check against model-wasm run natively.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [sdkDir, fixtures] = process.argv.slice(2);
const sdk = await import(pathToFileURL(join(sdkDir, "wasmline_sdk.js")).href);
await sdk.default(readFileSync(join(sdkDir, "wasmline_sdk_bg.wasm")));

globalThis.fetch = async (url) => {
  try {
    return new Response(readFileSync(join(fixtures, url)));
  } catch {
    return new Response("not found", { status: 404, statusText: "Not Found" });
  }
};

const keys = JSON.parse(readFileSync(join(fixtures, "keys.json"), "utf8"));
const error = (f) => {
  try {
    f();
    return null;
  } catch (e) {
    return e.message;
  }
};
const loadError = async (dir, key) => {
  try {
    const model = await sdk.loadModel(dir, key);
    return `loaded ${model.name}`;
  } catch (e) {
    return e.message;
  }
};

const out = {};
const model = await sdk.loadModel("/genuine", keys.trusted);
out.model = {
  name: model.name,
  version: model.version,
  task: model.task,
  target: model.target,
  features: model.features,
  classes: model.classes,
  sampleRows: model.sampleRows,
};

// Missing values where the model routes them: null, undefined and NaN, by name and by position.
out.routed = model
  .predict([
    { x0: null, x1: 1, x2: 1 },
    { x0: 7, x1: undefined, x2: 9 },
    { x0: NaN, x1: NaN, x2: 4 },
    [undefined, null, 2],
    [4, 0.5, 1],
  ])
  .map((r) => r.value);
out.telemetry = model.telemetry();
out.telemetryText = JSON.stringify(model.telemetry());
out.drift = model.driftSnapshot();

// More rows than one call of the module takes, against one row at a time.
const many = Array.from({ length: 2500 }, (_, i) => [i % 10, (i % 7) / 2, i % 5]);
const batched = model.predict(many).map((r) => r.value);
out.batchRows = many.length;
out.batchMismatches = many.filter((row, i) => model.predict([row])[0].value !== batched[i]).length;

model.resetTelemetry();
const refused = (row) => error(() => model.predict([row]));
out.refused = {
  nullX2: refused({ x0: 1, x1: 1, x2: null }),
  undefinedX2: refused([1, 1, undefined]),
  nanX2: refused([1, 1, NaN]),
  infinityX0: refused([Infinity, 1, 1]),
  absentX1: refused({ x0: 1, x2: 1 }),
  unknown: refused({ x0: 1, x1: 1, x2: 1, x9: 1 }),
  string: refused({ x0: "NaN", x1: 1, x2: 1 }),
  longString: refused([1, "a value far too long to be shown whole", 1]),
  boolean: refused([true, 1, 1]),
  array: refused({ x0: [], x1: 1, x2: 1 }),
  object: refused([1, {}, 1]),
  bigint: refused([1, 1, 2n]),
  short: refused([1]),
  holes: refused(new Array(3)),
  number: refused(5),
  null: refused(null),
  text: refused("x0=1"),
  notArray: error(() => model.predict({ x0: 1, x1: 1, x2: 1 })),
  second: error(() => model.predict([[1, 1, 1], { x0: 1 }])),
};
out.afterRefusals = model.telemetry().predictions;
model.resetTelemetry();
out.afterReset = model.telemetry().predictions;

// The key as its JSON text, and a trailing slash.
out.keyText = await loadError("/genuine/", JSON.stringify(keys.trusted));
out.loads = {};
for (const [dir, key] of [
  ["/rehashed", "trusted"],
  ["/other-key", "trusted"],
  ["/forged-id", "trusted"],
  ["/other-key", "other"],
  ["/unsigned", "trusted"],
  ["/null-signature", "trusted"],
  ["/tampered-module", "trusted"],
  ["/no-predict", "trusted"],
  ["/no-such-model", "trusted"],
]) {
  out.loads[`${dir} ${key}`] = await loadError(dir, keys[key]);
}
out.badKeys = [];
for (const key of [undefined, null, {}, "not json", JSON.stringify(keys.wrongId), keys.rsa]) {
  out.badKeys.push(await loadError("/genuine", key));
}

// A freed model refuses every call, even once another model holds its handle; freeing twice is
// harmless.
const first = await sdk.loadModel("/genuine", keys.trusted);
first.free();
first.free();
const second = await sdk.loadModel("/genuine", keys.trusted);
out.freed = {
  predict: error(() => first.predict([[4, 0.5, 1]])),
  telemetry: error(() => first.telemetry()),
  other: second.predict([[4, 0.5, 1]])[0].value,
  otherCalls: second.telemetry().predictions.ok,
};

console.log(JSON.stringify(out));

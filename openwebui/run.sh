#!/usr/bin/env bash
# The real Open WebUI, in Debian's Chromium, in front of a freshly baked service; all traffic on loopback.
#
#   bash openwebui/run.sh
#
# 1. Installs what is missing, side by side: Debian's chromium; Open WebUI (pinned) in openwebui/.venv,
#    with the CPU build of torch installed first so no CUDA packages come along; the default project,
#    baked into openwebui/.scratch/bake and installed in openwebui/.scratch/venv; playwright-core from
#    npm (it never downloads a browser). The tools are reused when present; the bake is new each run.
# 2. In a network namespace that has only loopback (`unshare -n`), starts the scripted LLM
#    (scripted_llm.py), the service (with an API key) and Open WebUI on free ports, waits for each (bounded),
#    and runs browser_test.mjs, which sends a message to each example model and checks what the page shows;
#    then, with the service also registered as Open WebUI's tool server (OpenAPI and MCP), one chat per kind in
#    which the LLM calls the service's search tool through Open WebUI.
# 3. With LLAMA_SERVER_BIN and LLAMA_MODEL_PATH set (as .ci/run sets them; required under CI=true), once more
#    with a real LLM: llama-server with that model, the service restarted on its port to talk to it, and one
#    chat whose answer must appear in the page (its words are not checked: a small model's are not stable).
# Screenshots and logs go to openwebui/artifacts/. Every process started here is stopped by its PID.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
SLUG=haystack_service
OPEN_WEBUI_VERSION=0.12.4
TORCH_VERSION=2.13.0
PLAYWRIGHT_VERSION=1.65.1
PYTHON="${PYTHON:-python3}"
SCRATCH="$HERE/.scratch"
ARTIFACTS="$HERE/artifacts"
RUN_DIR="$SCRATCH/run"  # Open WebUI's DATA_DIR and HOME: new each run, since env only seeds its stored config
INSTALL_SECONDS=1200
SERVICE_START_SECONDS=120
WEBUI_START_SECONDS=300
START_EPOCH="${START_EPOCH:-$(date +%s)}"
export START_EPOCH HAYSTACK_TELEMETRY_ENABLED=False PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

step() { echo "== openwebui [$(($(date +%s) - START_EPOCH))s]: $*"; }

# --- installing (each job runs as `run.sh --job NAME` in a process group of its own) ---

job_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  fi
  /usr/bin/chromium --version
}

job_open_webui() {
  local wanted="import importlib.metadata as m; assert m.version('open-webui') == '$OPEN_WEBUI_VERSION'"
  if ! "$HERE/.venv/bin/python" -c "$wanted" 2>/dev/null; then
    "$PYTHON" -m venv "$HERE/.venv"
    "$HERE/.venv/bin/python" -m pip install --quiet "torch==$TORCH_VERSION"
    "$HERE/.venv/bin/python" -m pip install --quiet "open-webui==$OPEN_WEBUI_VERSION"
  fi
  if "$HERE/.venv/bin/python" -m pip list 2>/dev/null | grep -i '^nvidia-'; then
    echo "CUDA packages came along with Open WebUI: torch $TORCH_VERSION must be installed first" >&2
    return 1
  fi
}

job_service() {
  test -x "$SCRATCH/venv/bin/python" || "$PYTHON" -m venv "$SCRATCH/venv"
  "$SCRATCH/venv/bin/python" -m pip install --quiet "cookiecutter>=2.6,<3"
  rm -rf "$SCRATCH/bake"
  "$SCRATCH/venv/bin/cookiecutter" --no-input --output-dir "$SCRATCH/bake" "$ROOT"
  test -f "$SCRATCH/bake/$SLUG/tests/engine/upstream.py"
  "$SCRATCH/venv/bin/python" -m pip install --quiet -c "$SCRATCH/bake/$SLUG/constraints.txt" -e "$SCRATCH/bake/$SLUG"
}

JOB_PIDS=()
JOB_NAMES=()

start_job() {
  setsid -w bash "$HERE/run.sh" --job "$1" >"$ARTIFACTS/install-$1.log" 2>&1 &
  JOB_PIDS+=($!)
  JOB_NAMES+=("$1")
}

stop_jobs() {
  local pid
  for pid in "${JOB_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${JOB_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

wait_jobs() {
  local i deadline=$((SECONDS + INSTALL_SECONDS))
  for i in "${!JOB_PIDS[@]}"; do
    while kill -0 "${JOB_PIDS[$i]}" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "installing ${JOB_NAMES[$i]} took over ${INSTALL_SECONDS}s" >&2
        exit 1
      fi
      sleep 1
    done
    if ! wait "${JOB_PIDS[$i]}"; then
      echo "installing ${JOB_NAMES[$i]} failed; the end of artifacts/install-${JOB_NAMES[$i]}.log:" >&2
      tail -n 30 "$ARTIFACTS/install-${JOB_NAMES[$i]}.log" >&2
      exit 1
    fi
    step "installed ${JOB_NAMES[$i]}"
  done
  JOB_PIDS=()
}

# --- serving and testing (inside the loopback-only namespace) ---

PIDS=()
SERVICE_PID=

# wait_or_kill PID: up to 10 s for PID to exit (after a TERM), then KILL.
wait_or_kill() {
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait_or_kill "$pid"; done
}

free_port() {
  "$SCRATCH/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for NAME URL SECONDS PID LOG: poll URL until it answers 200; fail at once if PID exits.
wait_for() {
  local name=$1 url=$2 seconds=$3 pid=$4 log=$5
  local check="import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)"
  local deadline=$((SECONDS + seconds))
  until "$SCRATCH/venv/bin/python" -c "$check" "$url" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name did not answer $url (within ${seconds}s, or it exited); the end of its log:" >&2
      tail -n 40 "$log" >&2
      exit 1
    fi
    sleep 0.5
  done
  step "$name is up at $url"
}

# start_service PORT LOG NAME=VALUE...: the baked service on PORT, its LLM named by the NAME=VALUE settings; it
# asks for SERVICE_KEY, which Open WebUI sends both as the model connection's key and as the tool servers'.
start_service() {
  local port=$1 log=$2
  shift 2
  (
    cd "$SCRATCH/bake/$SLUG"
    exec env "$@" API_KEYS="$SERVICE_KEY" DATA_DIR="$RUN_DIR/service-data" \
      "$SCRATCH/venv/bin/hypercorn" "$SLUG.asgi:app" --bind "127.0.0.1:$port"
  ) >"$log" 2>&1 &
  SERVICE_PID=$!
  PIDS+=("$SERVICE_PID")
  wait_for "the service" "http://127.0.0.1:$port/status" "$SERVICE_START_SECONDS" "$SERVICE_PID" "$log"
}

# real_model_pass SERVICE_PORT WEBUI_URL: the service, on the same port, now in front of llama-server.
# --n-predict caps each answer (Open WebUI sends no max_tokens), so a rambling small model ends in seconds.
real_model_pass() {
  local service_port=$1 webui_url=$2 llama_port
  llama_port=$(free_port)
  "$LLAMA_SERVER_BIN" --model "$LLAMA_MODEL_PATH" --alias smollm2 --host 127.0.0.1 --port "$llama_port" \
    --ctx-size 4096 --n-predict 64 --threads 2 >"$ARTIFACTS/llama-server.log" 2>&1 &
  PIDS+=($!)
  wait_for "llama-server" "http://127.0.0.1:$llama_port/health" 60 "$!" "$ARTIFACTS/llama-server.log"
  kill -TERM "$SERVICE_PID" 2>/dev/null || true
  wait_or_kill "$SERVICE_PID"
  local pid running=()
  for pid in "${PIDS[@]}"; do [ "$pid" = "$SERVICE_PID" ] || running+=("$pid"); done
  PIDS=("${running[@]}")
  start_service "$service_port" "$ARTIFACTS/service-real-model.log" OPENAI_API_KEY=no-key-needed \
    OPENAI_BASE_URL="http://127.0.0.1:$llama_port/v1" OPENAI_MODEL=smollm2
  step "drive Chromium against the real model (browser_test.mjs with REAL_MODEL=1)"
  REAL_MODEL=1 WEBUI_URL="$webui_url" SCENARIO="$HERE/scenario.json" ARTIFACTS="$ARTIFACTS" node "$HERE/browser_test.mjs"
}

# tool_server_connections SERVICE_URL: Open WebUI's TOOL_SERVER_CONNECTIONS, the service twice: as an OpenAPI
# tool server (it reads SERVICE_URL/openapi.json; tool id `server:haystack`, one tool per typed entry, named by
# the entry's model) and as an MCP server (SERVICE_URL/mcp; tool id `server:mcp:haystack`, its tools named
# `haystack_<tool>`). Both enabled, both sending SERVICE_KEY as a bearer token.
tool_server_connections() {
  local url=$1
  "$SCRATCH/venv/bin/python" - "$url" "$SERVICE_KEY" <<'PY'
import json, sys
url, key = sys.argv[1:]
def server(kind: str, server_url: str, path: str, name: str) -> dict:
    info = {"id": "haystack", "name": name, "description": "The Haystack service's typed entries"}
    return {"type": kind, "url": server_url, "path": path, "auth_type": "bearer", "key": key,
            "config": {"enable": True}, "info": info}
print(json.dumps([server("openapi", url, "openapi.json", "Haystack service (OpenAPI)"),
                  server("mcp", f"{url}/mcp", "", "Haystack service (MCP)")]))
PY
}

serve_and_test() {
  trap stop_all EXIT
  SERVICE_KEY="openwebui-test-$RANDOM$RANDOM"
  ip link set lo up 2>/dev/null || true
  rm -rf "$RUN_DIR"
  mkdir -p "$RUN_DIR/home" "$RUN_DIR/data"
  local llm_port service_port webui_port
  llm_port=$(free_port)
  service_port=$(free_port)
  webui_port=$(free_port)

  "$SCRATCH/venv/bin/python" "$HERE/scripted_llm.py" --port "$llm_port" --upstream "$SCRATCH/bake/$SLUG/tests/engine" \
    --scenario "$HERE/scenario.json" --log "$ARTIFACTS/llm-requests.jsonl" >"$ARTIFACTS/llm.log" 2>&1 &
  PIDS+=($!)
  wait_for "the scripted LLM" "http://127.0.0.1:$llm_port/v1/models" 30 "$!" "$ARTIFACTS/llm.log"

  start_service "$service_port" "$ARTIFACTS/service.log" OPENAI_API_KEY=scripted \
    OPENAI_BASE_URL="http://127.0.0.1:$llm_port/v1" OPENAI_MODEL=scripted-model

  # Offline and quiet: nothing to download, check or share; our service its only model connection and its tool
  # servers, and ENABLE_FORWARD_USER_INFO_HEADERS so the service knows it is talking to Open WebUI.
  (
    cd "$RUN_DIR"
    exec env HOME="$RUN_DIR/home" DATA_DIR="$RUN_DIR/data" WEBUI_SECRET_KEY="browser-test-$RANDOM$RANDOM" \
      OFFLINE_MODE=true HF_HUB_OFFLINE=1 RAG_EMBEDDING_ENGINE=openai WEBUI_AUTH=False ENABLE_OLLAMA_API=false \
      OPENAI_API_BASE_URL="http://127.0.0.1:$service_port/v1" OPENAI_API_KEY="$SERVICE_KEY" \
      TOOL_SERVER_CONNECTIONS="$(tool_server_connections "http://127.0.0.1:$service_port")" \
      ENABLE_FORWARD_USER_INFO_HEADERS=true ENABLE_VERSION_UPDATE_CHECK=false ENABLE_COMMUNITY_SHARING=false \
      ENABLE_WEB_SEARCH=false ENABLE_IMAGE_GENERATION=false ENABLE_CODE_INTERPRETER=false \
      ENABLE_CODE_EXECUTION=false ENABLE_EVALUATION_ARENA_MODELS=false BYPASS_EMBEDDING_AND_RETRIEVAL=true \
      SCARF_NO_ANALYTICS=true DO_NOT_TRACK=true ANONYMIZED_TELEMETRY=false \
      "$HERE/.venv/bin/open-webui" serve --host 127.0.0.1 --port "$webui_port"
  ) >"$ARTIFACTS/open-webui.log" 2>&1 &
  PIDS+=($!)
  wait_for "Open WebUI" "http://127.0.0.1:$webui_port/health" "$WEBUI_START_SECONDS" "$!" "$ARTIFACTS/open-webui.log"

  step "drive Chromium (browser_test.mjs)"
  WEBUI_URL="http://127.0.0.1:$webui_port" SCENARIO="$HERE/scenario.json" ARTIFACTS="$ARTIFACTS" \
    LLM_REQUESTS="$ARTIFACTS/llm-requests.jsonl" SERVICE_URL="http://127.0.0.1:$service_port" \
    SERVICE_KEY="$SERVICE_KEY" SERVICE_LOG="$ARTIFACTS/service.log" node "$HERE/browser_test.mjs"

  if [ -n "${LLAMA_SERVER_BIN:-}" ] && [ -n "${LLAMA_MODEL_PATH:-}" ]; then
    real_model_pass "$service_port" "http://127.0.0.1:$webui_port"
  else
    step "LLAMA_SERVER_BIN or LLAMA_MODEL_PATH not set: no pass with a real model"
  fi
}

main() {
  if [ "${CI:-}" = "true" ] && { [ -z "${LLAMA_SERVER_BIN:-}" ] || [ -z "${LLAMA_MODEL_PATH:-}" ]; }; then
    echo "CI=true but LLAMA_SERVER_BIN or LLAMA_MODEL_PATH is not set: the real-model pass would not run" >&2
    exit 1
  fi
  rm -rf "$ARTIFACTS"
  mkdir -p "$ARTIFACTS"
  trap stop_jobs EXIT
  step "install, side by side: chromium, Open WebUI $OPEN_WEBUI_VERSION, the baked service (logs: artifacts/install-*.log)"
  start_job chromium
  start_job open-webui
  start_job service
  if ! grep -qs "\"version\": \"$PLAYWRIGHT_VERSION\"" "$HERE/node_modules/playwright-core/package.json"; then
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  step "installed playwright-core $PLAYWRIGHT_VERSION"
  wait_jobs
  trap - EXIT

  step "serve and test in a network namespace with only loopback"
  if unshare -n true 2>/dev/null; then
    unshare -n bash "$HERE/run.sh" --serve-and-test
  else
    echo "unshare -n is not permitted here: serving in the host network (every address used is 127.0.0.1)"
    bash "$HERE/run.sh" --serve-and-test
  fi
  step "passed; screenshots in openwebui/artifacts/"
}

case "${1:-}" in
  --job) "job_${2//-/_}" ;;
  --serve-and-test) serve_and_test ;;
  *) main ;;
esac

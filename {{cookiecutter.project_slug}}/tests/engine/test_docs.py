"""The docs' code runs: every Python and shell block of README.md and docs/*.md is run here, or marked as not run.

Run, against a live service (the offline examples, as a reader without a key has them), as written but for the base
URL, in a fresh folder for each page:

- a shell block that talks to the service (its URL `127.0.0.1:<port>` in it), with `bash -e -o pipefail`; its
  output must hold no OpenAI error;
- a page's Python blocks, in order in one process, as a reader pastes them into one session;
- a Python block that is a whole wrapper module (its first line a docstring starting `Model \\`name\\``): served
  as that model, the package's imports (`..engine`, `..llm`, `..streaming`) pointed at the frozen examples'
  copies, and asked once on each API it serves;
- a Python block that makes a file a wrapper reads (its first line `# writes src/<package>/wrappers/<file>`):
  run before the service starts, from a project folder whose `src/<package>/wrappers/` is the served package.

Not run: a block whose first line is a comment starting `# excerpt` (part of a file or of a longer session) or
`# not run` (setup that needs the network or another machine, or a command that starts the service itself,
which the fixtures here do). docs/README.md tells doc writers the same.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import HYPERCORN_TOML, PACKAGE, PROJECT_DIR, TESTS_DIR, ServiceProcess, base_env, tiny_pdf, user

PAGES = sorted([PROJECT_DIR / "README.md", *(PROJECT_DIR / "docs").glob("*.md")])
FENCE = re.compile(r"^```(python|bash|sh|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"^\s*#\s*(excerpt|not run)\b", re.IGNORECASE)
WRAPPER_MODULE = re.compile(r'^"""Model `(\w+)`')
WRITES_WRAPPER_FILE = re.compile(r"^# writes (src/\w+/wrappers)/[\w.]+")
DOCUMENTED_PORT = tomllib.loads(HYPERCORN_TOML.read_text(encoding="utf-8"))["bind"].rpartition(":")[2]
SERVICE_URL = re.compile(rf"(127\.0\.0\.1|localhost):{DOCUMENTED_PORT}\b")
# A wrapper module of the docs imports the service package's modules; served here, the frozen examples' copies.
PACKAGE_IMPORTS = {"from ..engine import": f"from {PACKAGE}.engine import", "from ..llm import": "from ._llm import"}
PACKAGE_IMPORTS["from ..streaming import"] = "from ._streaming import"
DOC_WRAPPERS = "doc_examples"
RUN_TIMEOUT = 120
OPENAI_ERROR = re.compile(r'"error":\s*\{')  # an error envelope, or a failed response's error (`"error":null` is none)
# The files a reader has at hand, which the blocks upload: (name, its text).
READER_FILES = {
    "report.pdf": "Quarterly report: revenue grew by 12 percent.",
    "handbook.pdf": "Every employee gets 25 days of leave a year.",
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(PROJECT_DIR)}:{self.line}"

    @property
    def marked_not_run(self) -> bool:
        return bool(NOT_RUN.match(self.code))

    @property
    def writes_wrappers_folder(self) -> str | None:
        match = WRITES_WRAPPER_FILE.match(self.code) if self.language == "python" else None
        return match.group(1) if match else None

    @property
    def wrapper_model(self) -> str | None:
        match = WRAPPER_MODULE.match(self.code) if self.language == "python" else None
        return match.group(1) if match else None


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, text[: match.start()].count("\n") + 1, match.group(1), match.group(2))
        for match in FENCE.finditer(text)
    ]


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]
WRAPPER_BLOCKS = [block for block in ALL_BLOCKS if block.wrapper_model and not block.marked_not_run]
WRAPPER_FILE_BLOCKS = [block for block in ALL_BLOCKS if block.writes_wrappers_folder]


@pytest.fixture(scope="module")
def docs_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The frozen examples and the docs' wrapper modules, offline (no OPENAI_API_KEY), as a reader first runs them."""
    root = tmp_path_factory.mktemp("docs_wrappers")
    package = root / DOC_WRAPPERS
    shutil.copytree(TESTS_DIR / "examples", package, ignore=shutil.ignore_patterns("__pycache__"))
    for block in WRAPPER_BLOCKS:
        code = block.code
        for written, served in PACKAGE_IMPORTS.items():
            code = code.replace(written, served)
        (package / f"{block.wrapper_model}.py").write_text(code, encoding="utf-8")
    project = root / "project"
    for block in WRAPPER_FILE_BLOCKS:
        assert block.writes_wrappers_folder is not None
        wrappers_folder = project / block.writes_wrappers_folder
        wrappers_folder.parent.mkdir(parents=True, exist_ok=True)
        if not wrappers_folder.exists():
            wrappers_folder.symlink_to(package, target_is_directory=True)
        result = run([sys.executable, "-c", block.code], project)
        assert result.returncode == 0, f"{block.where} failed:\n{result.stdout}{result.stderr}"
    env = base_env(WRAPPERS_PACKAGE=DOC_WRAPPERS, PYTHONPATH=str(root))
    service = ServiceProcess(name="docs_service", workdir=tmp_path_factory.mktemp("docs_service"), env=env)
    service.env["MCP_SERVER_URLS"] = f"{service.base_url}/mcp"  # tools.md gives the model the service's own /mcp
    service.start()
    yield service
    service.stop()


def run(command: list[str], workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HAYSTACK_TELEMETRY_ENABLED": "False", "NO_PROXY": "*", "no_proxy": "*"}
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )


def served_here(code: str, service: ServiceProcess) -> str:
    """The block as written, its base URL the live service's."""
    return SERVICE_URL.sub(service.base_url.removeprefix("http://"), code)


def test_every_shell_block_runs_against_the_service_or_is_marked() -> None:
    unmarked = [
        block.where
        for block in ALL_BLOCKS
        if block.language != "python" and not block.marked_not_run and not SERVICE_URL.search(block.code)
    ]
    assert not unmarked, f"shell blocks neither talking to the service nor marked `# not run` / `# excerpt`: {unmarked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(PROJECT_DIR)))
def test_the_pages_blocks_run(page: Path, docs_service: ServiceProcess, tmp_path: Path) -> None:
    runnable = [
        block
        for block in blocks(page)
        if not (block.marked_not_run or block.wrapper_model or block.writes_wrappers_folder)
    ]
    if not runnable:
        return
    for name, text in READER_FILES.items():
        (tmp_path / name).write_bytes(tiny_pdf(text))
    failures = []
    for block in [block for block in runnable if block.language != "python"]:
        if not SERVICE_URL.search(block.code):
            continue  # test_every_shell_block_runs_against_the_service_or_is_marked says so
        result = run(["bash", "-e", "-o", "pipefail", "-c", served_here(block.code, docs_service)], tmp_path)
        if result.returncode != 0 or OPENAI_ERROR.search(result.stdout):
            failures.append(
                f"{block.where} exited {result.returncode}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
    python = [block for block in runnable if block.language == "python"]
    if python:
        script = "\n\n".join(served_here(block.code, docs_service) for block in python)
        result = run([sys.executable, "-c", script], tmp_path)
        if result.returncode != 0 or OPENAI_ERROR.search(result.stdout):
            where = ", ".join(block.where for block in python)
            failures.append(f"the Python blocks {where} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    assert not failures, "\n\n".join(failures) + f"\n\nservice log:\n{docs_service.log_tail(3000)}"


@pytest.mark.parametrize("block", WRAPPER_BLOCKS, ids=lambda block: block.wrapper_model or "")
def test_a_documented_wrapper_module_answers_on_its_apis(block: Block, docs_service: ServiceProcess) -> None:
    client = docs_service.client()
    model = block.wrapper_model
    assert model is not None
    models = [entry.id for entry in client.models.list()]
    assert model in models, f"{block.where} did not load:\n{docs_service.log_tail(3000)}"
    question = "What does the handbook say?"
    if "def run_chat_completion" in block.code:
        message = client.chat.completions.create(model=model, messages=user(question)).choices[0].message
        assert message.content or message.tool_calls, block.where
    if "def run_response" in block.code:
        response = client.responses.create(model=model, input=question)
        assert response.status == "completed" and response.output, block.where


def test_the_status_sample_lists_the_served_models(docs_service: ServiceProcess) -> None:
    """getting-started's sample /status and model log lines are what the examples serve."""
    text = (PROJECT_DIR / "docs" / "getting-started.md").read_text(encoding="utf-8")
    with docs_service.http() as http:
        served = sorted(http.get("/status").json()["models"])
    examples = sorted(path.stem for path in (TESTS_DIR / "examples").glob("[!_]*.py"))
    sample = next(json.loads(line) for line in text.splitlines() if line.startswith('{"status"') and '"models"' in line)
    assert sample["models"] == examples, "the sample /status lists other models than the examples"
    assert set(examples) <= set(served)
    logged = re.findall(r"Loaded wrapper '(\w+)'", text)
    assert logged == examples, "the sample log lists other models than the examples"


def test_the_yaml_recipe_answers_with_llm_py_and_the_documents_of_setup(docs_service: ServiceProcess) -> None:
    """docs/yaml-pipelines.md: offline (llm.py's stand-in, not the YAML's OpenAIChatGenerator), from the store it filled."""
    question = "How many days of leave do I get?"
    client = docs_service.client()
    answer = client.chat.completions.create(model="handbook_qa", messages=user(question)).choices[0].message.content
    assert answer is not None and answer.startswith("[offline"), answer
    assert "25 days of leave" in answer, answer
    assert "25 days of leave" in client.responses.create(model="handbook_qa", input=question).output_text

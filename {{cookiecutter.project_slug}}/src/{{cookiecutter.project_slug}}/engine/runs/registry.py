"""Finds the wrappers: each module (or subpackage) of the wrappers package is one model id.

They load after the service starts serving, one after another (`load_wrappers`), so that the health probes answer
while a slow `setup()` loads its models: until a wrapper is loaded, requests for its model get a retryable 503.
A wrapper whose import or `setup()` raised is remembered with its reason: its model answers 503
`model_failed_to_load` saying why, never "does not exist", which would send its user looking for a typo.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import importlib
import inspect
import logging
import pkgutil
import time
from dataclasses import dataclass, field

from ..generators.upstream_errors import clean_reason
from ..http.errors import OpenAIError
from ..observability.request_tracking import see_the_server_log
from .base_wrapper import BasePipelineWrapper
from .typed_entry import typed_entry

logger = logging.getLogger(__name__)

# API name -> the wrapper methods that implement it, async first (it avoids the thread pool).
API_METHODS = {
    "chat": ("run_chat_completion_async", "run_chat_completion"),
    "responses": ("run_response_async", "run_response"),
}
API_NAMES = {"chat": "Chat Completions (/v1/chat/completions)", "responses": "Responses (/v1/responses)"}
NAMED_MODELS = 10  # an unknown model's error names at most this many of the models that exist


@dataclass
class LoadedWrapper:
    model_id: str
    instance: BasePipelineWrapper
    created: int = field(default_factory=lambda: int(time.time()))
    # API -> `method_for`'s answer: a wrapper's class does not change once loaded, and every request asks.
    _methods: dict[str, str | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    def implements(self, method_name: str) -> bool:
        """Whether the wrapper defines `method_name` itself, rather than inheriting the base class's placeholder."""
        implementation = getattr(type(self.instance), method_name, None)
        return implementation is not None and implementation is not getattr(BasePipelineWrapper, method_name, None)

    def method_for(self, api: str) -> str | None:
        """Name of the method serving `api`, or None when this wrapper does not implement it."""
        if api not in self._methods:
            self._methods[api] = next((name for name in API_METHODS[api] if self.implements(name)), None)
        return self._methods[api]


@dataclass
class Registry:
    wrappers: dict[str, LoadedWrapper] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # model id -> why it failed to load, in one line
    loading: bool = True  # until every wrapper has been loaded (or has failed to)

    def require_loaded(self) -> None:
        """For the routes that need every wrapper (listing the models, telling them of an upload): 503 until then."""
        if self.loading:
            raise still_loading()

    def find(self, model_id: str, api: str) -> tuple[LoadedWrapper, str]:
        """The wrapper serving `model_id` and its method for `api`; 404, 400 or 503 in OpenAI's terms otherwise.

        A model used on an API it does not serve is the client's mistake, answered as OpenAI answers a model
        used on the wrong endpoint: a 400 naming the API it does serve. A 5xx would read as an outage, and
        clients retry it.
        """
        wrapper = self.require(model_id)
        method_name = wrapper.method_for(api)
        if method_name is None:
            served = " and ".join(API_NAMES[other] for other in API_METHODS if wrapper.method_for(other))
            message = f"The model '{model_id}' does not serve the {API_NAMES[api]} API; it serves the {served} API."
            raise OpenAIError(400, message, param="model", code="unsupported_api")
        return wrapper, method_name

    def require(self, model_id: str) -> LoadedWrapper:
        """The wrapper loaded as `model_id`; else why there is none: loading (503, retry), failed (503), unknown (404)."""
        wrapper = self.wrappers.get(model_id)
        if wrapper is not None:
            return wrapper
        if model_id in self.failed:
            raise failed_to_load(model_id, self.failed[model_id])
        if self.loading:
            raise still_loading()
        raise self.unknown(model_id)

    def unknown(self, model_id: str) -> OpenAIError:
        """The 404 for a model id nobody deployed, naming the models that exist: a typo is then obvious."""
        served = [wrapper.model_id for wrapper in self.serving()]
        shown = ", ".join(served[:NAMED_MODELS]) + (
            f" and {len(served) - NAMED_MODELS} more" if len(served) > NAMED_MODELS else ""
        )
        known = f" The models are: {shown}." if served else " This service serves no model."
        return OpenAIError(404, f"The model '{model_id}' does not exist.{known}", param="model", code="model_not_found")

    def readiness(self, ready_with_failed: bool) -> str | None:
        """The `wrappers` readiness check: "loading", "failed" (a deployed model is broken), or None when ready."""
        if self.loading:
            return "loading"
        return "failed" if self.failed and not ready_with_failed else None

    def serving(self) -> list[LoadedWrapper]:
        """Wrappers that implement at least one OpenAI API: the ones `/v1/models` lists."""
        return [w for w in self.wrappers.values() if any(w.method_for(api) for api in API_METHODS)]


def still_loading() -> OpenAIError:
    """The answer for a model that may not be loaded yet: the client may retry in a moment."""
    return OpenAIError(
        503,
        "The service is starting and this model is not loaded yet; retry shortly.",
        code="model_loading",
        headers={"x-should-retry": "true", "Retry-After": "1"},
    )


def failed_to_load(model_id: str, reason: str) -> OpenAIError:
    """A deployed model whose wrapper did not load: the operator must fix it, so retrying is no use."""
    message = f"The model '{model_id}' failed to load ({reason}); {see_the_server_log()}."
    return OpenAIError(503, message, param="model", code="model_failed_to_load")


def load_failure(error: BaseException) -> str:
    """Why a wrapper failed to load, in one line a client may see: the exception's type and its cleaned message."""
    text = clean_reason(str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def wrapper_names(package_name: str) -> list[str]:
    """The model ids the wrappers package holds, in the order they load; a missing package raises at once."""
    package = importlib.import_module(package_name)
    names = sorted(module_info.name for module_info in pkgutil.iter_modules(package.__path__))
    return [name for name in names if not name.startswith("_")]


async def load_wrappers(package_name: str, model_ids: list[str], registry: Registry) -> None:
    """Import each wrapper module and run its setup(); a broken one is logged and left out.

    Imports and sync setups run in a thread, so the event loop keeps answering meanwhile; an `async def setup`
    runs on the loop.
    """
    for model_id in model_ids:
        try:
            instance = await asyncio.to_thread(_new_wrapper, f"{package_name}.{model_id}")
            if inspect.iscoroutinefunction(instance.setup):
                await instance.setup()
            else:
                await asyncio.to_thread(instance.setup)
            typed_entry(model_id, instance)  # a typed entry that cannot be served fails the load, saying why
        except Exception as error:
            logger.exception("Model %r failed to load; serving the others without it", model_id)
            registry.failed[model_id] = load_failure(error)
            continue
        registry.wrappers[model_id] = LoadedWrapper(model_id, instance)
        logger.info("Loaded wrapper %r", model_id)
    registry.loading = False


def _new_wrapper(module_name: str) -> BasePipelineWrapper:
    module = importlib.import_module(module_name)
    wrapper_class = getattr(module, "PipelineWrapper", None)
    if not (inspect.isclass(wrapper_class) and issubclass(wrapper_class, BasePipelineWrapper)):
        raise TypeError(f"{module.__name__} has no PipelineWrapper class deriving from BasePipelineWrapper")
    return wrapper_class()

"""A typed entry that cannot be served: `**kwargs` has no schema. The wrapper fails to load, saying why."""

from typing import Any

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper


class PipelineWrapper(BasePipelineWrapper):
    def run_api(self, **kwargs: Any) -> str:
        return "never"

"""An async typed entry with a nested, optional input."""

from pydantic import BaseModel

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, OpenAIError


class Style(BaseModel):
    upper: bool = True
    suffix: str = "!"


class PipelineWrapper(BasePipelineWrapper):
    async def run_api_async(self, text: str, times: int = 1, style: Style | None = None) -> dict[str, str]:
        """Repeat `text`, styled."""
        if times > 10:
            raise OpenAIError(400, "At most 10 times.", param="times")
        style = style or Style()
        said = " ".join([text.upper() if style.upper else text] * times) + style.suffix
        return {"said": said}

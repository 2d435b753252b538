"""A typed entry that reads an uploaded file: a StoredFile parameter (a file id in JSON, the file in a form)."""

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, StoredFile, read_file


class PipelineWrapper(BasePipelineWrapper):
    def run_api(self, document: StoredFile, word: str, at_least: int = 0) -> dict[str, int | str]:
        """Count how often `word` occurs in an uploaded text file."""
        text = read_file(document.id).data.decode("utf-8", errors="replace")
        count = text.lower().split().count(word.lower())
        return {"filename": document.filename, "count": max(count, at_least)}

"""A wrapper that serves no API and only listens for uploads (`async def run_file_upload`)."""

import asyncio
import json

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, StoredFile, read_file

from . import _state_file


class PipelineWrapper(BasePipelineWrapper):
    async def run_file_upload(self, file: StoredFile) -> None:
        """Record what the service told us, and the bytes read back through the helper."""
        content = await asyncio.to_thread(read_file, file.id)
        path = _state_file(f"upload-{file.id}", "json")
        if path is not None:
            record = {"id": file.id, "filename": file.filename, "purpose": file.purpose, "bytes": file.bytes}
            path.write_text(json.dumps({**record, "content": content.data.decode()}))

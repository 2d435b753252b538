"""Images in a request, as Haystack `ImageContent`, so that a vision LLM behind a wrapper receives them.

An image reaches a request as a data URL (`data:image/png;base64,...`), as an `https://` URL, or (Responses
`input_image`) as the `file_id` of an uploaded image. Data URLs and uploaded files become ordinary
`ImageContent`s. A remote URL is never fetched here (a server that downloads whatever URL a client names can
be made to reach the network behind it): it becomes an `ImageContent` with no bytes and the URL in
`meta["url"]`, which the OpenAI chat generator of `generators/openai_generator.py` sends on as the URL itself (`put_image_urls_back`),
so the LLM server fetches it, as OpenAI does. Another generator sees an image without bytes: check
`image_url(image)` if yours cannot take URLs.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import base64
import mimetypes
from typing import Any
from urllib.parse import urlsplit

from haystack.dataclasses import ChatMessage, ImageContent

from ..files.uploaded_files import read_file
from ..http.errors import OpenAIError

URL_META = "url"
DETAILS = ("auto", "high", "low")


class ImageError(OpenAIError):
    """An image part that cannot be used; the client gets a 400 with OpenAI's code for it."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(400, message, code=code)


def image_from_url(url: object, detail: object = None) -> ImageContent:
    """An `image_url` (Chat) or `input_image.image_url` (Responses): a data URL, or an http(s) URL kept as is."""
    if not isinstance(url, str) or not url:
        raise ImageError("An image part needs a URL or a data URL.", "invalid_image_url")
    detail = detail if detail in DETAILS else None
    if url.startswith("data:"):
        return _from_data_url(url, detail)
    if urlsplit(url).scheme not in ("http", "https"):
        raise ImageError("An image URL must be http(s) or a data URL.", "invalid_image_url")
    mime_type = mimetypes.guess_type(urlsplit(url).path)[0]
    return ImageContent(base64_image="", mime_type=mime_type, detail=detail, meta={URL_META: url}, validation=False)


def image_from_file(file_id: str, detail: object = None) -> ImageContent:
    """An uploaded file (`input_image.file_id`) as an image; it is read from the file store now."""
    file = read_file(file_id)
    mime_type = file.mime_type or ""
    if not mime_type.startswith("image/"):
        raise ImageError(f"File {file_id} ({file.filename}) is not an image.", "unsupported_image_media_type")
    return _checked(base64.b64encode(file.data).decode("ascii"), mime_type, detail if detail in DETAILS else None)


def image_from_input_part(part: dict[str, Any]) -> ImageContent:
    """A Responses `input_image` part: `image_url` or `file_id`, and `detail`."""
    if isinstance(part.get("file_id"), str):
        return image_from_file(part["file_id"], part.get("detail"))
    return image_from_url(part.get("image_url"), part.get("detail"))


def image_url(image: ImageContent) -> str | None:
    """The remote URL an image stands for, or None when it holds its bytes."""
    url = image.meta.get(URL_META)
    return url if isinstance(url, str) else None


def put_image_urls_back(messages: list[ChatMessage], openai_messages: list[dict[str, Any]]) -> None:
    """In the Chat Completions messages Haystack made from `messages`, send each remote image as its URL.

    Haystack writes every `ImageContent` as a data URL, in the order of the message's parts; an image that
    stands for a URL has no bytes, so its part gets the URL instead.
    """
    for message, openai_message in zip(messages, openai_messages, strict=True):
        urls = [image_url(image) for image in message.images]
        if not any(urls) or not isinstance(openai_message.get("content"), list):
            continue
        image_parts = [part for part in openai_message["content"] if part.get("type") == "image_url"]
        for part, url in zip(image_parts, urls, strict=True):
            if url is not None:
                part["image_url"]["url"] = url


def _from_data_url(url: str, detail: str | None) -> ImageContent:
    header, _, payload = url[len("data:") :].partition(",")
    mime_type, *parameters = header.split(";")
    if "base64" not in parameters:
        raise ImageError("An image data URL must be base64 (data:image/png;base64,...).", "invalid_base64_image")
    return _checked(payload, mime_type or None, detail)


def _checked(base64_image: str, mime_type: str | None, detail: str | None) -> ImageContent:
    try:  # ImageContent checks the base64 and that the type is an image type
        return ImageContent(base64_image=base64_image, mime_type=mime_type, detail=detail)
    except ValueError as error:
        raise ImageError(f"The image cannot be used: {error}", "invalid_image") from None

"""URLs as they may be shown: never with their userinfo or query string (signatures, tokens)."""

from __future__ import annotations

from urllib.parse import urlsplit


def redactUrl(url: str) -> str:
    """``url`` without userinfo, query or fragment: safe for log lines."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<unparseable url>"
    suffix = "?<redacted>" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{suffix}"

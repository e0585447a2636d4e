"""Secrets out of URLs before they are printed, logged or stored."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

SECRET_PARAMS = {"password", "passwd", "pwd", "token", "private_key", "private_key_passphrase"}


def redact_url(url: str) -> str:
    """``url`` with any password (in the user part or a query parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:***@{host}"
        query = urlencode(
            [
                (key, "***" if key.lower() in SECRET_PARAMS else value)
                for key, value in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="*",
        )
        if netloc == parts.netloc and query == parts.query:
            return url
        rebuilt = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
        return rebuilt + (f"#{parts.fragment}" if parts.fragment else "")
    except ValueError:
        return "<unparseable URL>"

"""The files `lamed serve` serves to pages: lamed's copy of the pinned AlephBet bundle (with its
licence) and lamed-alephbet.js, the form of the snippet with no inline script (lamed/static)."""

from pathlib import Path

FOLDER = Path(__file__).parent / "static"
BUNDLE = "alephbet.min.js"
CSP_SCRIPT = "lamed-alephbet.js"
LICENCE = "alephbet.LICENSE"
_TYPES = {".js": "text/javascript; charset=utf-8", ".LICENSE": "text/plain; charset=utf-8"}


def _file_handler(name: str):
    """A proxy-event handler answering the file ``name`` of lamed/static."""
    path = FOLDER / name
    headers = {
        "Content-Type": _TYPES[path.suffix],
        "Access-Control-Allow-Origin": "*",  # the snippet loads it with crossorigin="anonymous", for its integrity check
        "Cache-Control": "public, max-age=3600",
        "X-Content-Type-Options": "nosniff",
    }

    def handler(event, context):
        return {"statusCode": 200, "headers": headers, "body": path.read_text(encoding="utf-8")}

    return handler


# URL path -> handler, for serve's routes.
HANDLERS = {f"/{name}": _file_handler(name) for name in (BUNDLE, CSP_SCRIPT, LICENCE)}

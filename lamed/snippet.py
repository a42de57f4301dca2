"""The AlephBet snippet that `lamed deploy` and `lamed serve` print for pasting into a page."""

import jinja2

ALEPHBET_VERSION = "0.27.0"

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("lamed", "templates"),
    autoescape=False,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def render_snippet(track_url: str, namespace: str = "alephbet") -> str:
    """HTML to paste into a page: the pinned AlephBet bundle and a LamedAdapter on ``track_url``."""
    return _environment.get_template("snippet.html.j2").render(
        track_url=track_url, namespace=namespace, alephbet_version=ALEPHBET_VERSION
    )

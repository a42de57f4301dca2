"""The AlephBet snippets that `lamed deploy` and `lamed serve` print for pasting into a page.

Two forms: the inline one (a script and a style in the page), and one for pages under a
Content-Security-Policy, with no inline script or style (lamed's lamed-alephbet.js and
attributes). Both load the pinned AlephBet bundle with its Subresource Integrity hash: from
jsDelivr, or from where the page's owner serves lamed's copy (`lamed serve` serves it).
"""

from urllib.parse import urlsplit

import jinja2

ALEPHBET_VERSION = "0.27.0"
ALEPHBET_CDN_URL = f"https://cdn.jsdelivr.net/npm/alephbet@{ALEPHBET_VERSION}/dist/alephbet.min.js"
# SHA-384 of that exact file (dist/alephbet.min.js of npm's alephbet 0.27.0, which lamed/static ships),
# base64, as the `integrity` attribute takes it. tests/test_snippet.py checks it against both copies.
ALEPHBET_INTEGRITY = "sha384-4VEL32ya6Zl4KzeC363t/ySCI+riTrRthoaev9aFmg7i5aF8/44TAI0fCz7Vvzha"

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("lamed", "templates"),
    autoescape=False,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def render_snippet(track_url: str, namespace: str = "alephbet", bundle_url: str = ALEPHBET_CDN_URL) -> str:
    """HTML to paste into a page: the pinned AlephBet bundle and a LamedAdapter on ``track_url``."""
    return _environment.get_template("snippet.html.j2").render(
        track_url=track_url, namespace=namespace, bundle_url=bundle_url,
        integrity=ALEPHBET_INTEGRITY, alephbet_version=ALEPHBET_VERSION,
    )


def render_csp_snippet(track_url: str, namespace: str, bundle_url: str, script_url: str) -> str:
    """The same experiment with no inline script or style: ``script_url`` serves lamed-alephbet.js."""
    script_sources = " ".join(dict.fromkeys((_origin(bundle_url), _origin(script_url))))
    return _environment.get_template("snippet-csp.html.j2").render(
        track_url=track_url, namespace=namespace, bundle_url=bundle_url, script_url=script_url,
        integrity=ALEPHBET_INTEGRITY, alephbet_version=ALEPHBET_VERSION,
        script_sources=script_sources, connect_source=_origin(track_url),
    )

"""The snippets lamed prints: the pinned AlephBet bundle with its integrity hash, lamed's copy of it
(and its licence), the files `lamed serve` serves, and the queue re-flush in every form.

tests/test_browser.py runs each form in Chromium and checks lamed's copy against npm's file.
"""

import base64
import hashlib
import re

import requests

from lamed import handlers, static_files
from lamed.serve import make_server
from lamed.snippet import ALEPHBET_CDN_URL, ALEPHBET_INTEGRITY, ALEPHBET_VERSION, render_csp_snippet, render_snippet

# SHA-384 of dist/alephbet.min.js in npm's alephbet 0.27.0, computed from the npm tarball's file.
PINNED_SHA384_HEX = "e1510bdf6c9ae999782b3782dfadedff248223eae24eb46d86869ebfd6859a0ee2e5a17cff8e13008d1f0b3ed5bf385a"
BUNDLE = static_files.FOLDER / static_files.BUNDLE
REFLUSH = 'lamed._queue = JSON.parse(lamed._storage.get(lamed.queue_name) || "[]");'


def test_lamed_ships_the_pinned_bundle_and_its_licence():
    data = BUNDLE.read_bytes()
    assert hashlib.sha384(data).hexdigest() == PINNED_SHA384_HEX
    assert ALEPHBET_INTEGRITY == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
    licence = (static_files.FOLDER / static_files.LICENCE).read_text()
    assert f"alephbet {ALEPHBET_VERSION}" in licence and "Copyright (C) 2015 Yoav Aner" in licence
    for bundled in ("sha1 1.1.1", "charenc 0.0.2", "crypt 0.0.2", "uuid 8.3.2"):
        assert f"== {bundled} (" in licence


def test_the_deploy_snippet_loads_the_cdn_copy_with_its_integrity():
    snippet = render_snippet("https://abc.execute-api.eu-west-1.amazonaws.com/prod/track", "shop")
    tag = f'<script src="{ALEPHBET_CDN_URL}" integrity="{ALEPHBET_INTEGRITY}" crossorigin="anonymous"></script>'
    assert ALEPHBET_CDN_URL.endswith(f"alephbet@{ALEPHBET_VERSION}/dist/alephbet.min.js")
    assert tag in snippet and REFLUSH in snippet and "lamed._flush();" in snippet


def test_the_csp_form_has_no_inline_script_or_style_and_names_its_directives():
    snippet = render_csp_snippet(
        "https://api.example.com/prod/track", 'a"b', "https://static.example.com/alephbet.min.js",
        "https://www.example.com/js/lamed-alephbet.js",
    )
    markup = re.sub(r"<!--.*?-->", "", snippet, flags=re.DOTALL)
    assert "<style" not in markup and "style=" not in markup
    assert re.findall(r"<script[^>]*>(.*?)</script>", markup, flags=re.DOTALL) == ["", ""]  # src only, no inline code
    assert f'integrity="{ALEPHBET_INTEGRITY}" crossorigin="anonymous"' in snippet
    assert 'data-track-url="https://api.example.com/prod/track" data-namespace="a&#34;b"' in snippet
    assert "script-src https://static.example.com https://www.example.com and connect-src https://api.example.com" in snippet
    script = (static_files.FOLDER / static_files.CSP_SCRIPT).read_text()
    assert REFLUSH.replace("lamed.", "adapter.") in script and "adapter._flush();" in script


def test_serve_serves_lameds_files_with_cors_for_the_integrity_check(store):
    # make_server points the handlers at ``store``; the finally gives them back
    try:
        _serve_files(store)
    finally:
        handlers.use_store(None)


def _serve_files(store):
    with make_server("127.0.0.1", 0, "k" * 30, store) as server:
        server.start()
        for name, kind in [(static_files.BUNDLE, "text/javascript"), (static_files.CSP_SCRIPT, "text/javascript"),
                           (static_files.LICENCE, "text/plain")]:  # fmt: skip
            for path in (f"/{name}", f"/prod/{name}"):
                response = requests.get(server.url + path, timeout=5)
                assert response.status_code == 200, path
                assert response.content == (static_files.FOLDER / name).read_bytes()
                assert response.headers["Content-Type"].startswith(kind)
                assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert requests.post(f"{server.url}/{static_files.BUNDLE}", timeout=5).status_code == 405

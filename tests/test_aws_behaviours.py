"""The catalogue of tests/aws_behaviours.py and the stricter AWS's code stay in step: every behaviour the
code models has an entry with a source, and every entry is modelled somewhere."""

import re
from pathlib import Path

from aws_behaviours import CATALOGUE

TESTS = Path(__file__).resolve().parent
LAYERS = [TESTS / "aws_faults.py", TESTS / "iam_policy.py"]
SOURCE = re.compile(r"https://\S+|botocore's|[\w.-]+/[\w.-]+#\d+")


def modelled() -> tuple[set[str], set[str]]:
    """The layer's event kinds, and the names of its ``behaviour:`` comments."""
    text = "\n".join(path.read_text() for path in LAYERS)
    events = set(re.findall(r'events\.append\(\("([^"]+)"', text))
    comments = set(re.findall(r"# behaviour: ([\w ]+?)\s*$", text, re.MULTILINE))
    return events, comments


def test_every_behaviour_the_layer_models_is_in_the_catalogue():
    events, comments = modelled()
    assert events and comments
    assert (events | comments) - set(CATALOGUE) == set()


def test_every_catalogue_entry_is_modelled_and_names_its_source():
    events, comments = modelled()
    assert set(CATALOGUE) - (events | comments) == set()
    for name, behaviour in CATALOGUE.items():
        assert SOURCE.search(behaviour.source), f"{name}: no source"

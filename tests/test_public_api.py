"""The package's documented API is what it exports."""

import re

import alit_core


def test_the_docstring_lists_exactly_what_all_exports():
    api = alit_core.__doc__.split("Public API", 1)[1].split("load_tokenizer and from_official return", 1)[0]
    listed = set()
    for line in api.splitlines()[1:]:
        listed |= set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", line.split(":", 1)[-1]))
    assert listed == set(alit_core.__all__)
    assert all(hasattr(alit_core, name) for name in alit_core.__all__)

"""The package's public names: sorted, and documented."""

from __future__ import annotations


def test_supervisor_all_is_sorted_and_documented() -> None:
    import inspect

    import selfheal.supervisor as pkg

    names = list(pkg.__all__)
    assert names == sorted(
        names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    for name in names:
        obj = getattr(pkg, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, name

"""``selfheal help [TOPIC]``: the documentation that ships with the package.

The pages of ``docs/`` are in the wheel (``selfheal/_docs``); from a source checkout they are
read where they are. Standard library only, so a bare install (no extras) can still show them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["docs_dir", "page", "topics", "usage", "version"]

_HERE = Path(__file__).resolve()
#: What each page is about, for the list of topics (a page not named here is listed too).
_ABOUT = {
    "supervisor": "selfheal run, programs, control commands, probes, sd_notify, supervisord",
    "configuration": "selfheal.toml section by section; errors and exit statuses",
    "recovery": "recovery rules, verification, escalation, the journal",
    "policies": "retry, timeout, bulkhead, fallback, FeatureManager, the pipeline",
    "breaker": "the circuit breaker",
    "health": "health checks and the /livez /readyz /healthz endpoints",
    "index": "the list of pages",
}

#: Words people type for what a page covers under another name.
_ALIASES = {
    "retry": "policies",
    "timeout": "policies",
    "bulkhead": "policies",
    "fallback": "policies",
    "pipeline": "policies",
    "features": "policies",
    "circuit-breaker": "breaker",
    "circuitbreaker": "breaker",
    "proxy": "chaos",
    "monkey": "chaos-monkey",
    "experiments": "chaos-experiments",
    "k8s": "kubernetes",
    "config": "configuration",
    "programs": "supervisor",
    "journal": "recovery",
}


def version() -> str:
    """Return the installed selfheal's version (``0+unknown`` when run from a bare checkout)."""
    import selfheal

    return str(selfheal.__version__)


def docs_dir() -> Path | None:
    """Return the directory of the documentation pages, or None if they are not installed."""
    for candidate in (_HERE.parents[1] / "_docs", _HERE.parents[3] / "docs"):
        if (candidate / "index.md").is_file():
            return candidate
    return None


def topics() -> dict[str, Path]:
    """Return every topic and its page, in a stable order."""
    root = docs_dir()
    if root is None:
        return {}
    pages = {p.stem: p for p in sorted(root.glob("*.md"))}
    order = [t for t in _ABOUT if t in pages] + [t for t in pages if t not in _ABOUT]
    return {t: pages[t] for t in order}


def page(topic: str) -> tuple[str, str]:
    """Return the topic a name (or unique prefix, any case) stands for, and its text.

    Raises:
        LookupError: For an unknown or ambiguous name; the message lists the topics.
    """
    known = topics()
    if not known:
        raise LookupError("the documentation is not installed with this copy of selfheal")
    key = topic.lower().removesuffix(".md")
    key = _ALIASES.get(key, key)
    matches = [t for t in known if t == key] or [t for t in known if t.startswith(key)]
    if len(matches) != 1:
        what = "ambiguous" if matches else "unknown"
        raise LookupError(f"{what} help topic {topic!r}; topics: {', '.join(known)}")
    return matches[0], known[matches[0]].read_text(encoding="utf-8")


def _title(path: Path) -> str:
    """Return a page's opening heading, without its ``#`` and backquotes ("" if none)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").replace("`", "").strip()
        if line.strip() and not line.startswith("<!--"):
            break  # a page that does not open with a title
    return ""


def usage() -> str:
    """Return the list of topics, for ``selfheal help`` without one."""
    lines = ["Help topics (selfheal help TOPIC):", ""]
    lines += [
        f"  {topic:<18} {_ABOUT.get(topic) or _title(path)}" for topic, path in topics().items()
    ]
    if len(lines) == 2:
        lines.append("  (the documentation is not installed with this copy of selfheal)")
    lines += ["", "Commands: selfheal --help; one command: selfheal help COMMAND."]
    return "\n".join(lines)

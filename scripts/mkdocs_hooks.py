"""mkdocs hooks (``hooks:`` in mkdocs.yml): generated and optional pages of the docs site.

* ``config-reference.md`` is generated from the schemas at build time
  (``rlstab_jax.config.reference.markdown``), so it cannot drift from them.
* Pages other work adds (``scaling.md``, ``reliability.md``) join the nav when their file
  exists; a nav entry for a missing file would fail the strict build.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

OPTIONAL_PAGES = (("Scaling (Ray, clusters)", "scaling.md"), ("Reliability", "reliability.md"))


def on_config(config):
    docs = Path(config["docs_dir"])
    listed = {str(v) for item in config["nav"] for v in _values(item)}
    for title, name in OPTIONAL_PAGES:
        if (docs / name).is_file() and name not in listed:
            # before "Run reports": next to the other how-to pages
            at = next((i for i, item in enumerate(config["nav"]) if "Run reports" in item),
                      len(config["nav"]))
            config["nav"].insert(at, {title: name})
    return config


def _values(item):
    """Every file name in a (nested) nav entry."""
    if isinstance(item, dict):
        for v in item.values():
            yield from _values(v)
    elif isinstance(item, list):
        for x in item:
            yield from _values(x)
    else:
        yield item


def on_files(files, config):
    from rlstab_jax.config.reference import markdown

    files.append(File.generated(config, "config-reference.md", content=markdown()))
    return files

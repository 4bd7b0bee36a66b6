"""The docs site builds in strict mode, and the generated config reference covers every key."""

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _flat_keys(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k != "kwargs":
            yield from _flat_keys(v, key + ".")
        else:
            yield key


def _text(path):
    """The page's text without tags or entities."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists():
        pytest.fail("mkdocs is not installed: pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_config_reference_has_every_key_print_config_prints(site):
    printed = subprocess.run([sys.executable, "-m", "rlstab_jax.train", "--print-config"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert printed.returncode == 0, printed.stderr
    keys = list(_flat_keys(yaml.safe_load(printed.stdout)))
    assert "train.total_steps" in keys and "agent.log_std_param" in keys
    html = (site / "config-reference" / "index.html").read_text()
    missing = [k for k in keys if f"<code>{k}</code>" not in html]
    assert not missing, f"config reference lacks {missing}"


def test_every_key_of_every_agent_has_type_default_and_help():
    from rlstab_jax.config.reference import all_sections

    sections = all_sections()
    assert {"agent (sac)", "agent (tqc)", "agent (droq)", "agent (reinforce)", "env", "train",
            "replay", "log", "checkpoint", "run"} <= set(sections)
    no_help = [k.key + f" ({s})" for s, keys in sections.items() for k in keys if not k.help]
    assert not no_help, f"add a 'name: text' entry to the schema docstring for {no_help}"
    by_key = {k.key: k for k in sections["agent (sac)"] + sections["train"]}
    assert by_key["agent.gamma"].range == "must be in [0, 1)" and by_key["agent.gamma"].hparam
    assert by_key["agent.log_std_param"].type == "'tanh' \\| 'clamp'"
    assert by_key["train.seeds"].default == "`1`" and by_key["train.seeds"].range == "must be >= 1"
    assert by_key["agent.actor_hidden"].type == "list[int]"


def test_included_sources_are_rendered_not_copied(site):
    readme = (ROOT / "README.md").read_text().splitlines()[:2]
    page = _text(site / "getting-started" / "index.html")
    for line in readme:  # the README's two commands, included from it
        assert "pip install -e" in line
        assert line.strip() in page
    concepts = (site / "concepts" / "index.html").read_text()
    first_fix = next(line for line in (ROOT / "docs/fixes.md").read_text().splitlines()
                     if line.startswith("| Smooth tanh log-std"))
    assert "Smooth tanh log-std (vs hard clamp)" in concepts and first_fix
    bench = (site / "benchmarks" / "index.html").read_text()
    assert "Latest numbers" in bench
    for page in ("concepts", "benchmarks", "getting-started"):
        assert "--8&lt;--" not in (site / page / "index.html").read_text()
    api = (site / "api/stability/index.html").read_text()
    assert 'id="rlstab_jax.stability.entropy.alpha_loss"' in api  # mkdocstrings rendered it

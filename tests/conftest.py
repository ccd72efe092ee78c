"""Shared fixtures: the location of ../shared and small configs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# On CI every run draws the same examples, so a red CI is a regression and not a new
# draw; local runs keep exploring (and hypothesis's database replays what they found).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
# datasets/ is used from the repository root (it is not installed; see setup.py).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = Path(os.environ.get("MEDSEG_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference" / "matterport"
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference/matterport, or skip when a clone has no shared/."""
    if not REFERENCE.is_dir():
        pytest.skip(f"matterport reference data not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real samples), or skip when absent."""
    if not DATA.is_dir():
        pytest.skip(f"shared sample data not found at {DATA}")
    return DATA


def options_without_help(parser) -> list[str]:
    """'COMMAND --option' for every option of every sub-command that has no help text."""
    commands = next(a for a in parser._actions if a.dest == "command").choices
    return [f"{name} {'/'.join(action.option_strings) or action.dest}"
            for name, command in commands.items() for action in command._actions
            if not action.help]

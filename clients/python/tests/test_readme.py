"""The Python snippet of the repository README's "Use it from your app" runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, App


def readme_snippet(lang: str) -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Use it from your app") :]
    match = re.search(f"```{lang}\n(.*?)```", section, re.DOTALL)
    assert match, f"no {lang} snippet under 'Use it from your app'"
    return match.group(1)


def test_the_readme_snippet_runs(app: App, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(readme_snippet("python"))
    env = {**os.environ, "CREDITD_URL": app.url, "CREDITD_KEY": app.key}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1.25 3.75"

"""The package metadata (pyproject.toml) and the default data locations (hdr_keras/paths.py).

Installing in a fresh virtualenv (``pip install .`` / ``-e .``, then ``hdr-keras predict`` from
another directory) needs the network for the build backend, so it is checked by hand, not here;
these tests keep the metadata consistent with the code it names.
"""

import importlib
import os
import pathlib
import subprocess
import sys
import tomllib

import pytest

import hdr_keras
from hdr_keras import crf, data, evaluate, paths

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_entry_point_and_version():
    project = PYPROJECT["project"]
    assert project["name"] == "hdr-keras" and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "hdr_keras.__version__"
    module, _, function = project["scripts"]["hdr-keras"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert set(project["optional-dependencies"]) >= {"test", "jax", "serving"}
    assert not any("tensorflow-serving-api" in r for r in project["optional-dependencies"]["serving"])


def test_package_data_covers_the_shipped_assets():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["hdr_keras"]
    package = pathlib.Path(hdr_keras.__file__).parent
    assets = [p for p in (package / "assets").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert any(p.name.endswith(".weights.h5") for p in assets) and any(p.suffix == ".npy" for p in assets)
    packaged = {path for pattern in patterns for path in package.glob(pattern)}  # setuptools' glob semantics
    assert set(assets) <= packaged, sorted(set(assets) - packaged)


def test_requirements_install_this_package():
    for name, spec in (("requirements.txt", "-e ."), ("requirements-test.txt", "-e .[test,jax,beam]")):
        lines = [l.strip() for l in (ROOT / name).read_text().splitlines() if l.strip() and not l.startswith("#")]
        assert lines == [spec], name


def _data_root(env):
    code = "from hdr_keras import paths; print(paths.SHARED_DATA)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return pathlib.Path(result.stdout.strip())


def test_data_root_from_the_environment_else_beside_the_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != paths.DATA_ENV}
    assert _data_root(env) == ROOT.parent / "shared" / "data"
    assert _data_root({**env, paths.DATA_ENV: str(tmp_path)}) == tmp_path.resolve()


def test_missing_data_folders_say_what_to_pass(tmp_path):
    for load in (crf.load_dorf, crf.load_emor):
        with pytest.raises(FileNotFoundError, match=paths.DATA_ENV) as info:
            load(tmp_path)
        assert str(tmp_path) in str(info.value) and "--crf_dir" in str(info.value)
    with pytest.raises(FileNotFoundError, match=paths.DATA_ENV):
        data.load_crops(tmp_path / "nowhere", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=paths.DATA_ENV), pytest.warns(UserWarning, match="file not found"):
        evaluate.evaluate(None, tmp_path / "nowhere")  # stops before the model is called

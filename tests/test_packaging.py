"""`pip install .` (not only `pip install -e .`) carries the shipped models, so the pipeline's defaults work."""
import shutil
import subprocess
import sys
import zipfile

PACKAGED = ("pyproject.toml", "README.md", "LICENSE", "arcface_paddle", "blazeface_paddle", "inference_model")


def test_wheel_holds_every_shipped_model_where_the_pipeline_looks(repo_root, tmp_path):
    # Build from a copy: setuptools reuses a project's build/ folder, which could hide a packaging mistake.
    source = tmp_path / "source"
    source.mkdir()
    for name in PACKAGED:
        if (repo_root / name).is_dir():
            shutil.copytree(repo_root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(repo_root / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("arcface_paddle-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = sorted(path.relative_to(repo_root).as_posix() for path in (repo_root / "inference_model").rglob("*")
                     if path.is_file())
    assert "inference_model/NOTICE" in shipped and "inference_model/mobilenet_sface/model.yaml" in shipped
    assert [name for name in shipped if name not in names] == []
    # The defaults are found relative to the installed packages: inference_model/ must sit beside them.
    assert "arcface_paddle/pipeline/analyzer.py" in names and "arcface_paddle/cli/detect.py" in names

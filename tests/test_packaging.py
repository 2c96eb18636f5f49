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
    # The service's web page is package data too (served from beside the package).
    assert {"arcface_paddle/service/static/index.html", "arcface_paddle/service/static/app.js",
            "arcface_paddle/service/static/style.css", "arcface_paddle/stores/sqlite.py"} <= names


def test_wheel_installs_console_command_that_runs_outside_the_checkout(repo_root, tmp_path):
    """`pip install <wheel>` in a fresh venv gives `arcface-paddle`, and its default models resolve from anywhere."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(repo_root)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("arcface_paddle-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # The new venv sees this environment's dependencies (paddle, opencv, ...) but not the project itself.
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = [path for path in sys.path if path.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    command = venv / "bin" / "arcface-paddle"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    listed = subprocess.run([str(command), "--help"], cwd=outside, capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0 and "recognize" in listed.stdout and "train" in listed.stdout
    located = subprocess.run([str(python), "-c", "import arcface_paddle; print(arcface_paddle.__file__)"],
                             cwd=outside, capture_output=True, text=True, env=env, timeout=60)
    assert str(site) in located.stdout, located.stdout + located.stderr      # the installed copy, not the checkout
    photo = shutil.copy(repo_root / "tests" / "data" / "faces" / "obama.jpg", outside / "obama.jpg")
    found = subprocess.run([str(command), "detect", str(photo), "--json", "faces.json"], cwd=outside,
                           capture_output=True, text=True, env=env, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    assert '"score"' in (outside / "faces.json").read_text()

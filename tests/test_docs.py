"""README.md, README_ch.md and docs/*.md say only what is true.

* every ``arcface-paddle <command>`` and every script they name exists and answers ``--help``;
* every relative link resolves to a file (and a heading, for ``#anchors``);
* every ``arcface_paddle.x.y`` / ``blazeface_paddle.x.y`` path imports, every name a Python block imports exists,
  every repository path written in backticks exists;
* README.md stays short, and README_ch.md has its sections, commands and links;
* README's commands RUN, in order, in a scratch folder on tiny data (real test photos, a tiny training run):
  a command that cannot run here carries ``<!-- docs-test: skip (reason) -->`` just above its code block.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import urllib.parse

import pytest
import tomllib

from arcface_paddle.cli.main import COMMANDS

REPO = pathlib.Path(__file__).resolve().parent.parent
README, README_CH = REPO / "README.md", REPO / "README_ch.md"
DOC_PAGES = sorted((REPO / "docs").glob("*.md"))
MARKDOWN = [README, README_CH, *DOC_PAGES]
BIN = pathlib.Path(sys.executable).parent          # the venv's bin/: the arcface-paddle console script
MAX_README_LINES = 250
SKIP_MARKER = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->")
SEPARATORS = {"&&", "||", ";", "|"}
# Dotted names in the docs that are not Python paths: the magic string inside every index.bin.
NOT_MODULE_PATHS = {"arcface_paddle.gallery"}
REPO_PATH = re.compile(r"^(arcface_paddle|blazeface_paddle|configs|tools|benchmarks|tests|docs|demo|inference_model)"
                       r"/[\w./-]*$")


# ---------------------------------------------------------------------------------------------- parsing
@dataclasses.dataclass
class Block:
    path: pathlib.Path
    line: int                  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None           # reason from a docs-test skip marker just above the block

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def code_blocks(path: pathlib.Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(k for k in range(i + 1, len(lines)) if lines[k].startswith("```"))
        skip, above = None, i - 1
        while above >= 0 and lines[above].lstrip().startswith("<!--"):     # markers stacked above the fence
            marker = SKIP_MARKER.search(lines[above])
            skip = marker.group("reason") if marker else skip
            above -= 1
        blocks.append(Block(path, i + 1, fence.group(1), "\n".join(lines[i + 1:end]), skip))
        i = end + 1
    return blocks


def prose(path: pathlib.Path) -> str:
    """The page without its fenced code blocks."""
    return re.sub(r"^```.*?^```[^\n]*$", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def inline_code(path: pathlib.Path) -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose(path))


def split_commands(text: str) -> list[list[str]]:
    """Shell commands of a bash block: continuation lines joined, comments dropped, split at && ; | ||."""
    commands = []
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        current = []
        for word in shlex.split(line, comments=True):
            if word in SEPARATORS:
                commands.append(current)
                current = []
            else:
                current.append(word)
        commands.append(current)
    return [command for command in commands if command]


def without_env(argv: list[str]) -> list[str]:
    """Drop leading ``NAME=value`` assignments (``PYTHON=... bash demo/run_demo.sh``)."""
    i = 0
    while i < len(argv) and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[i]):
        i += 1
    return argv[i:]


def bash_blocks(path: pathlib.Path) -> list[Block]:
    return [block for block in code_blocks(path) if block.lang in ("bash", "sh", "shell")]


def readme_commands(path: pathlib.Path) -> list[tuple[Block, list[str]]]:
    return [(block, argv) for block in bash_blocks(path) for argv in split_commands(block.text)]


def all_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every command in a bash block or an inline code span of README / README_ch / docs."""
    found = []
    for path in MARKDOWN:
        found += [(block.where, argv) for block in bash_blocks(path) for argv in split_commands(block.text)]
        for span in inline_code(path):
            words = without_env(span.split())
            if words[:1] in (["arcface-paddle"], ["python"], ["bash"]) and "<" not in span:   # <...>: a placeholder
                found += [(str(path.relative_to(REPO)), [word for word in argv if word != "..."])
                          for argv in split_commands(span)]
    return found


# ---------------------------------------------------------------------------------------------- static checks
def pyproject_extras() -> set[str]:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return set(tomllib.load(handle)["project"]["optional-dependencies"])


def check_pip(args: list[str], problems: list[str], where: str) -> None:
    if args[:1] == ["install"]:
        for target in args[1:]:
            extras = re.match(r"^\.\[([\w,-]+)\]$", target)
            if extras:
                missing = set(extras.group(1).split(",")) - pyproject_extras()
                if missing:
                    problems.append(f"{where}: pip extra {sorted(missing)} is not in pyproject.toml")


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def options_of(args: list[str]) -> set[str]:
    """The option words of a command line (``--x``, ``--x=1`` → ``--x``, ``-o``), not their values."""
    return {word.split("=")[0] for word in args if re.match(r"^--?[A-Za-z][\w-]*(=|$)", word)}


def check_command(where: str, argv: list[str], uses: dict, problems: list[str]) -> None:
    """Check one command; record in ``uses`` each script / arcface-paddle command with the options used."""
    argv = without_env(argv)
    program = argv[0]
    if program == "arcface-paddle":
        if len(argv) > 1 and not argv[1].startswith("-"):
            if argv[1] not in COMMANDS:
                problems.append(f"{where}: unknown command 'arcface-paddle {argv[1]}'")
            else:
                uses.setdefault(("arcface-paddle", argv[1]), []).append((where, options_of(argv[2:])))
    elif program in ("python", "python3") or program.endswith("/python"):
        if argv[1] == "-m":
            module = argv[2]
            # find_spec("pip") would switch off setuptools' distutils shim for the rest of the process (and
            # paddle imports setuptools), so pip is looked up as an installed distribution instead
            found = _installed("pip") if module == "pip" else importlib.util.find_spec(module) is not None
            if not found:
                problems.append(f"{where}: 'python -m {module}': no such module")
            if module == "pip":
                check_pip(argv[3:], problems, where)
            at = next((i for i, word in enumerate(argv) if word.endswith(".py")), None)
            if at is not None:                                     # paddle.distributed.launch ... train.py
                uses.setdefault(("python", argv[at]), []).append((where, options_of(argv[at + 1:])))
        else:
            uses.setdefault(("python", argv[1]), []).append((where, options_of(argv[2:])))
    elif program == "pip":
        check_pip(argv[1:], problems, where)
    elif program == "bash":
        if not (REPO / argv[1]).is_file():
            problems.append(f"{where}: 'bash {argv[1]}': no such file")
    elif program == "visualdl":
        if not (BIN / "visualdl").exists():
            problems.append(f"{where}: visualdl is not installed beside {sys.executable}")
    elif program == "curl":
        check_curl(argv[1:], problems, where)
    elif program in ("openssl", "chmod"):             # system tools the service docs use to make an API key file
        pass
    else:
        problems.append(f"{where}: unknown program {program!r} in {shlex.join(argv)!r}: teach tests/test_docs.py "
                        "about it")


def service_routes() -> list:
    """The service's paths (from its OpenAPI schema) as regular expressions."""
    from arcface_paddle.service.app import create_app  # optional extra [service], in the test extras
    from arcface_paddle.service.settings import ServiceSettings

    paths = create_app(ServiceSettings()).openapi()["paths"]
    return [re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)) + "$") for path in paths]


def check_curl(args: list[str], problems: list[str], where: str) -> None:
    """A documented curl call uploads files that exist and asks for a path the service has."""
    for word in args:
        for upload in re.findall(r"=@([^;\s]+)", word):
            if not upload.startswith(("/", "~", "$")) and not (REPO / upload).is_file():
                problems.append(f"{where}: curl uploads {upload}, which does not exist")
        if word.startswith("http"):
            path = urllib.parse.urlsplit(word).path
            if not any(route.match(path) for route in service_routes()):
                problems.append(f"{where}: curl asks for {path}, which the service does not serve")


def _run_help(key: tuple[str, str]) -> tuple[tuple[str, str], subprocess.CompletedProcess]:
    argv = [str(BIN / "arcface-paddle"), key[1]] if key[0] == "arcface-paddle" else [sys.executable, key[1]]
    return key, subprocess.run(argv + ["--help"], cwd=REPO, capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"))


def test_every_command_and_script_mentioned_exists_and_answers_help():
    """Each documented command answers --help, and every option the docs give it is one its --help lists."""
    problems, uses = [], {}
    for where, argv in all_commands():
        check_command(where, argv, uses, problems)
    for program, script in uses:
        if program == "python" and not (REPO / script).is_file():
            problems.append(f"'python {script}': no such file")
    assert not problems, "\n".join(problems)
    console = BIN / "arcface-paddle"
    assert console.exists(), f"{console} missing: install the project with pip install -e ."
    top = subprocess.run([str(console), "--help"], capture_output=True, text=True, timeout=120)
    assert top.returncode == 0 and all(command in top.stdout for command in COMMANDS), top.stdout
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for key, done in pool.map(_run_help, sorted(uses)):
            shown = " ".join(key)
            assert done.returncode == 0, f"{shown} --help: exit {done.returncode}\n{done.stderr[-1500:]}"
            assert "usage:" in done.stdout, f"{shown} --help: no usage text"
            known = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", done.stdout))
            for where, options in uses[key]:
                problems += [f"{where}: {shown} has no option {name}" for name in sorted(options - known)]
    assert not problems, "\n".join(problems)
    # the documented commands are the real ones: each one of COMMANDS is documented somewhere
    documented = {name for program, name in uses if program == "arcface-paddle"}
    assert set(COMMANDS) <= documented, f"undocumented commands: {sorted(set(COMMANDS) - documented)}"


def github_slugs(path: pathlib.Path) -> set[str]:
    """Anchors GitHub makes for a page's headings (lower case, punctuation dropped, spaces → '-', -1 -2 ...)."""
    slugs, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", prose(path), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        slugs.add(slug if count == 0 else f"{slug}-{count}")
    return slugs


def test_every_relative_link_resolves():
    problems = []
    for path in MARKDOWN:
        text = re.sub(r"`[^`\n]*`", "", prose(path))
        for target in re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):               # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(REPO)}: ({target})"
            if not resolved.exists():
                problems.append(f"{where}: {file_part} does not exist")
            elif anchor and resolved.suffix == ".md" and anchor not in github_slugs(resolved):
                problems.append(f"{where}: no heading #{anchor} in {resolved.relative_to(REPO)}")
    assert not problems, "\n".join(problems)


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_module_path_name_and_repository_path_exists():
    problems = []
    for path in MARKDOWN:
        text = path.read_text(encoding="utf-8")
        for dotted in sorted(set(re.findall(r"\b(?:arcface_paddle|blazeface_paddle)(?:\.[A-Za-z_]\w*)+", text))):
            if dotted not in NOT_MODULE_PATHS and not resolves(dotted):
                problems.append(f"{path.relative_to(REPO)}: {dotted} does not import")
        for block in code_blocks(path):
            if block.lang != "python":
                continue
            for module, names in re.findall(r"^from ([\w.]+) import ([^#\n]+)", block.text, flags=re.M):
                try:
                    imported = importlib.import_module(module)
                except ImportError as error:
                    problems.append(f"{block.where}: from {module} import ...: {error}")
                    continue
                for name in re.findall(r"\w+", names):
                    if not hasattr(imported, name):
                        problems.append(f"{block.where}: {module} has no {name}")
            for module in re.findall(r"^import ([\w.]+)", block.text, flags=re.M):
                if importlib.util.find_spec(module) is None:
                    problems.append(f"{block.where}: no module {module}")
        for span in inline_code(path):
            span = span.rstrip("/")
            if REPO_PATH.match(span) and not (REPO / span).exists():
                problems.append(f"{path.relative_to(REPO)}: `{span}` does not exist")
    assert not problems, "\n".join(problems)


def test_lazy_package_exports_resolve():
    """``from arcface_paddle.pipeline import X`` (the docs' spelling) works for every exported name."""
    for package in ("arcface_paddle.pipeline", "arcface_paddle.data"):
        module = importlib.import_module(package)
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{package}.{name}"


def headings(path: pathlib.Path) -> list[int]:
    return [len(hashes) for hashes in re.findall(r"^(#{1,6})\s", prose(path), flags=re.M)]


def doc_links(path: pathlib.Path) -> set[str]:
    return {target for target in re.findall(r"\]\((docs/[^)\s]+)\)", prose(path))}


def test_readme_is_short_and_readme_ch_mirrors_it():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= MAX_README_LINES
    assert len(README_CH.read_text(encoding="utf-8").splitlines()) <= MAX_README_LINES
    assert headings(README_CH) == headings(README), "README_ch.md: other sections than README.md"
    # the same commands block by block (their comments may be translated), skipped where README skips them
    english = [(split_commands(block.text), block.skip is not None) for block in bash_blocks(README)]
    chinese = [(split_commands(block.text), block.skip is not None) for block in bash_blocks(README_CH)]
    assert chinese == english, "README_ch.md: other commands (or skip markers) than README.md"
    assert doc_links(README_CH) == doc_links(README), "README_ch.md: links to other docs pages than README.md"
    text = README.read_text(encoding="utf-8")
    for marker in ("demo-command", "test-command"):
        assert text.count(f"<!-- {marker}:start -->") == 1 and text.count(f"<!-- {marker}:end -->") == 1


# ---------------------------------------------------------------------------------------------- running
# How each README command is shrunk to tiny data. "set": options replaced (or added); "append": words added.
TRAIN_TINY = ["-o", "max_steps=2", "-o", "batch_size=4", "-o", "data.num_workers=0", "-o", "validation.targets=[]",
              "-o", "data.image_size=32", "-o", "backbone_kwargs={width_mult: 0.25, blocks: [1, 1, 1, 1, 1]}"]
SHRINK = {
    "make-synthetic": {"set": {"--num_identities": "4", "--images_per_identity": "3", "--val_identities": "4",
                               "--num_pairs": "12", "--image_size": "32"}},
    "train": {"append": TRAIN_TINY},
}


def shrink(argv: list[str]) -> list[str]:
    rule = SHRINK.get(argv[1], {})
    argv = list(argv)
    for option, value in rule.get("set", {}).items():
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
    return argv + list(rule.get("append", []))


def option(argv: list[str], name: str, default: str | None = None) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else default


def make_workspace(root: pathlib.Path) -> None:
    """What README's commands read: configs, demo, test photos, shipped models, a raw identity tree."""
    for name in ("configs", "demo", "tests"):
        (root / name).symlink_to(REPO / name)
    models = root / "inference_model"             # a real folder: `export` writes a model beside the shipped ones
    models.mkdir()
    for shipped in (REPO / "inference_model").iterdir():
        (models / shipped.name).symlink_to(shipped)
    for photo in sorted((REPO / "tests" / "data" / "faces").iterdir()):    # obama, obama2, obama3 → one person
        person = root / "data" / "raw" / re.sub(r"\d+$", "", photo.stem)
        person.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, person / photo.name)


def prepare(argv: list[str], root: pathlib.Path) -> None:
    """Inputs a command needs that no earlier README command makes: the verification sets of `valid`."""
    if argv[1] == "valid":
        from arcface_paddle.data.synthetic import write_synthetic_verification_bin
        from arcface_paddle.synthetic.faces import SyntheticFaces

        people = SyntheticFaces(6, 3, seed=1, image_size=112)
        for target in option(argv, "--targets", "lfw,cfp_fp,agedb_30").split(","):
            path = root / option(argv, "--data_dir") / f"{target}.bin"
            if not path.exists():
                write_synthetic_verification_bin(people, str(path), identities=range(6), num_pairs=12)


def json_faces(path: pathlib.Path) -> list[dict]:
    return json.loads(path.read_text())["faces"]


def check_result(argv: list[str], root: pathlib.Path, stdout: str) -> None:
    """What each command must have produced (not just exit 0)."""
    command = argv[1]
    if command == "align":
        aligned = [p for p in (root / option(argv, "--output")).rglob("*") if p.suffix in (".jpg", ".png")]
        assert len(aligned) == 6, aligned                               # every test portrait has one face
    elif command == "convert":
        labels = (root / option(argv, "--bin_path") / "label.txt").read_text().splitlines()
        assert len(labels) == 6 and len({line.split("\t")[1] for line in labels}) == 4
    elif command == "make-synthetic":
        out = root / option(argv, "--output")
        assert (out / "val.bin").is_file() and len((out / "shards" / "label.txt").read_text().splitlines()) == 12
    elif command == "train":
        assert list((root / "output").glob("*/checkpoints/step_000002/backbone.pdparams")), stdout[-2000:]
    elif command == "valid":
        results = json.loads((root / option(argv, "--output", "valid_results") / "results.json").read_text())
        targets = option(argv, "--targets", "lfw,cfp_fp,agedb_30").split(",")
        assert sorted(results["targets"]) == sorted(targets)
        assert all(0 <= results["targets"][t]["accuracy"] <= 1 for t in targets), results
    elif command == "export":
        model = root / option(argv, "--output")
        assert (model / "model.yaml").is_file() and (model / "inference.pdiparams").is_file()
    elif command == "recognize" and "--build_index" in argv:
        assert (root / option(argv, "--build_index")).is_file()
    elif command == "recognize":
        output = root / option(argv, "--output", "output")
        stem = pathlib.Path(option(argv, "--input")).stem
        names = sorted(face["name"] for face in json_faces(output / f"{stem}.json"))
        assert names == ["grace_hopper", "obama", "unknown"], names
        assert (output / f"{stem}.jpg").is_file()
    elif command == "compare":
        same = "obama" in argv[2] and "obama" in argv[3]
        assert ("same person" if same else "different people") in stdout, stdout
    elif command == "detect":
        faces = json.loads((root / option(argv, "--json")).read_text())[argv[2]]
        assert len(faces) == 3 and all(len(face["keypoints"]) == 6 for face in faces), faces
        assert list((root / option(argv, "--draw")).iterdir())


def test_readme_commands_run_on_tiny_data(tmp_path):
    runnable = [(block, argv) for block, argv in readme_commands(README) if block.skip is None]
    assert runnable, "README.md has no runnable commands"
    unknown = [block.where for block, argv in runnable if argv[0] != "arcface-paddle"]
    assert not unknown, f"commands test_docs cannot run (add a docs-test skip marker or teach it): {unknown}"
    make_workspace(tmp_path)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setdefault("OMP_NUM_THREADS", "2")
    for block, argv in runnable:
        argv = shrink(argv)
        prepare(argv, tmp_path)
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{block.where}: {shlex.join(argv)} → exit {done.returncode}\n" \
                                     f"{done.stdout[-1500:]}\n{done.stderr[-2500:]}"
        check_result(argv, tmp_path, done.stdout)


@pytest.mark.parametrize("marker", ["<!-- docs-test: skip (needs GPU) -->", "<!--docs-test: skip (x)-->"])
def test_skip_marker_is_read_and_commands_are_split(tmp_path, marker):
    page = tmp_path / "page.md"
    page.write_text(f"text\n\n{marker}\n<!-- other -->\n```bash\narcface-paddle train -c a.yaml \\\n"
                    "    -o x=1   # comment\necho a && echo 'b c'\n```\n\n```bash\nls\n```\n", encoding="utf-8")
    first, second = code_blocks(page)
    assert first.skip is not None and second.skip is None
    assert split_commands(first.text) == [["arcface-paddle", "train", "-c", "a.yaml", "-o", "x=1"],
                                          ["echo", "a"], ["echo", "b c"]]
    problems, uses = [], {}
    check_command("page.md", ["echo", "a"], uses, problems)
    check_command("page.md", ["arcface-paddle", "no-such-command"], uses, problems)
    check_command("page.md", ["arcface-paddle", "detect", "a.jpg", "--json=f.json", "-o", "x=-1"], uses, problems)
    assert len(problems) == 2 and uses == {("arcface-paddle", "detect"): [("page.md", {"--json", "-o"})]}

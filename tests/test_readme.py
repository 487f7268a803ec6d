"""Every command README.md shows is run here, so that README cannot drift from the program.

Which commands: each line of a ```bash block (a line that starts with blanks continues the one
above), the ```python block, and each inline code span that starts with `nerkit`, `python`,
`bash`, `pip`, `accelerate` or `torchrun`; in a table, a span that starts with `--` or `... --`
(a results row's "same, plus these flags") extends the last `nerkit` command of that table. A
command this file does not know how to check fails, so a new one cannot go unchecked.

How each is run, in seconds rather than hours:

- `nerkit ...` through typer's CliRunner, in a fresh working directory that links `configs/`, with
  the README's placeholders filled in: MODEL, `--model DIR` and RUN_DIR (a copy: --resume writes
  into it) -> a tiny softmax model trained once for this module (softmax, as `--posthoc-tau` needs
  it); `--output DIR` -> a new directory (a run refuses a directory that holds another);
  MODEL_DIR -> a tiny local BERT; DATA -> synthetic:dev; F -> a small CoNLL file; FILE -> a small
  text file (CoNLL with `--format conll`); NAME -> focal (every head takes it, and it has the
  gamma README sets); N -> 1; T -> 0.5; configs/X.yaml -> the shipped configuration whose encoder
  and head agree with the command's, and, alone, each file of configs/ in turn. Optional `[...]`
  parts and `a|b` alternatives are expanded so that each is used at least once: one run without
  the optional parts, then one with all of them for each alternative in turn (`[...train
  options]` and a bare `...` stand for the tiny settings). Commands that train (`train`,
  `compare`) get tiny settings appended: `--max-steps 2` and conftest's TINY_SET_ARGS (without
  the BiLSTM sizes when the encoder is a transformer); a configuration whose data are files
  (CoNLL-2003, GENIA: not shipped) trains on the synthetic corpus instead, and a hub model name
  becomes the tiny BERT. A server (`nerkit serve`) is not started: its README options must
  exist. `nerkit predict` without `--model` reads `runs/default`: the tiny model is put there
  unless the same line trains it. A bare program or command name in prose (`python -m nerkit`,
  `nerkit predict`) only has to show its --help.
- The ```python block runs as written, with `load_config` made tiny (conftest's TINY settings
  and LEARNS_QUICKLY, so that `pipe` meets an entity early).
- What cannot run in a test is checked as far as it can be: `python -m pytest` (this suite)
  must be the very line that CI runs (.ci/run); a benchmark (`python benchmarks/X.py ...`, or the
  screenshot script `python docs/screenshots.py`,
  `bash benchmarks/X.sh PHASE`: hours on data that is not shipped) must exist, every `--flag`
  README gives must be declared by the script's argparse parser (read with ast, so that six
  scripts need not import torch and transformers) and PHASE must be one of the shell script's
  cases; `bash .ci/run` must parse
  (`bash -n`); a launcher (`accelerate launch`, `torchrun`) must accept README's flags (its own
  argparse parser, in process) and launch an existing nerkit command; `pip install` must name
  extras that pyproject.toml has and versions that it allows.
"""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from conftest import LEARNS_QUICKLY, REPO_ROOT, TINY_ENCODER, TINY_SET_ARGS, TINY_TRAINING, tiny_vectors_like
from nerkit_cli.main import app

README = REPO_ROOT / "README.md"
CI_SCRIPT = REPO_ROOT / ".ci" / "run"
CONFIGS = sorted((REPO_ROOT / "configs").glob("*.yaml"))
PROGRAM = re.compile(r"(nerkit|python|bash|pip|accelerate|torchrun)(?=\s|$)")
PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
TRAINING_COMMANDS = ("train", "compare")
SERVING_COMMANDS = ("serve",)  # they never end by themselves: README's options must exist, nothing runs


class ReadmeError(AssertionError):
    """A README command that does not work as shown (or that this file cannot check)."""


@dataclass(frozen=True)
class Command:
    text: str  # one line, whitespace normalized
    where: str  # "README.md line N"


# ----------------------------------------------------------------------------- finding commands


def readme_commands(text: str, name: str = "README.md") -> list[Command]:
    """The shell commands of a README, in order, each once."""
    found: list[Command] = []
    for fence in FENCE.finditer(text):
        if fence.group(1) not in ("bash", "sh", "shell", "console"):
            continue
        first_line = text[:fence.start()].count("\n") + 2
        lines: list[tuple[str, int]] = []
        for offset, line in enumerate(fence.group(2).splitlines()):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and lines:  # a continuation of the command above
                lines[-1] = (lines[-1][0] + " " + line.strip(), lines[-1][1])
            else:
                lines.append((line.strip(), first_line + offset))
        found += [Command(" ".join(line.split()), f"{name} line {number}") for line, number in lines]
    masked = FENCE.sub(lambda fence: "\n" * fence.group(0).count("\n"), text)  # keeps line numbers
    source_lines = masked.splitlines()
    table_base: dict[int, str] = {}  # table (its first line) -> its last `nerkit` command
    for span in SPAN.finditer(masked):
        if "\n\n" in span.group(1):
            continue
        content = " ".join(span.group(1).split())
        line = masked[:span.start()].count("\n")
        table = _table_start(source_lines, line)
        where = f"{name} line {line + 1}"
        if PROGRAM.match(content):
            found.append(Command(content, where))
            if table is not None and content.startswith("nerkit "):
                table_base[table] = content
        elif table is not None and re.match(r"(\.\.\. )?--", content):
            if table not in table_base:
                raise ReadmeError(f"{where}: `{content}` adds options, but no `nerkit` command precedes it in its table")
            found.append(Command(table_base[table] + " " + content.removeprefix("... "), where))
    unique: dict[str, Command] = {}
    for command in found:
        unique.setdefault(command.text, command)
    return list(unique.values())


def _table_start(lines: list[str], index: int) -> int | None:
    if not lines[index].lstrip().startswith("|"):
        return None
    while index > 0 and lines[index - 1].lstrip().startswith("|"):
        index -= 1
    return index


def python_blocks(text: str) -> list[tuple[str, str]]:
    return [(fence.group(2), f"README.md line {text[:fence.start()].count(chr(10)) + 1}")
            for fence in FENCE.finditer(text) if fence.group(1) == "python"]


# ----------------------------------------------------------------------------- expanding a synopsis


def tokens_of(text: str) -> list[str]:
    """Shell words, comments dropped; `a | b` between words that are not programs is one
    alternative `a|b` (`nerkit losses | heads | encoders`), a `|` before a program is a pipe."""
    words = shlex.split(text, comments=True)
    merged: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "|" and merged and index + 1 < len(words) and not PROGRAM.fullmatch(words[index + 1]) \
                and words[index + 1] != "echo":
            merged[-1] += "|" + words[index + 1]
            index += 2
            continue
        merged.append(word)
        index += 1
    return merged


def _parts(tokens: list[str], where: str) -> list[tuple[bool, list[str]]]:
    """``(optional, words)`` in order; `[...anything]` and a bare `...` (more options) are dropped."""
    parts: list[tuple[bool, list[str]]] = []
    group: list[str] | None = None
    for token in tokens:
        if group is None and token.startswith("["):
            group, token = [], token[1:]
        if group is None:
            if token != "...":
                parts.append((False, [token]))
            continue
        closes = token.endswith("]")
        group.append(token.removesuffix("]") if closes else token)
        if closes:
            if not group[0].startswith("..."):
                parts.append((True, [word for word in group if word]))
            group = None
    if group is not None:
        raise ReadmeError(f"{where}: a `[` is never closed")
    return parts


def _alternatives(token: str) -> list[str]:
    parts = token.split("|")
    return parts if len(parts) > 1 and all(parts) and not token.startswith("-") else [token]


def variants(tokens: list[str], where: str) -> list[list[str]]:
    """Concrete command lines that use each optional part and each alternative at least once."""
    parts = _parts(tokens, where)
    count = max((len(_alternatives(word)) for _, words in parts for word in words), default=1)

    def line(i: int, with_optional: bool) -> list[str]:
        return [_alternatives(word)[i % len(_alternatives(word))]
                for optional, words in parts if with_optional or not optional for word in words]

    lines = [line(0, False)]
    if any(optional for optional, _ in parts):
        lines += [line(i, True) for i in range(count)]
        config_parts = [words for optional, words in parts if optional and "configs/X.yaml" in words]
        for path in CONFIGS if config_parts else []:  # each shipped configuration, alone
            lines.append(line(0, False) + [word.replace("X.yaml", path.name) for word in config_parts[0]])
    else:
        lines += [line(i, False) for i in range(1, count)]
    unique = {" ".join(words): words for words in lines}
    return list(unique.values())


# ----------------------------------------------------------------------------- running


class Workspace:
    """What placeholders become, and where commands run."""

    def __init__(self, request, directory: Path, model: Path, files: dict[str, Path]):
        self.request, self.directory, self.model, self.files = request, directory, model, files
        self.outputs = 0
        (directory / "configs").symlink_to(REPO_ROOT / "configs", target_is_directory=True)

    @property
    def bert(self) -> str:
        return str(self.request.getfixturevalue("bert_dir"))

    def fill(self, words: list[str], where: str) -> list[str]:
        filled = []
        for index, word in enumerate(words):
            option = words[index - 1] if index else ""
            filled.append(self.value(word, option, words, where))
        return filled

    def value(self, word: str, option: str, words: list[str], where: str) -> str:
        if word == "configs/X.yaml":
            return f"configs/{matching_config(words, where).name}"
        if not PLACEHOLDER.fullmatch(word):
            return word
        if word == "DIR" and option == "--output":
            self.outputs += 1
            return f"output-{self.outputs}"
        if word == "MODEL_COPY":  # a command that writes into the model directory gets its own copy
            copy = self.directory / f"model-copy-{self.outputs}"
            self.outputs += 1
            shutil.copytree(self.model, copy)
            return str(copy)
        if word == "RUN_DIR":
            copy = self.directory / "run-copy"
            shutil.copytree(self.model, copy)
            return str(copy)
        if word == "FILE":
            conll = "--format" in words and words[words.index("--format") + 1] == "conll"
            return str(self.files["conll" if conll else "text"])
        if word == "OUT":
            self.outputs += 1
            return f"converted-{self.outputs}"
        values = {"MODEL": str(self.model), "DIR": str(self.model), "DATA": "synthetic:dev", "F": str(self.files["conll"]),
                  "IN": str(self.files["conll"]), "TRAIN": str(self.files["conll"]), "DEV": str(self.files["conll"]),
                  "PATTERNS": str(self.files["patterns"]),
                  "NAME": "focal", "N": "1", "T": "0.5"}
        if word == "MODEL_DIR":
            return self.bert
        if word not in values:
            raise ReadmeError(f"{where}: placeholder {word}: tests/test_readme.py does not know what to put there "
                              "(add it to Workspace.value)")
        return values[word]


def _config_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _option(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words and words.index(name) + 1 < len(words) else None


def _encoder_kind(name: str | None) -> str | None:
    return None if name is None else ("bilstm" if name == "bilstm" else "transformer")


def matching_config(words: list[str], where: str) -> Path:
    """The shipped configuration whose encoder and head agree with the command's flags (so that
    the command's overrides fit its settings), one on the synthetic corpus when there is one."""
    encoder, head = _encoder_kind(_option(words, "--encoder")), _option(words, "--head")
    fitting = [path for path in CONFIGS
               if encoder in (None, _config_of(path)["encoder"]["type"]) and head in (None, _config_of(path)["head"]["type"])]
    if not fitting:
        raise ReadmeError(f"{where}: no file in configs/ has encoder {encoder} and head {head}")
    synthetic = [path for path in fitting if str(_config_of(path).get("data", {}).get("train", "")).startswith("synthetic")]
    return (synthetic or fitting)[0]


def tiny_arguments(words: list[str], workspace: Workspace) -> list[str]:
    """`--max-steps 2` and the tiny settings that fit the command's encoder, and synthetic data
    and the tiny BERT in place of what a configuration names but this machine lacks."""
    config_path = _option(words, "--config")
    config = _config_of(workspace.directory / config_path) if config_path else {}
    encoder = _encoder_kind(_option(words, "--encoder")) or config.get("encoder", {}).get("type", "bilstm")
    settings = [item for item in TINY_SET_ARGS if encoder == "bilstm" or not item.startswith("encoder.")]
    if "--select-for" in words:  # the post-hoc tau is chosen on dev data
        settings = [item for item in settings if item != "data.dev=null"] + ["data.dev=synthetic:dev"]
    if config.get("encoder", {}).get("word_vectors"):  # vectors a benchmark makes: tiny ones in their formats
        tiny = {**config["encoder"], "word_dim": int(dict(item.split("=", 1) for item in settings).get("encoder.word_dim", 50))}
        settings += [f"{key}={value}" for key, value in tiny_vectors_like(tiny, workspace.directory).items()]
    model = config.get("encoder", {}).get("model")
    if model and _option(words, "--encoder") is None and not Path(model).is_dir():
        settings.append(f"encoder.model={workspace.bert}")
    corpus = "synthetic-nested" if config.get("head", {}).get("type") == "span" else "synthetic"
    for split, source in config.get("data", {}).items():
        if split in ("train", "dev", "test") and source and not str(source).startswith("synthetic"):
            settings.append(f"data.{split}={corpus}:train" if split == "train" else f"data.{split}=null")
    return ["--max-steps", "2"] + [item for setting in settings for item in ("--set", setting)]


runner = CliRunner()


def run_nerkit(words: list[str], stdin: str | None, where: str, workspace: Workspace) -> None:
    shown = " ".join(["nerkit", *words])
    command = get_command(app)
    if not words or (words[0] in command.commands and len(words) == 1
                     and any(p.required for p in command.commands[words[0]].params)):
        words = [*words, "--help"]  # a program or command named in prose: it exists and explains itself
    if words[0] in SERVING_COMMANDS and words[0] in command.commands:
        options = {option for param in command.commands[words[0]].params for option in [*param.opts, *param.secondary_opts]}
        unknown = sorted({word.split("=")[0] for word in words[1:] if word.startswith("--")} - options)
        if unknown:
            raise ReadmeError(f"{where}: `{shown}`: nerkit {words[0]} has no option {', '.join(unknown)}")
        return
    arguments = workspace.fill(words, where)
    if words[0] in TRAINING_COMMANDS and "--resume" not in words and "--help" not in words:
        arguments += tiny_arguments(arguments, workspace)
    result = runner.invoke(app, arguments, input=stdin)
    if result.exit_code != 0:
        raise ReadmeError(f"{where}: `{shown}` (run as nerkit {' '.join(arguments)}) exited with {result.exit_code}:\n"
                          f"{result.output[-3000:]}")


def run_python_module(words: list[str], where: str, workspace: Workspace) -> None:
    module, rest = words[1], words[2:]
    if module == "nerkit" and not rest:  # the program itself: `python -m nerkit` starts and helps
        result = subprocess.run([sys.executable, "-m", "nerkit", "--help"], capture_output=True, text=True)
        if result.returncode != 0:
            raise ReadmeError(f"{where}: `python -m nerkit --help` exited with {result.returncode}:\n{result.stderr}")
    elif module == "nerkit":
        run_nerkit(rest, None, where, workspace)
    elif module == "pytest":  # this very suite: CI runs it, so README must show the command CI runs
        line = " ".join(["python", "-m", "pytest", *rest])
        if not re.search(rf"^\s*{re.escape(line)}\s*$", CI_SCRIPT.read_text(encoding="utf-8"), re.MULTILINE):
            raise ReadmeError(f"{where}: `{line}` is not what {CI_SCRIPT.relative_to(REPO_ROOT)} runs")
    else:
        raise ReadmeError(f"{where}: `python -m {module}`: tests/test_readme.py does not know how to check it")


def declared_flags(script: Path) -> set[str]:
    """The option strings the script's argparse parser declares (its add_argument calls)."""
    flags = {"-h", "--help"}
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"), filename=str(script))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            flags |= {arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)}
    return flags


def check_benchmark_script(words: list[str], where: str) -> None:
    script = REPO_ROOT / words[0]
    if not script.is_file():
        raise ReadmeError(f"{where}: {words[0]} does not exist")
    unknown = sorted({word.split("=")[0] for word in words[1:] if word.startswith("-")} - declared_flags(script))
    if unknown:
        raise ReadmeError(f"{where}: {words[0]} has no option {', '.join(unknown)}")


def shell_phases(script: Path) -> set[str]:
    """The labels of the script's `case ... in` block."""
    text = script.read_text(encoding="utf-8")
    body = text[text.index("case "):text.index("esac")] if "case " in text and "esac" in text else ""
    labels = re.findall(r"^\s*([\w|.-]+)\)", body, flags=re.MULTILINE)
    return {phase for label in labels for phase in label.split("|")}


def run_bash(words: list[str], where: str) -> None:
    script = REPO_ROOT / words[0]
    if not script.is_file():
        raise ReadmeError(f"{where}: {words[0]} does not exist")
    if words[0].startswith("benchmarks/"):
        if len(words) < 2 or words[1] not in shell_phases(script):
            raise ReadmeError(f"{where}: {words[0]} has no phase {words[1:2]}; it knows {sorted(shell_phases(script))}")
        return
    if words[0] == ".ci/run":  # installs and runs the whole suite: it must parse
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        if result.returncode != 0:
            raise ReadmeError(f"{where}: bash -n {words[0]}: {result.stderr}")
        return
    raise ReadmeError(f"{where}: `bash {' '.join(words)}`: tests/test_readme.py does not know how to check it")


def run_launcher(program: str, words: list[str], where: str) -> None:
    if program == "accelerate":
        from accelerate.commands.launch import launch_command_parser

        if words[:1] != ["launch"]:
            raise ReadmeError(f"{where}: `accelerate {' '.join(words)}`: only `accelerate launch` is checked")
        parser, words = launch_command_parser(), words[1:]
    else:
        from torch.distributed.run import get_args_parser

        parser = get_args_parser()
    launched = words.index("-m") if "-m" in words else len(words)
    unknown = [word.split("=")[0] for word in words[:launched]
               if word.startswith("-") and word.split("=")[0] not in parser._option_string_actions]
    if unknown:
        raise ReadmeError(f"{where}: {program} has no option {', '.join(unknown)}")
    target = words[launched + 1:]
    if target and (target[0] != "nerkit" or (len(target) > 1 and target[1] not in get_command(app).commands)):
        raise ReadmeError(f"{where}: {program} launches `{' '.join(target)}`, not a nerkit command")


def check_pip(words: list[str], where: str) -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # The base and its extras: torch is the `train` extra's.
    requirements = [*project["dependencies"], *(text for extra in project.get("optional-dependencies", {}).values()
                                                 for text in extra)]
    ours = {canonicalize_name(Requirement(text).name): Requirement(text) for text in requirements}
    for word in [word for word in words[1:] if not word.startswith("-")]:
        local = re.fullmatch(r"([./][^\[]*)(?:\[(.*)\])?", word)
        if local:
            if not (REPO_ROOT / local.group(1) / "pyproject.toml").is_file():
                raise ReadmeError(f"{where}: pip install {word}: no pyproject.toml there")
            missing = set(filter(None, (local.group(2) or "").split(","))) - set(project.get("optional-dependencies", {}))
            if missing:
                raise ReadmeError(f"{where}: pip install {word}: pyproject.toml has no extra {', '.join(sorted(missing))}")
            continue
        wanted = Requirement(word)
        name = canonicalize_name(wanted.name)
        if name == "nerkit":  # an extra of this project: pip install 'nerkit[serve]'
            missing = set(wanted.extras) - set(project.get("optional-dependencies", {}))
            if missing:
                raise ReadmeError(f"{where}: pip install {word}: pyproject.toml has no extra {', '.join(sorted(missing))}")
            continue
        if name not in ours:
            raise ReadmeError(f"{where}: pip install {word}: {wanted.name} is not a dependency of nerkit or its extras")
        pinned = [spec.version for spec in wanted.specifier if spec.operator == "=="]
        refused = [version for version in pinned if not ours[name].specifier.contains(version, prereleases=True)]
        if refused:
            raise ReadmeError(f"{where}: pip install {word}: pyproject.toml asks for {ours[name]}")


def steps(words: list[str]) -> list[tuple[list[str], str | None]]:
    """``a && b && echo TEXT | c`` -> ``[(a, None), (b, None), (c, "TEXT\\n")]``."""
    chain, current = [], []
    for word in [*words, "&&"]:
        if word == "&&":
            stdin = None
            if "|" in current:
                pipe = current.index("|")
                if current[0] != "echo":
                    raise ReadmeError(f"a pipe from `{current[0]}`: only `echo TEXT | command` is checked")
                stdin, current = " ".join(current[1:pipe]) + "\n", current[pipe + 1:]
            chain.append((current, stdin))
            current = []
        else:
            current.append(word)
    return chain


def run_line(words: list[str], where: str, workspace: Workspace) -> None:
    chain = steps(words)
    if not any(step[:2] == ["nerkit", "train"] for step, _ in chain):
        shutil.copytree(workspace.model, workspace.directory / "runs" / "default", dirs_exist_ok=True)
    for step, stdin in chain:
        program, rest = step[0], step[1:]
        if program == "nerkit":
            run_nerkit(rest, stdin, where, workspace)
        elif program == "python" and rest[:1] == ["-m"] and len(rest) > 1:
            run_python_module(rest, where, workspace)
        elif program == "python" and rest and rest[0].startswith(("benchmarks/", "docs/")):  # hours, or a browser
            check_benchmark_script(rest, where)
        elif program == "bash" and rest:
            run_bash(rest, where)
        elif program in ("accelerate", "torchrun"):
            run_launcher(program, rest, where)
        elif program == "pip" and rest[:1] == ["install"]:
            check_pip(rest, where)
        else:
            raise ReadmeError(f"{where}: `{' '.join(step)}`: tests/test_readme.py does not know how to check it")


def run_command(command: Command, workspace: Workspace) -> None:
    """Every variant of one README command (what the parametrized test runs one at a time)."""
    for words in variants(tokens_of(command.text), command.where):
        run_line(words, command.where, workspace)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("readme-model") / "model"
    arguments = ["train", "--head", "softmax", "--max-steps", "5", "--output", str(output)]
    result = runner.invoke(app, arguments + [item for s in TINY_SET_ARGS for item in ("--set", s)])
    assert result.exit_code == 0, result.output
    return output


@pytest.fixture(scope="module")
def input_files(tmp_path_factory) -> dict[str, Path]:
    from nerkit.data.schemes import spans_to_tags
    from nerkit.data.synthetic import synthetic_examples, synthetic_texts

    directory = tmp_path_factory.mktemp("readme-inputs")
    sentences = []
    for example in synthetic_examples("train")[:40]:
        tags = spans_to_tags(example.spans, len(example.tokens), "BIO")
        sentences.append("\n".join(f"{token} {tag}" for token, tag in zip(example.tokens, tags)))
    (directory / "data.conll").write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    (directory / "texts.txt").write_text("\n".join(synthetic_texts(6)) + "\n", encoding="utf-8")
    (directory / "patterns.jsonl").write_text('{"label": "ORG", "pattern": "Acme Corp"}\n'
                                              '{"label": "LOC", "pattern": [{"lower": "new"}, {"lower": "york"}]}\n',
                                              encoding="utf-8")
    return {"conll": directory / "data.conll", "text": directory / "texts.txt", "patterns": directory / "patterns.jsonl"}


@pytest.fixture
def workspace(request, tmp_path, monkeypatch, tiny_model, input_files) -> Workspace:
    directory = tmp_path / "cwd"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return Workspace(request, directory, tiny_model, input_files)


# ----------------------------------------------------------------------------- the README itself

README_TEXT = README.read_text(encoding="utf-8")
COMMANDS = readme_commands(README_TEXT)
_RUNS: dict[str, tuple[Command, list[str]]] = {}  # one run per concrete line, wherever README repeats it
for _command in COMMANDS:
    for _words in variants(tokens_of(_command.text), _command.where):
        _RUNS.setdefault(" ".join(_words), (_command, _words))
CASES = [pytest.param(command, words, id=line) for line, (command, words) in _RUNS.items()]


def test_the_readme_shows_commands():
    programs = {command.text.split()[0] for command in COMMANDS}
    assert {"nerkit", "python", "bash", "pip"} <= programs, programs
    assert len(CASES) > 30  # the synopsis expands into many runs


@pytest.mark.parametrize("command,words", CASES)
def test_readme_command_works(command, words, workspace):
    run_line(words, command.where, workspace)


@pytest.mark.parametrize("code,where", [pytest.param(code, where, id=where) for code, where in python_blocks(README_TEXT)])
def test_readme_python_block_runs(code, where, workspace, monkeypatch, capsys):
    import nerkit

    real_load_config = nerkit.load_config

    def tiny_load_config(path=None, *, overrides=(), values=None):
        return real_load_config(path, overrides=overrides,
                                values={**TINY_ENCODER, **TINY_TRAINING, **LEARNS_QUICKLY, **(values or {})})

    monkeypatch.setattr(nerkit, "load_config", tiny_load_config)
    exec(compile(code, where, "exec"), {"__name__": "readme_example"})
    assert (workspace.directory / "runs" / "demo" / "config.json").is_file()
    assert "micro" in capsys.readouterr().out  # the evaluation table it prints


def test_train_help_shows_the_default_output_directory():
    """README's `runs/default` is what `nerkit train --help` says (Rich once ate "[default: ...]")."""
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert re.search(r"--output.*\n?.*\[default: \(?runs/default\)?\]", result.output), result.output


# ----------------------------------------------------------------------------- the checker catches mistakes


@pytest.mark.parametrize("line", [
    "nerkit train --no-such-flag",
    "nerkit train [--head softmax|tagger]",
    "nerkit predict FILE --model WHATEVER",
    "nerkit evaluate MODEL DATA --posthoc-tau inf",
    "python benchmarks/bilstm_throughput.py --threads 1 --no-such-flag",
    "python benchmarks/no_such_benchmark.py",
    "python -m pytest -q -k nothing",
    "bash benchmarks/span_study.sh no-such-phase",
    "torchrun --nproc_per_node 2 --no-such-flag -m nerkit train",
    "accelerate launch --multi_gpu -m nerkit no-such-command",
    "pip install -e '.[no-such-extra]'",
    "pip install torch==1.13.0",
    "frobnicate --all",
])
def test_a_wrong_readme_command_fails(line, workspace):
    with pytest.raises(ReadmeError):
        run_command(Command(line, "fake README line 1"), workspace)


def test_finding_commands_in_markdown():
    text = ("```bash\nnerkit train [--epochs N]\n        [--seed 3]  # a comment\n```\n"
            "Run `nerkit losses`, or `python benchmarks/x.py\n--threads 1`; not `nerkit.losses`.\n\n"
            "| run | command |\n|---|---|\n| a | `nerkit train --config c.yaml` |\n| b | same, `--epochs 2` |\n")
    assert [command.text for command in readme_commands(text)] == [
        "nerkit train [--epochs N] [--seed 3] # a comment", "nerkit losses", "python benchmarks/x.py --threads 1",
        "nerkit train --config c.yaml", "nerkit train --config c.yaml --epochs 2"]
    assert variants(tokens_of("nerkit train [--head a|b|c] [--seed 1]"), "") == [
        ["nerkit", "train"], ["nerkit", "train", "--head", "a", "--seed", "1"],
        ["nerkit", "train", "--head", "b", "--seed", "1"], ["nerkit", "train", "--head", "c", "--seed", "1"]]
    assert variants(tokens_of("nerkit losses | heads  # listed"), "") == [["nerkit", "losses"], ["nerkit", "heads"]]
    assert steps(tokens_of('nerkit train && echo "A b." | nerkit predict -')) == [
        (["nerkit", "train"], None), (["nerkit", "predict", "-"], "A b.\n")]

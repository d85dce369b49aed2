#!/usr/bin/env python3
"""The documentation's examples against the built CLI, so that they cannot drift.

Every `jepa ...` (or `jepa-engine ...`) command in the fenced shell code blocks (```sh, ```bash,
```console, ```shell or unlabelled) of README.md and docs/*.md, and in inline code spans that start
with `jepa `, is checked:

  - its subcommand (and sub-subcommand, e.g. `jepa sweep ask`) exists in `jepa --help`;
  - every option it uses appears in that subcommand's `--help` (global options such as
    --plugin-path in `jepa --help`);
  - every experiment or sweep file it names (a relative path ending in .toml) exists, and passes
    `jepa run FILE --dry-run` or `jepa sweep FILE --dry-run` (with the command's own `--set`
    overrides; against a scratch database in a temporary folder, run from the repository root).
    Each distinct (command, file, overrides) is validated once.

Commands with placeholders (NAME, RUN, `...`, `<...>`, `$var`) get the first two checks only.
Lines that are output are left alone: `#` comments, lines without a `$ ` prompt in console blocks,
and lines whose second word cannot be a subcommand (`jepa 0.1.0 ...`). Relative links
(`[text](path#anchor)`) outside code blocks must point at an existing file (and heading).

Prints each failure as `FILE:LINE: jepa ...: why`, then a one-line summary; exits 1 on any failure.
Python 3 standard library only.

  check_docs.py --jepa build/jepa --root .                 # README.md and docs/*.md
  check_docs.py --jepa build/jepa --root . some/page.md    # other files instead
"""
import argparse
import concurrent.futures
import os
import re
import shlex
import subprocess
import sys
import tempfile

SHELL_LANGS = {"", "sh", "bash", "console", "shell", "shell-session", "zsh"}
JEPA_NAMES = {"jepa", "jepa-engine"}
# Words that start another program which in turn runs jepa (the jepa part is what gets checked).
LAUNCHERS = {"torchrun", "srun", "env", "nohup", "time", "exec", "sudo", "mpirun", "timeout", "nice"}
SEPARATORS = ("&&", "||", "$(", ";", "|", "(", ")", "`")
PLACEHOLDER_WORD = re.compile(r"^[A-Z][A-Z0-9_]+$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
MENTION = re.compile(r"(?<![\w./-])experiments/[\w./-]+\.toml")
INLINE = re.compile(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)")
DRY_RUN_TIMEOUT = 300


class Command:
    def __init__(self, path, line, text, words):
        self.path = path      # the markdown file
        self.line = line      # 1-based line of the command's first line
        self.text = text      # the jepa part, as written (for messages)
        self.words = words    # the words after `jepa`

    def where(self, display):
        return f"{display(self.path)}:{self.line}: {shorten(self.text)}"

    def __str__(self):
        return " ".join(["jepa", *self.words]) if self.words else self.text


def shorten(text, limit=110):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def strip_comment(line):
    """Drops a shell comment: `#` at the start of a word, outside quotes."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"':
                continue
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def split_segments(line):
    """Splits a shell line at &&, ||, ;, |, $( and parentheses outside quotes."""
    segments, current, quote, i = [], [], None, 0
    while i < len(line):
        c = line[i]
        if quote:
            current.append(c)
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "'\"":
            quote = c
            current.append(c)
            i += 1
            continue
        for sep in SEPARATORS:
            if line.startswith(sep, i):
                segments.append("".join(current))
                current = []
                i += len(sep)
                break
        else:
            current.append(c)
            i += 1
    segments.append("".join(current))
    return [s.strip() for s in segments if s.strip()]


def jepa_words(segment):
    """The words after jepa/jepa-engine in one shell command, or None when it runs neither.
    Returns (words, text) where text is the jepa part as written."""
    try:
        words = shlex.split(segment)
    except ValueError:
        return None
    i = 0
    while i < len(words) and ASSIGNMENT.match(words[i]):
        i += 1
    if i >= len(words):
        return None
    first = os.path.basename(words[i])
    if first in JEPA_NAMES:
        start = i
    elif first in LAUNCHERS:
        start = next((j for j in range(i + 1, len(words)) if os.path.basename(words[j]) in JEPA_NAMES), None)
        if start is None:
            return None
    else:
        return None
    m = re.search(r"(?:^|\s)(\S*jepa(?:-engine)?)(?=\s|$)", segment)
    text = segment[m.start(1):] if m else " ".join(words[start:])
    return words[start + 1:], text


def commands_in_line(path, lineno, line, found):
    line = strip_comment(line.strip())
    if not line:
        return
    for segment in split_segments(line):
        parsed = jepa_words(segment)
        if parsed is not None:
            found.append(Command(path, lineno, parsed[1], parsed[0]))


def extract(path):
    """(commands, links, headings, mentions of experiments/*.toml) of one markdown file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    commands, links, headings, prose = [], [], [], []
    fence, lang, i = None, None, 0
    while i < len(lines):
        raw = lines[i]
        m = FENCE.match(raw)
        if fence is None:
            if m:
                fence, lang = m.group(1), m.group(2).lower()
                i += 1
                continue
            prose.append((i + 1, raw))
            h = HEADING.match(raw)
            if h:
                headings.append(h.group(2))
            for link in LINK.finditer(raw):
                links.append((i + 1, link.group(1)))
            i += 1
            continue
        if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2):
            fence = None
            i += 1
            continue
        if lang not in SHELL_LANGS:
            i += 1
            continue
        start, text = i + 1, raw
        while text.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        stripped = text.strip()
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        elif lang == "console":
            continue  # output
        if stripped.startswith("#"):
            continue
        commands_in_line(path, start, stripped, commands)
    # Inline code spans in prose that start with `jepa ` (not jepa-engine: its documented forms
    # include internal options that --help hides).
    text = "\n".join(line for _, line in prose)
    line_of = []
    for n, line in prose:
        line_of.extend([n] * (len(line) + 1))
    for m in INLINE.finditer(text):
        span = m.group(1).replace("\n", " ").strip()
        if span.startswith("jepa "):
            commands_in_line(path, line_of[m.start()], span, commands)
    # experiments/*.toml named in prose (code blocks' files are checked through their commands;
    # other blocks hold output, such as an error message about experiments/my.toml).
    mentions = [(n, m.group(0)) for n, line in prose for m in MENTION.finditer(line)]
    return commands, links, headings, mentions


def is_placeholder(word):
    if "$" in word or "..." in word or "…" in word or re.search(r"<[^>]*>", word):
        return True
    value = word.split("=", 1)[-1]
    return bool(PLACEHOLDER_WORD.match(value)) or bool(PLACEHOLDER_WORD.match(word))


class Help:
    """`jepa [path...] --help`, parsed: options (name -> takes a value) and subcommands."""

    def __init__(self, jepa, path):
        self.path = path
        proc = subprocess.run([jepa, *path, "--help"], capture_output=True, text=True, timeout=120)
        self.ok = proc.returncode == 0
        self.error = (proc.stderr or proc.stdout).strip().splitlines()[-1:] if not self.ok else []
        self.options, self.subcommands = {}, set()
        section = None
        for line in proc.stdout.splitlines():
            if not line.strip():
                section = None
                continue
            if not line.startswith(" "):
                section = line.rstrip(":").strip().lower()
                continue
            if section == "options" and line.lstrip().startswith("-"):
                field = line[:30] if len(line) > 30 else line
                parts = field.split()
                for name in parts[0].split(","):
                    if name.startswith("-"):
                        self.options[name] = len(parts) > 1
            elif section == "subcommands":
                self.subcommands.add(line.split()[0])


class Checker:
    def __init__(self, jepa, root):
        self.jepa, self.root = jepa, root
        self.helps = {}
        self.failures = []
        self.options_checked = 0
        self.validations = {}  # (sub, file, sets) -> [commands]
        self.files = set()

    def display(self, path):
        rel = os.path.relpath(path, self.root)
        return path if rel.startswith("..") else rel

    def fail(self, cmd, why):
        self.failures.append(f"{cmd.where(self.display)}: {why}")

    def help(self, path):
        if path not in self.helps:
            self.helps[path] = Help(self.jepa, path)
        return self.helps[path]

    def check_command(self, cmd):
        top = self.help(())
        if not top.ok:
            self.fail(cmd, f"`jepa --help` failed: {' '.join(top.error)}")
            return
        words = list(cmd.words)
        path, current, i = (), top, 0
        positionals = []
        placeholder = any(is_placeholder(w) for w in words)
        sets = []
        while i < len(words):
            w = words[i]
            if w == "--":
                break
            bare = w.strip("[]")  # `jepa plugins [--json]`
            long_option = re.match(r"^--[A-Za-z][\w-]*", bare)
            if long_option or re.match(r"^-[A-Za-z]$", bare):
                name = long_option.group(0) if long_option else bare
                self.options_checked += 1
                takes_value = current.options.get(name, top.options.get(name))
                if takes_value is None:
                    where = "jepa " + " ".join(path) + " --help" if path else "jepa --help"
                    self.fail(cmd, f"unknown option {name} (not in `{where}`)")
                    takes_value = False
                if name == "--set" and i + 1 < len(words):
                    sets.append(words[i + 1])
                if takes_value and "=" not in w and i + 1 < len(words):
                    i += 1
                i += 1
                continue
            if not path or (current.subcommands and len(positionals) == 0 and w in current.subcommands):
                # The subcommand (or the sub-subcommand, as the first word after a command that has them).
                if is_placeholder(w):
                    return self.note_files(cmd, path, positionals, sets, True)
                if not path and not re.match(r"^[a-z][a-z-]*$", w):
                    return  # output such as `jepa 0.1.0 (plugin SDK ABI 1.1)`, not a command
                if w not in current.subcommands:
                    listed = ", ".join(sorted(current.subcommands))
                    where = "jepa " + " ".join(path) + " --help" if path else "jepa --help"
                    self.fail(cmd, f"unknown subcommand '{w}' (`{where}` lists: {listed})")
                    return
                path = path + (w,)
                current = self.help(path)
                if not current.ok:
                    self.fail(cmd, f"`jepa {' '.join(path)} --help` failed: {' '.join(current.error)}")
                    return
                i += 1
                continue
            positionals.append(w)
            i += 1
        self.note_files(cmd, path, positionals, sets, placeholder)

    def note_files(self, cmd, path, positionals, sets, placeholder):
        for p in positionals:
            if not p.endswith(".toml") or is_placeholder(p) or os.path.isabs(p):
                continue
            p = os.path.normpath(p)
            full = os.path.join(self.root, p)
            if not os.path.isfile(full):
                if p.startswith("experiments" + os.sep):
                    self.fail(cmd, f"{p} does not exist (relative to the repository root)")
                continue  # an illustration (`jepa run exp.toml ...`): nothing to validate
            self.files.add(p)
            if placeholder or path not in (("run",), ("sweep",)):
                continue
            key = (path[0], p, tuple(sets) if path[0] == "run" else ())
            self.validations.setdefault(key, []).append(cmd)

    def note_mentions(self, path, mentions):
        """experiments/*.toml named in a page's prose: it must exist, and it is validated once, as
        a sweep when it has a [sweep] table, else as an experiment."""
        for line, p in mentions:
            full = os.path.join(self.root, p)
            if not os.path.isfile(full):
                self.failures.append(f"{self.display(path)}:{line}: {p}: does not exist (relative to the repository root)")
                continue
            self.files.add(p)
            with open(full, encoding="utf-8") as f:
                sub = "sweep" if re.search(r"^\s*\[sweep\]", f.read(), re.M) else "run"
            self.validations.setdefault((sub, p, ()), []).append(Command(path, line, p, []))

    def validate(self, key, scratch):
        sub, file, sets = key
        db = os.path.join(scratch, f"dry-run-{abs(hash(key))}.db")
        argv = [self.jepa, sub, file, "--dry-run", "--db", db]
        for s in sets:
            argv += ["--set", s]
        try:
            proc = subprocess.run(argv, cwd=self.root, capture_output=True, text=True, timeout=DRY_RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"`jepa {sub} {file} --dry-run` did not finish in {DRY_RUN_TIMEOUT} s"
        if proc.returncode != 0:
            lines = [l for l in (proc.stderr + proc.stdout).splitlines() if l.strip()]
            errors = [l for l in lines if "error" in l.lower()] or lines[-2:]
            shown = " ".join(f"--set {s}" for s in sets)
            return (f"`jepa {sub} {file} --dry-run{' ' + shown if shown else ''}` failed "
                    f"(exit {proc.returncode}): {' | '.join(errors[-2:])}")
        return None

    def run_validations(self, jobs):
        with tempfile.TemporaryDirectory(prefix="check_docs-") as scratch:
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                results = dict(zip(self.validations, pool.map(lambda k: self.validate(k, scratch), self.validations)))
        for key, why in results.items():
            if why:
                for cmd in self.validations[key]:
                    self.fail(cmd, why)


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(headings):
    seen, out = {}, set()
    for h in headings:
        s = slug(h)
        n = seen.get(s, 0)
        out.add(s if n == 0 else f"{s}-{n}")
        seen[s] = n + 1
    return out


def check_links(checker, path, links, headings_of):
    count = 0
    for line, target in links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        count += 1
        file, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        where = f"{checker.display(path)}:{line}: link {target}"
        if not os.path.exists(full):
            checker.failures.append(f"{where}: {checker.display(full)} does not exist")
            continue
        if anchor and full.endswith(".md"):
            if full not in headings_of:
                headings_of[full] = extract(full)[2]
            if anchor not in anchors(headings_of[full]):
                checker.failures.append(f"{where}: no heading with anchor #{anchor} in {checker.display(full)}")
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jepa", required=True, help="the built jepa executable")
    ap.add_argument("--root", required=True, help="the repository root (commands run from here)")
    ap.add_argument("--jobs", type=int, default=2, help="dry runs at once (default 2)")
    ap.add_argument("--no-links", action="store_true", help="skip the check of relative links")
    ap.add_argument("--exists-only", action="append", default=[], metavar="FILE",
                    help="check that this experiment file exists but skip its dry run (one a slower test "
                         "dry-runs already); repeatable")
    ap.add_argument("--verbose", "-v", action="store_true", help="list every command and dry run")
    ap.add_argument("files", nargs="*", help="markdown files instead of README.md and docs/*.md")
    args = ap.parse_args()

    root = os.path.abspath(args.root)
    jepa = os.path.abspath(args.jepa)
    if not os.access(jepa, os.X_OK):
        print(f"check_docs: {args.jepa} is not an executable", file=sys.stderr)
        return 2
    if args.files:
        files = [os.path.abspath(f) for f in args.files]
    else:
        docs = os.path.join(root, "docs")
        files = [os.path.join(root, "README.md")] + sorted(
            os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))

    checker = Checker(jepa, root)
    commands, link_count, headings_of = [], 0, {}
    mentions = []
    for path in files:
        cmds, links, headings, named = extract(path)
        headings_of[path] = headings
        commands.extend(cmds)
        mentions.append((path, named))
        if not args.no_links:
            link_count += check_links(checker, path, links, headings_of)
    for cmd in commands:
        checker.check_command(cmd)
        if args.verbose:
            print(f"command  {checker.display(cmd.path)}:{cmd.line}: {cmd}")
    for path, named in mentions:
        checker.note_mentions(path, named)
    if args.verbose:
        for sub, file, sets in checker.validations:
            print(f"dry run  jepa {sub} {file} --dry-run" + "".join(f" --set {s}" for s in sets))
    for skipped in args.exists_only:
        for key in [k for k in checker.validations if k[1] == skipped]:
            del checker.validations[key]
    checker.run_validations(max(1, args.jobs))

    def order(failure):
        m = re.match(r"^(.*?):(\d+): ", failure)
        return (m.group(1), int(m.group(2))) if m else (failure, 0)

    for f in sorted(checker.failures, key=order):
        print(f)
    summary = (f"check_docs: {len(commands)} commands in {len(files)} files, {checker.options_checked} options, "
               f"{len(checker.files)} experiment/sweep files ({len(checker.validations)} dry runs)")
    if not args.no_links:
        summary += f", {link_count} links"
    print(f"{summary}: {'ok' if not checker.failures else str(len(checker.failures)) + ' failed'}")
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main())

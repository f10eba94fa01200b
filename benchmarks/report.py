"""Benchmark result files: results/NAME.json + NAME.md with the command, machine and date."""

import datetime
import json
import os
import platform
import subprocess
import sys


def machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        text = open("/proc/cpuinfo").read()
        flags = ",".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f" {f}" in text)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cpu_flags": flags,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def git_commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        ).stdout.strip()
    except OSError:
        return ""


def _portable(arg):
    """A path argument inside the project, written relative to it (results name no machine paths)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isabs(arg) and (arg == root or arg.startswith(root + os.sep)):
        return os.path.relpath(arg, root)
    return arg


def header():
    return {
        "command": " ".join([os.path.relpath(sys.argv[0])] + [_portable(a) for a in sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "commit": git_commit(),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    }


def write(out_dir, name, data, markdown_body):
    os.makedirs(out_dir, exist_ok=True)
    data = dict(header(), **data)
    with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
    m = data["machine"]
    head = (
        f"# {name}\n\n- command: `{data['command']}`\n- date: {data['date']} (commit {data['commit']})\n"
        f"- machine: {m['cpu']}, {m['cores']} cores ({m['cpu_flags']}), Python {m['python']}\n"
        f"- threads: {data['threads']}\n\n"
    )
    with open(os.path.join(out_dir, name + ".md"), "w", encoding="utf-8") as f:
        f.write(head + markdown_body.rstrip() + "\n")
    print(f"wrote {os.path.join(out_dir, name)}.md and .json")


def table(header_row, rows):
    lines = ["| " + " | ".join(header_row) + " |", "|" + "---|" * len(header_row)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)

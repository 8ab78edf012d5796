#!/usr/bin/env python3
"""Helpers for bench/*.sh: bundle edits, hyperfine JSON -> Markdown, and
rewriting one section of docs/BENCHMARKS.md.

Subcommands:
  strip-cgroups CONFIG                     drop linux.resources and the cgroup mount
  add-mounts CONFIG N HOSTDIR OPTIONS_JSON add N bind mounts HOSTDIR/bI -> /mnt/bI
  lifecycle ROWS HYPERFINE_JSON META       print the lifecycle section
  mounts ROWS HYPERFINE_JSON META          print the bind mount scaling section
  engines ROWS HYPERFINE_JSON META         print the engines (podman, containerd) section
  sandbox ROWS META GROUP=JSON...          print the sandbox section (one hyperfine JSON per row group)
  chroot ROWS HYPERFINE_JSON META          print the chroot isolation section
  cp ROWS META CASE=JSON...                print the cp section (one hyperfine JSON per case)
  batch OUT_JSON LABEL N TEMPLATE          start N commands at once (TEMPLATE with {id}), append
                                           the batch's times and exit codes to OUT_JSON
  parallel ROWS BATCH_JSON META            print the parallel load section
  rss ROWS META TIME HWM SELF BINDIR       print the memory and binary size section
  poll-hwm COMMAND                         run COMMAND (split like a shell), print the runtime's last VmHWM (KiB)
  phases LOG [--group] [--markdown]        per-phase table of a ROOTCELL_PHASES=1 log ("run N" lines
                                           between runs); --group sums each block of `step:` marks
  steps ROWS HYPERFINE_JSON META           print the lifecycle steps (create, start, delete) section
  cgroup-dirs PID LEAF                     the cgroup directories made for process PID (those it
                                           does not share with this process), each with its last
                                           component replaced by LEAF, one per line
  cri SINGLE_JSON PARALLEL_JSON META      print the pods-through-CRI section (rootcell-cri-node
                                           start-pods --json results)
  section DOC CONTENT_FILE                 replace (or append) CONTENT's section in DOC
  interleave OUT_JSON WARMUP RUNS (-n LABEL COMMAND)...
                                           time the commands in rounds, one run of each in turn,
                                           and write hyperfine's JSON layout

ROWS is a TSV written by the shell script: label, group, runtime, n, status,
command (status is "ok" or a reason it was not measured). META holds
"key: value" lines. Paths in commands are shown relative to $TMP and the repo.
"""
import json
import os
import sys

DOC_INTRO = """# Benchmarks

Numbers measured on a developer machine by the scripts in `bench/` (how to
run them: [bench/README.md](../bench/README.md)). Each section below is
written by its script and rewritten on every run — do not edit it by hand.
"""


def load_json(path):
    with open(path) as f:
        return json.load(f)


def save_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def strip_cgroups(config):
    spec = load_json(config)
    spec.get("linux", {}).pop("resources", None)
    spec["mounts"] = [m for m in spec.get("mounts", []) if m.get("type") != "cgroup"]
    save_json(config, spec)


def add_mounts(config, n, hostdir, options):
    spec = load_json(config)
    rootfs = spec["root"]["path"]
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(os.path.dirname(os.path.abspath(config)), rootfs)
    for i in range(n):
        src = os.path.join(hostdir, f"b{i}")
        os.makedirs(src, exist_ok=True)
        # Mount points exist beforehand, so no runtime pays for mkdir.
        os.makedirs(os.path.join(rootfs, "mnt", f"b{i}"), exist_ok=True)
        spec["mounts"].append(
            {"destination": f"/mnt/b{i}", "type": "bind", "source": src, "options": options}
        )
    save_json(config, spec)


def read_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            label, group, runtime, n, status, command = line.split("\t")
            rows.append(
                dict(label=label, group=group, runtime=runtime, n=int(n), status=status, command=command)
            )
    return rows


def read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            if ":" in line:
                k, v = line.split(":", 1)
                meta[k.strip()] = v.strip()
    return meta


def attach_results(rows, hyperfine_json):
    """Give each measured row its hyperfine result; rows with non-zero exit
    codes in any run are marked failed."""
    results = {}
    if hyperfine_json and os.path.exists(hyperfine_json):
        results = {r["command"]: r for r in load_json(hyperfine_json)["results"]}
    for row in rows:
        r = results.get(row["label"]) if row["status"] == "ok" else None
        row["result"] = None
        if row["status"] != "ok":
            continue
        if r is None:
            row["status"] = "not measured (hyperfine failed)"
            continue
        bad = sum(1 for c in r.get("exit_codes", []) if c != 0)
        if bad:
            row["status"] = f"failed ({bad}/{len(r['exit_codes'])} runs exited non-zero)"
            continue
        row["result"] = r
    return rows


# How the cgroup2 ns row sets are run (lib.sh cgroup2_ns_start), for the
# sections' text.
CGROUP2_NS_TEXT = (
    "held by a process started as `unshare -m --propagation private sh -c "
    "'mount -t cgroup2 none /sys/fs/cgroup && exec sleep infinity'` and entered by each run with "
    "`nsenter --mount=/proc/$HOLDER/ns/mnt <runtime> …` (a `setns` and an `execve`)"
)


def shorten(command, meta):
    if meta.get("cgroup2 ns"):
        command = command.replace(meta["cgroup2 ns"], "/proc/$HOLDER/ns/mnt")
    for prefix, name in ((meta.get("tmp", ""), "$TMP"), (meta.get("repo", ""), ".")):
        if prefix:
            command = command.replace(prefix + "/", name + "/")
    return command


def ms(seconds):
    return seconds * 1000.0


def meta_lines(meta, runs):
    keys = ["date", "kernel", "cpu", "load", "cgroups", "rootcell", "runc", "crun", "bwrap", "hyperfine", "timing"]
    out = [f"- {k}: {meta[k]}" for k in keys if k in meta]
    out.append(f"- runs: {runs}")
    return out


def time_cell(row):
    """The "mean ± σ (ms)" table cell of a row, or why it has no result."""
    if row["result"] is None:
        cell = row["status"] if row["status"].startswith("failed") else f"failed: {row['status']}"
        return cell.replace("|", "\\|")
    return f"{ms(row['result']['mean']):.2f} ± {ms(row['result']['stddev']):.2f}"


def ratio(row, ref):
    if row["result"] is None:
        return "–"
    if ref is None or ref["result"] is None:
        return "–"
    return f"{row['result']['mean'] / ref['result']['mean']:.2f}×"


def net_of_wrapper(row, wrapper):
    """The "net of wrapper (ms)" cell: a cgroup2 ns row's mean minus the
    wrapper row's mean (what the runtime itself costs in that set)."""
    if row["group"] != "cgroup2" or row["result"] is None or wrapper is None or wrapper["result"] is None:
        return "–"
    return f"{ms(row['result']['mean'] - wrapper['result']['mean']):.2f}"


def net_ratio_line(rows, wrapper, label_of):
    """One sentence with the net-of-wrapper ratios of the cgroup2 set to
    crun's (the issue's goal: rootcell at most 0.5× crun there)."""
    if wrapper is None or wrapper["result"] is None:
        return None
    w = wrapper["result"]["mean"]
    net = {r["runtime"]: r["result"]["mean"] - w for r in rows if r["group"] == "cgroup2" and r["result"] is not None}
    crun = net.get("crun")
    if not crun or crun <= 0:
        return None
    parts = [
        f"{label_of(rt)} {ms(v):.2f} ms" + (f" = {v / crun:.2f}× crun" if v > 0 else " (noise: at or below the wrapper)")
        for rt, v in net.items()
    ]
    return "Net of the wrapper (mean − the wrapper row's mean), cgroup2 ns set: " + "; ".join(parts) + "."


def lifecycle(rows_path, hf_path, meta_path):
    rows = attach_results(read_rows(rows_path), hf_path)
    meta = read_meta(meta_path)

    def ref(runtime, group):
        g = "host" if group == "reference" else group
        return next((r for r in rows if r["runtime"] == runtime and r["group"] == g), None)

    wrapper = next((r for r in rows if r["runtime"] == "wrapper"), None)
    out = ["## Lifecycle (`run` of /bin/true)", ""]
    out.append(
        "Wall time of one complete container lifecycle (create, start, wait, delete: "
        "`<runtime> --root $TMP/state run --bundle B bench`, a busybox bundle whose "
        "process is `/bin/true`, config from `runc spec`), timed by `bench/lifecycle.sh` "
        + (
            "in interleaved rounds (`report.py interleave`: one run of each command in turn, "
            "round after round, so that every row sees the same drift of this VM's speed; each "
            "run a fork and exec without a shell, as hyperfine -N makes it). "
            if meta.get("timing", "").startswith("interleaved")
            else "with hyperfine (no shell). "
        )
        + "Ratios are mean / mean of rootcell and of runc "
        "in the same row set (references compare with the host set); > 1 is slower."
        + (
            " *Net of wrapper* is a cgroup2 ns row's mean minus the wrapper row's mean "
            "(which includes /bin/true's own start-up: it understates every runtime's time)."
            if wrapper
            else ""
        )
    )
    out.append("")
    if wrapper:
        out.append("| command | mean ± σ (ms) | vs rootcell | vs runc | vs crun | net of wrapper (ms) |")
        out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    else:
        out.append("| command | mean ± σ (ms) | vs rootcell | vs runc | vs crun |")
        out.append("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        cell = time_cell(row)
        line = (
            f"| {row['label']} | {cell} | {ratio(row, ref('rootcell', row['group']))} "
            f"| {ratio(row, ref('runc', row['group']))} "
            f"| {ratio(row, ref('crun', 'cgroup2')) if row['group'] == 'cgroup2' else '–'} |"
        )
        if wrapper:
            line += f" {net_of_wrapper(row, wrapper)} |"
        out.append(line)
    out.append("")
    line = net_ratio_line(rows, wrapper, lambda rt: rt)
    if line:
        out.extend([line, ""])
    out.append(
        "Row sets: *host* runs the runtime as is on this machine's cgroup layout, "
        f"{meta.get('cgroups', '?')}. crun 1.8 refuses a hybrid layout, so the "
        "*cgroup2 ns* set runs every runtime in a mount namespace the script makes once, "
        f"{CGROUP2_NS_TEXT}, "
        "with a config without `linux.resources` and without the `/sys/fs/cgroup` mount; "
        + (
            "that set includes the cost of nsenter, the same for all three. "
            if wrapper
            else "timed in interleaved rounds, the timer enters that namespace itself before each "
            "run of the set (outside the timing), so no row pays nsenter (about 1.3 ms here). "
        )
        + "The plain rootcell rows run the installed binary (scripts/setup: `/usr/local/bin/rootcell`, "
        "immutable), which needs no re-exec to keep its binary out of a container's reach "
        "(CVE-2019-5736, docs/SECURITY.md class 14); the *build tree* row runs `target/release/rootcell`, "
        "writable, which pays that re-exec on every run. "
        "bwrap and the `unshare` floor are references: a sandbox without OCI state, "
        "and the bare kernel cost of new namespaces plus a fork/exec"
        + ("; the wrapper row is what the cgroup2 ns set pays on top of the runtime." if wrapper else ".")
    )
    out.append("")
    log = meta.get("phases log")
    if log and os.path.exists(log):
        rows_p, total, n = phase_table(log, group=True)
        if rows_p:
            failed = meta.get("phases failed", "0")
            out.append("### Where `rootcell run` spends its time")
            out.append("")
            out.append(
                f"The host row's command run {n} times more with `ROOTCELL_PHASES=1` (bench/README.md; "
                "not timed by hyperfine): median and mean time from the previous mark to each mark, in the "
                "order the marks come (marks of the runtime, stage 1, init and the container's process "
                "interleave by time; where their order varies between runs, a mark's gap is measured from "
                "whichever mark came before it). Each block of `step: …` marks of one process (the plan's "
                "rootfs steps) is one line, the sum of its steps' gaps, named after the mark that ends it; "
                "`bench/out/lifecycle-phases.txt` has every step. Not counted: the `execve` of rootcell "
                "before its first mark and its exit after the last."
                + (f" {failed} of the runs failed." if failed not in ("", "0") else "")
            )
            out.append("")
            out.append("| phase (time since the previous mark) | median (ms) | mean (ms) |")
            out.append("| --- | ---: | ---: |")
            for name, med, mean, count in rows_p:
                label = f"{name} ({count:g} steps)" if name.startswith("steps ") else f"`{name}`"
                out.append(f"| {label} | {med:.3f} | {mean:.3f} |")
            if total:
                out.append(f"| **first to last mark** | {total[0]:.3f} | {total[1]:.3f} |")
            out.append("")
    out.extend(meta_lines(meta, meta.get("runs", "?")))
    out.append("")
    out.extend(exact_commands([f"- {row['label']}: `{shorten(row['command'], meta)}`" for row in rows]))
    print("\n".join(out))

def parse_phases(log):
    """The runs of a ROOTCELL_PHASES=1 log (bench/phases.sh, lifecycle.sh):
    a list per run of (pid, seconds, name) marks, in the order written;
    a line "run N" starts each run, other lines are ignored."""
    runs, cur = [], None
    with open(log) as f:
        for line in f:
            parts = line.split(maxsplit=3)
            if not parts:
                continue
            if parts[0] == "run":
                cur = []
                runs.append(cur)
                continue
            if parts[0] != "rootcell-phase" or len(parts) < 4 or cur is None:
                continue
            cur.append((parts[1], float(parts[2]), parts[3].strip()))
    return [r for r in runs if r]


def phase_gaps(marks, group):
    """(label, ms since the previous mark, count) per mark of one run. With
    group, the `step: …` marks of one process between two of its other
    marks are one entry, labelled after the mark that ends the block
    (count: how many steps it sums)."""
    out, open_blocks = [], {}
    prev = None
    for pid, t, name in marks:
        gap = None if prev is None else (t - prev) * 1e3
        prev = t
        if gap is None:
            continue
        if group and name.startswith("step: "):
            block = open_blocks.get(pid)
            if block is None:
                block = open_blocks[pid] = [None, 0.0, 0]
                out.append(block)
            block[1] += gap
            block[2] += 1
            continue
        if group and pid in open_blocks:
            open_blocks.pop(pid)[0] = f"steps before `{name}`"
        out.append([name, gap, 1])
    for block in open_blocks.values():
        block[0] = "steps at the end"
    return out


def phase_table(log, group=False):
    """Per label, in the order labels first come: median and mean ms since
    the previous mark, and the median count of steps it sums; plus the
    first-to-last-mark totals and the number of runs."""
    import statistics

    runs = parse_phases(log)
    gaps, counts, order, totals = {}, {}, [], []
    for marks in runs:
        totals.append((marks[-1][1] - marks[0][1]) * 1e3)
        for label, gap, n in phase_gaps(marks, group):
            if label not in gaps:
                order.append(label)
            gaps.setdefault(label, []).append(gap)
            counts.setdefault(label, []).append(n)
    rows = [
        (label, statistics.median(gaps[label]), statistics.mean(gaps[label]), statistics.median(counts[label]))
        for label in order
    ]
    total = (statistics.median(totals), statistics.mean(totals)) if totals else None
    return rows, total, len(runs)


def phases(log, *flags):
    """Prints the per-phase table of a log: text (bench/phases.sh) or, with
    --markdown, a Markdown table."""
    group, markdown = "--group" in flags, "--markdown" in flags
    rows, total, n = phase_table(log, group)

    def label(name, count):
        if group and name.startswith("steps "):
            return f"{name} ({count:g} steps)"
        return name

    if markdown:
        print("| phase (time since the previous mark) | median (ms) | mean (ms) |")
        print("| --- | ---: | ---: |")
        for name, med, mean, count in rows:
            print(f"| {label(name, count)} | {med:.3f} | {mean:.3f} |")
        if total:
            print(f"| **first to last mark** | {total[0]:.3f} | {total[1]:.3f} |")
        return
    print(f"{'phase (time since the previous mark)':44} {'median ms':>10} {'mean ms':>10}")
    for name, med, mean, count in rows:
        print(f"{label(name, count):44} {med:10.3f} {mean:10.3f}")
    if total:
        print(f"{'first to last mark':44} {total[0]:10.3f} {total[1]:10.3f}")
    print(f"({n} runs)")


def cgroup_dirs(pid, leaf):
    """The cgroup directories of process PID that this process does not
    share (those made for it), as paths under this mount namespace's
    cgroup mounts, with the last component replaced by LEAF."""
    def memberships(path):
        out = {}
        with open(path) as f:
            for line in f:
                num, controllers, cg = line.rstrip("\n").split(":", 2)
                out[(num, controllers)] = cg
        return out

    mine, theirs = memberships("/proc/self/cgroup"), memberships(f"/proc/{pid}/cgroup")
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            fields, rfields = left.split(), right.split()
            fstype, opts = rfields[0], set(rfields[2].split(","))
            if fstype in ("cgroup", "cgroup2"):
                mounts.append((fstype, opts, fields[3], fields[4]))
    for (num, controllers), cg in theirs.items():
        if mine.get((num, controllers)) == cg or cg == "/":
            continue
        want = set(controllers.split(",")) if controllers else set()
        # A later mount may hide an earlier one (the cgroup2 ns mounts
        # cgroup2 over /sys/fs/cgroup): the last one whose parent exists.
        for fstype, opts, root, point in reversed(mounts):
            if num == "0" and not controllers:
                ok = fstype == "cgroup2"
            else:
                ok = fstype == "cgroup" and want <= opts
            if not ok:
                continue
            rel = cg if root == "/" else (cg[len(root):] if cg.startswith(root + "/") else None)
            if rel is None:
                continue
            parent = os.path.dirname(point.rstrip("/") + rel)
            if not os.path.isdir(parent):
                continue
            print(os.path.join(parent, leaf))
            break


def steps(rows_path, hf_path, meta_path):
    """The lifecycle steps section: create, start, delete per runtime and
    row set, with the rmdir and wrapper references."""
    rows = attach_results(read_rows(rows_path), hf_path)
    meta = read_meta(meta_path)
    prepares = {}
    if meta.get("prepare") and os.path.exists(meta["prepare"]):
        for label, cmd in read_tsv(meta["prepare"]):
            prepares[label] = cmd

    def find(label):
        return next((r for r in rows if r["label"] == label), None)

    def mean(row):
        return None if row is None or row["result"] is None else row["result"]["mean"]

    wrapper = find("cgroup2 ns wrapper alone (exec /bin/true)")
    rmdir = {"host": find("rmdir of the container's cgroup directories"),
             "cgroup2": find("rmdir of the container's cgroup directories (cgroup2 ns)")}
    sets = [("host", "", "host"), ("cgroup2", " (cgroup2 ns)", "cgroup2 ns")]
    runtimes = ["rootcell", "runc", "crun"]

    def cell(row):
        return "–" if row is None else time_cell(row)

    def rat(a, b):
        return "–" if a is None or b is None or a <= 0 or b <= 0 else f"{a / b:.2f}×"

    out = ["## Lifecycle steps (create, start, delete)", ""]
    out.append(
        "Wall time of each OCI lifecycle step on its own, as podman and containerd call them: "
        "`<runtime> --root $TMP/state-… create --bundle B <id>`, `start <id>` and `delete <id>` of a "
        "busybox bundle whose process is `/bin/true` (config from `runc spec`), timed by `bench/steps.sh` "
        "with hyperfine (no shell) in one invocation. Before each timed run a `--prepare` command (not "
        "timed) brings the container to the state the step starts from: none (`create`), created "
        "(`start`: its process then runs `/bin/true` and exits), stopped (`delete`: created, started, "
        "then `state` polled until it says `stopped`). Ratios are mean / mean in the same row set and "
        "step; > 1 is slower."
    )
    out.append("")
    out.append("| step | row set | rootcell (ms) | runc (ms) | crun (ms) | rootcell / runc | rootcell / crun |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for step in ("create", "start", "delete"):
        for group, suffix, name in sets:
            found = {rt: find(f"{rt} {step}{suffix}") for rt in runtimes}
            if not any(found.values()):
                continue
            m = {rt: mean(r) for rt, r in found.items()}
            out.append(
                f"| {step} | {name} | {cell(found['rootcell'])} | {cell(found['runc'])} | {cell(found['crun'])} "
                f"| {rat(m['rootcell'], m['runc'])} | {rat(m['rootcell'], m['crun'])} |"
            )
    out.append("")
    out.append("References (same hyperfine run):")
    out.append("")
    out.append("| reference | mean ± σ (ms) |")
    out.append("| --- | ---: |")
    for row in (rmdir["host"], rmdir["cgroup2"], wrapper):
        if row is not None:
            n = len(row["command"].split()) - 1 - (2 if row["command"].startswith("nsenter ") else 0)
            extra = f" ({n} director{'y' if n == 1 else 'ies'})" if row["runtime"].startswith("rmdir") and row["result"] is not None else ""
            out.append(f"| {row['label']}{extra} | {cell(row)} |")
    out.append("")
    lines = []
    for group, suffix, name in sets:
        ref = mean(rmdir[group])
        if ref is None:
            continue
        parts = []
        for rt in runtimes:
            d = mean(find(f"{rt} delete{suffix}"))
            if d is not None:
                parts.append(f"{rt} {ms(d - ref):+.2f} ms")
        if parts:
            lines.append(f"{name}: " + ", ".join(parts))
    if lines:
        out.append(
            "`delete` of a stopped container over the `rmdir` of its cgroup directories (mean − mean; "
            "the goal is rootcell at most +1 ms): " + "; ".join(lines) + "."
        )
        out.append("")
    out.append(
        "The `rmdir` rows are one `rmdir` of the directories rootcell makes for a container in that row "
        "set, found from a created container's `/proc/PID/cgroup` (each hierarchy where it is not in the "
        "caller's cgroup: on this machine's hybrid layout one per v1 hierarchy plus the unified one; in "
        "the cgroup2 ns set the one cgroup2 directory), under the same parents with a leaf of their own, "
        "made by the prepare command: what any `delete` must do at least, plus one fork and exec. "
        "Row sets as in the lifecycle section: *host* runs the runtime as is on this machine's cgroup "
        f"layout, {meta.get('cgroups', '?')}; *cgroup2 ns* runs every runtime (and the cgroup2 `rmdir`) "
        f"in a mount namespace with a fresh cgroup2 on `/sys/fs/cgroup`, {CGROUP2_NS_TEXT}, with a config "
        "without `linux.resources` and without the `/sys/fs/cgroup` mount (crun 1.8 refuses the hybrid "
        "layout). Every cgroup2 ns row (the `rmdir` one too) pays nsenter's start-up, about 1.3 ms here; "
        "the wrapper row (`nsenter … /bin/true`) also pays `/bin/true`'s own (glibc's, about 0.9 ms), "
        "so it is shown, not subtracted: a row net of it would understate every runtime."
    )
    out.append("")
    out.extend(meta_lines(meta, meta.get("runs", "?")))
    out.append("")
    cmds = []
    for row in rows:
        line = f"- {row['label']}: `{shorten(row['command'], meta)}`"
        prep = prepares.get(row["label"])
        if prep and prep != "true":
            line += f", prepare `{shorten(prep, meta)}`"
        cmds.append(line)
    note = "`$TMP/ctl-<runtime>-<set>` is the prepare script of a row set; rootcell's host one:"
    ctl = meta.get("ctl")
    if ctl and os.path.exists(ctl):
        with open(ctl) as f:
            body = f.read().strip("\n")
        note += "\n\n```sh\n" + shorten(body, meta) + "\n```"
    out.extend(exact_commands(cmds, note))
    print("\n".join(out))


def chroot(rows_path, hf_path, meta_path):
    rows = attach_results(read_rows(rows_path), hf_path)
    meta = read_meta(meta_path)
    base = next((r for r in rows if r["runtime"] == "rootcell-chroot"), None)
    full = next((r for r in rows if r["runtime"] == "rootcell" and r["group"] == "full"), None)

    out = ["## Chroot isolation (/bin/true)", ""]
    out.append(
        "Wall time of running `/bin/true` in the busybox rootfs of `scripts/make-bundle` "
        "(config from `runc spec`), timed by `bench/chroot.sh` with hyperfine (no shell): "
        "rootcell in chroot isolation (`rootcell --isolation chroot run`: a private mount and "
        "UTS namespace plus the config's other namespaces, the root switched by MS_MOVE + "
        "chroot) against full isolation of the same bundle, buildah's own chroot isolation "
        "(`buildah run --isolation chroot` on a working container holding the same rootfs, vfs "
        "storage), buildah driving an OCI runtime (what one `RUN` step of an image build costs), "
        "and bwrap on the same rootfs. Ratios are mean / mean of `rootcell --isolation chroot run` "
        "and of `rootcell run`; > 1 is slower."
    )
    out.append("")
    out.append("| command | mean ± σ (ms) | vs rootcell chroot | vs rootcell full |")
    out.append("| --- | ---: | ---: | ---: |")
    for row in rows:
        out.append(f"| {row['label']} | {time_cell(row)} | {ratio(row, base)} | {ratio(row, full)} |")
    out.append("")
    out.append(
        "Each `run` is a whole container lifecycle (create, start, wait, delete, with OCI state "
        "under `--root`); buildah's rows add buildah's own start (storage, locks, the bundle it "
        "writes for each run) and, for `--isolation chroot`, its re-exec of itself. bwrap keeps "
        "no state and makes no cgroup."
    )
    out.append("")
    lines = meta_lines(meta, meta.get("runs", "?"))
    if "buildah" in meta:
        lines.insert(-1, f"- buildah: {meta['buildah']}")
    out.extend(lines)
    out.append("")
    out.extend(exact_commands([f"- {row['label']}: `{shorten(row['command'], meta)}`" for row in rows]))
    print("\n".join(out))


def exact_commands(lines, note=None):
    """The collapsed "Exact commands" block ending a section."""
    out = ["<details><summary>Exact commands</summary>", ""]
    if note:
        out.extend([note, ""])
    return out + lines + ["", "</details>"]


def mounts(rows_path, hf_path, meta_path):
    rows = attach_results(read_rows(rows_path), hf_path)
    meta = read_meta(meta_path)
    counts = sorted({r["n"] for r in rows})
    runtimes = []
    for r in rows:
        if r["runtime"] not in runtimes:
            runtimes.append(r["runtime"])

    def cell(runtime, n):
        row = next((r for r in rows if r["runtime"] == runtime and r["n"] == n), None)
        if row is None:
            return None, "–"
        if row["result"] is None:
            return None, "failed"
        res = row["result"]
        return res["mean"], f"{ms(res['mean']):.2f} ± {ms(res['stddev']):.2f}"

    lo, hi = counts[0], counts[-1]
    out = ["## Bind mount scaling", ""]
    out.append(
        f"Wall time of `run` (busybox bundle, process `/bin/true`) with {', '.join(map(str, counts))} "
        f"extra bind mounts: host temp dirs bound to `/mnt/bN` with options `{meta.get('options', '?')}`, "
        "timed by `bench/mounts.sh` with hyperfine (no shell). "
        f"Per-mount cost = (t{hi} − t{lo}) / {hi - lo}."
    )
    out.append("")
    header = "| runtime | " + " | ".join(f"{n} mount{'s' if n != 1 else ''} (ms)" for n in counts)
    header += " | per mount (µs) |"
    out.append(header)
    out.append("|" + " --- |" + " ---: |" * (len(counts) + 1))
    for rt in runtimes:
        cells = [cell(rt, n) for n in counts]
        t_lo, t_hi = cells[0][0], cells[-1][0]
        per = f"{(t_hi - t_lo) / (hi - lo) * 1e6:.1f}" if t_lo is not None and t_hi is not None else "–"
        out.append(f"| {rt} | " + " | ".join(c[1] for c in cells) + f" | {per} |")
    failed = [r for r in rows if r["result"] is None]
    if failed:
        out.append("")
        for r in failed:
            out.append(f"- {r['label']}: {r['status']}")
    out.append("")
    out.append(
        "All runtimes run the same way: in a mount namespace with a fresh cgroup2 on `/sys/fs/cgroup`, "
        f"{CGROUP2_NS_TEXT}, "
        "with a config without `linux.resources` and without the `/sys/fs/cgroup` mount, because crun 1.8 "
        f"refuses this machine's {meta.get('cgroups', '?').split(' ')[0]} cgroup layout; that fixed overhead "
        "cancels out of the per-mount cost."
    )
    out.append("")
    out.extend(meta_lines(meta, meta.get("runs", "?")))
    out.append("")
    seen, lines = set(), []
    for row in rows:
        cmd = shorten(row["command"], meta).replace(f"/B-{row['n']} ", "/B-<N> ")
        if cmd not in seen:
            seen.add(cmd)
            lines.append(f"- {row['runtime']}: `{cmd}`")
    out.extend(exact_commands(lines, "`$TMP/B-<N>` is the bundle with N bind mounts."))
    print("\n".join(out))


def engines(rows_path, hf_path, meta_path):
    rows = attach_results(read_rows(rows_path), hf_path)
    meta = read_meta(meta_path)

    def ref(runtime, group):
        return next((r for r in rows if r["runtime"] == runtime and r["group"] == group), None)

    def delta(row, ref_row):
        if row["result"] is None or ref_row is None or ref_row["result"] is None:
            return "–"
        return f"{ms(row['result']['mean'] - ref_row['result']['mean']):+.1f}"

    out = ["## Engines (podman and containerd)", ""]
    out.append(
        "Wall time of `podman run --rm localhost/busybox /bin/true` and of "
        "`ctr run --rm --runc-binary <runtime> localhost/busybox:latest <id> /bin/true` "
        "(containerd 1.6 through its runc shim) with runc, crun and rootcell as the OCI runtime, "
        "timed by `bench/engines.sh` "
        + (
            "in interleaved rounds (`report.py interleave`: one run of each of the six commands "
            "in turn, round after round, each a fork and exec without a shell). "
            if meta.get("timing", "").startswith("interleaved")
            else "with hyperfine (no shell), all six in one invocation. "
        )
        + "The image is the busybox rootfs of `scripts/make-bundle` (`podman import` of its tar, "
        "`ctr image import` of an OCI archive from `scripts/make-oci-archive`). Ratios are "
        "mean / mean of runc and of rootcell under the same engine; > 1 is slower."
    )
    out.append("")
    out.append("| engine | runtime | mean ± σ (ms) | vs runc | vs rootcell | Δ vs runc (ms) |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        cell = time_cell(row)
        runc = ref("runc", row["group"])
        out.append(
            f"| {row['group']} | {row['runtime']} | {cell} | {ratio(row, runc)} "
            f"| {ratio(row, ref('rootcell', row['group']))} | {delta(row, runc)} |"
        )
    out.append("")
    out.append(
        "Each engine is private to the run: podman with its own `containers.conf` "
        "(`CONTAINERS_CONF`: cgroupfs, no network, file events, the three runtimes by name) "
        "and `vfs` storage in the temp dir; a containerd daemon of its own (root, state and "
        "socket in the temp dir, CRI plugin disabled), stopped at the end. The containers' "
        "cgroups go under a parent of the bench's own (`--cgroup-parent`, `--cgroup`). "
        f"Host cgroups: {meta.get('host cgroups', '?')}. In the benchmark's private mount "
        f"namespace: {meta.get('bench cgroups', '?')}, the same for every runtime and "
        "both engines (crun 1.8 refuses a v2 tree with a controller next to v1, and on cgroup2 "
        "alone it cannot load its device filter without CAP_SYS_RESOURCE to raise RLIMIT_MEMLOCK). "
        "The engines' specs carry `linux.resources` (device rules, podman's pids limit, "
        "ctr's cpu shares); a runtime that does not apply them does less work. "
        "The engine's own work (podman's image and container setup, conmon, the containerd "
        "shim and its gRPC round trips) is the same for every runtime; Δ is what the runtime "
        "changes. The runtimes alone: see the lifecycle section."
    )
    out.append("")
    keys = ["date", "kernel", "cpu", "load", "rootcell", "runc", "crun", "podman", "conmon",
            "containerd", "shim", "hyperfine"]
    out.extend(f"- {k}: {meta[k]}" for k in keys if k in meta)
    out.append(f"- runs: {meta.get('runs', '?')}")
    out.append("")
    out.extend(
        exact_commands(
            [f"- {row['label']}: `{shorten(row['command'], meta)}`" for row in rows],
            "With `CONTAINERS_CONF=$TMP/podman/containers.conf` in the environment "
            "(see `bench/engines.sh`).",
        )
    )
    print("\n".join(out))


SANDBOX_GROUPS = {
    "true": "`/bin/true`",
    "results": "result capture",
    "mounts": "extra host mount points",
}


def sandbox(rows_path, meta_path, *group_jsons):
    """The sandbox section: one table per row group (true, results, mounts),
    each timed by its own hyperfine run; rows are matched to results by
    label within their group."""
    meta = read_meta(meta_path)
    jsons = dict(arg.split("=", 1) for arg in group_jsons)
    all_rows = read_rows(rows_path)
    groups = {}
    for name in SANDBOX_GROUPS:
        rows = [r for r in all_rows if r["group"] == name]
        # Skipped rows (a tool that is not there) are not failures.
        skipped = {id(r): r["status"] for r in rows if r["status"].startswith("skipped")}
        attach_results(rows, jsons.get(name))
        for r in rows:
            if id(r) in skipped:
                r["status"] = skipped[id(r)]
        groups[name] = rows

    def find(group, runtime):
        return next((r for r in groups.get(group, []) if r["runtime"] == runtime), None)

    def cell(row):
        if row["result"] is None and row["status"].startswith("skipped"):
            return row["status"].replace("|", "\\|")
        return time_cell(row)

    def delta(row, base):
        if row["result"] is None or base is None or base["result"] is None:
            return "–"
        return f"{ms(row['result']['mean'] - base['result']['mean']):+.1f}"

    files, mounts_n = meta.get("files", "?"), meta.get("mounts", "?")
    out = ["## Sandbox", ""]
    out.append(
        "Wall time of one sandboxed run, timed by `bench/sandbox.sh` with hyperfine (no shell): "
        "`rootcell sandbox` against bubblewrap (`bwrap --ro-bind / / --proc /proc --dev /dev "
        "--unshare-all`), BenchExec's `containerexec` and `runexec` (PyPI package BenchExec, "
        "default options: `/` overlaid, `/tmp` and `/run` hidden, runexec with cgroup measurements) "
        "and the floor `unshare -Urmnpf --mount-proc` (new namespaces and a fork/exec, no file "
        "system work). Three hyperfine runs: the command `/bin/true`; a command (one `sh`, "
        f"builtins only) writing {files} small files into its working directory, captured with "
        "`--result-files '*'` (bwrap has no capture: a writable host directory bound on the "
        "working directory is its nearest equivalent; the floor writes into a host directory; "
        "output directories and those host directories are on a tmpfs, so no row waits for the disk); "
        f"`/bin/true` again with {mounts_n} extra tmpfs mount points on the host (in the "
        "benchmark's private mount namespace, under the working directory, which is part of "
        "the `/` overlay). Ratios are mean / mean of `rootcell sandbox` and of bwrap in the same "
        "table; > 1 is slower. Δ is the time over the same tool's `/bin/true` row."
    )
    for name in SANDBOX_GROUPS:
        rows = groups.get(name, [])
        if not rows:
            continue
        out.append("")
        heading = {
            "true": "`/bin/true`",
            "results": f"{files} result files",
            "mounts": f"{mounts_n} extra host mount points",
        }[name]
        out.append(f"### {heading}")
        out.append("")
        with_delta = name != "true"
        head = "| command | mean ± σ (ms) | vs rootcell sandbox | vs bwrap |"
        sep = "| --- | ---: | ---: | ---: |"
        if with_delta:
            head += " Δ vs `true` (ms) |"
            sep += " ---: |"
        out.extend([head, sep])
        for row in rows:
            line = (
                f"| {row['label']} | {cell(row)} | {ratio(row, find(name, 'rootcell'))} "
                f"| {ratio(row, find(name, 'bwrap'))} |"
            )
            if with_delta:
                line += f" {delta(row, find('true', row['runtime']))} |"
            out.append(line)
    out.append("")
    out.append(
        "BenchExec always runs in a user namespace, where this kernel refuses an overlay with `/` "
        "as its lower layer: it then overlays `/` with fuse-overlayfs (Debian package, ≥ 1.10 "
        "needed; without it every run fails with \"Failed to create overlay mount for '/'\"). "
        "The `--read-only-dir /` rows show BenchExec without fuse-overlayfs (no writes possible "
        "outside hidden directories). runexec measures through cgroups (v1 on this machine: "
        f"{meta.get('cgroups', '?')}); both write a log line per run to stderr, which hyperfine "
        "discards. The working directory is under `/var/tmp`, not `/tmp`, which BenchExec hides."
    )
    phases = jsons.get("phases")
    if phases:
        try:
            with open(phases) as f:
                table = f.read().strip("\n")
        except OSError:
            table = ""
        if table:
            out.append("")
            out.append("### Where `rootcell sandbox -- true` spends its time")
            out.append("")
            out.append(
                "`bench/phases.sh` (`ROOTCELL_PHASES=1`, see bench/README.md) over the same number "
                "of runs: the time from each mark to the next, marks of the runtime, the sandbox's "
                "init (pid 1) and the command (pid 2) interleaved by time. Not counted: the "
                "`execve` of rootcell before `main` and the runtime's exit after the last mark."
            )
            out.append("")
            out.append("```")
            out.append(table)
            out.append("```")
            out.append("")
            out.append(
                "What bwrap's row does not do and `rootcell sandbox` does on every run: a cgroup "
                "per run in each measuring v1 hierarchy (cpuacct, memory, blkio, freezer; made before init, "
                "read after, removed: the `run cgroup` rows), an overlay per host mount point "
                "instead of one recursive read-only bind (the `step: overlay` rows), a staging "
                "tmpfs, a fresh sysfs of its own network namespace, generated `/etc` files, "
                "the result capture walk, and the report. The rows that both pay alike: the "
                "`clone3` into new namespaces (`init spawned`), the fork of the command, the "
                "`execve` of `/bin/true` and its exit (`init: command reaped`), and the wake-ups "
                "between processes on this VM (`command's status received`)."
            )
    out.append("")
    keys = ["date", "kernel", "cpu", "load", "cgroups", "rootcell", "bwrap", "benchexec",
            "fuse-overlayfs", "hyperfine"]
    out.extend(f"- {k}: {meta[k]}" for k in keys if k in meta)
    out.append(f"- runs: {meta.get('runs', '?')}")
    out.append("")

    def short(cmd):
        cmd = shorten(cmd, meta)
        work = meta.get("work", "")
        return cmd.replace(work, "$WORK") if work else cmd

    lines = []
    for name in SANDBOX_GROUPS:
        for row in groups.get(name, []):
            lines.append(f"- {name}, {row['label']}: `{short(row['command'])}`")
    out.extend(
        exact_commands(
            lines,
            "`$WORK` is the working directory of every command (a fresh directory under "
            "`/var/tmp`), `$TMP` the benchmark's temp dir; BenchExec's `containerexec` and "
            "`runexec` are those of the venv made by `scripts/setup`. Result rows empty their "
            "output directory before each run (hyperfine `--prepare`, not timed).",
        )
    )
    print("\n".join(out))


CP_CASES = {
    "small-out": ("{files} × 100 B", "out of the container"),
    "small-in": ("{files} × 100 B", "into the container"),
    "big-out": ("1 × {big} MiB", "out of the container"),
    "big-in": ("1 × {big} MiB", "into the container"),
}


def cp(rows_path, meta_path, *case_jsons):
    """The cp section: one hyperfine run per case (rows: rootcell, podman,
    floor), summarised in one table with the ratios, then the peak RSS."""
    meta = read_meta(meta_path)
    jsons = dict(arg.split("=", 1) for arg in case_jsons)
    all_rows = read_rows(rows_path)
    files = f"{int(meta.get('files', '0')):,}"
    big = meta.get("big", "?")

    def secs(row):
        if row is None:
            return "–"
        if row["result"] is None:
            return (row["status"] if row["status"].startswith("failed") else f"failed: {row['status']}").replace("|", "\\|")
        sd = row["result"].get("stddev")
        return f"{row['result']['mean']:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")

    out = ["## cp (rootcell cp, podman cp, tar|tar)", ""]
    out.append(
        "Wall time of copying a tree out of and into a running container, timed by `bench/cp.sh` "
        "with hyperfine (no shell), one hyperfine run per case with its three commands: "
        "`rootcell cp` (a busybox bundle from `runc spec` running `sleep`), `podman cp` (a podman "
        "container running `sleep` with `--rootfs` on the same rootfs directory, runc as its "
        "runtime, vfs storage of the benchmark's own) and the floor `tar -C SRC -cf - NAME | "
        f"tar -C DST -xf -` on the host. Data: {files} files of 100 B in 100 directories, and one "
        f"file of {big} MiB of random bytes. Out: from the container's `/data` to a host "
        "directory; in: from a host copy of the same data to the container's `/in`. "
        f"Filesystem of the data and destinations: {meta.get('fs', '?')}. Each "
        "destination is removed before each run and `sync` run (hyperfine `--prepare`, not "
        "timed), so no run waits for the previous one's writeback. Ratios are mean / mean in "
        "the same hyperfine run; < 1 is faster."
    )
    out.append("")
    out.append("| case | rootcell cp (s) | podman cp (s) | tar \\| tar (s) | rootcell / floor | rootcell / podman |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for case, (what, way) in CP_CASES.items():
        rows = [r for r in all_rows if r["group"] == case]
        if not rows:
            continue
        attach_results(rows, jsons.get(case))
        by = {r["runtime"]: r for r in rows}
        rc, pod, floor = by.get("rootcell"), by.get("podman"), by.get("floor")
        label = f"{what.format(files=files, big=big)}, {way}"
        out.append(
            f"| {label} | {secs(rc)} | {secs(pod)} | {secs(floor)} "
            f"| {ratio(rc, floor) if rc and floor else '–'} | {ratio(rc, pod) if rc and pod else '–'} |"
        )
    out.append("")
    rss = [(k[len("rss "):], v) for k, v in meta.items() if k.startswith("rss ")]
    if rss:
        cells = ", ".join(
            f"{name} {int(v) / 1024:.1f} MiB" if v.isdigit() else f"{name} {v}" for name, v in rss
        )
        out.append(
            f"Peak RSS (`/usr/bin/time -f %M`) of copying the {big} MiB file: {cells}. "
            "rootcell streams the tar archive through a pipe between its two threads with "
            "fixed-size buffers, so its memory does not grow with the data."
        )
        out.append("")
    keys = ["date", "kernel", "cpu", "load", "fs", "rootcell", "podman", "tar", "hyperfine"]
    out.extend(f"- {k}: {meta[k]}" for k in keys if k in meta)
    out.append(f"- runs: {meta.get('runs', '?')}")
    out.append("")
    lines = []
    for case in CP_CASES:
        for row in (r for r in all_rows if r["group"] == case):
            cmd = row["command"]
            if meta.get("podman args"):
                cmd = cmd.replace(meta["podman args"], "…")
            lines.append(f"- {case}, {row['label']}: `{shorten(cmd, meta)}`")
    out.extend(
        exact_commands(
            lines,
            "`$TMP` is the benchmark's temp dir: `$TMP/w/B` the bundle (its rootfs is also the "
            "podman container's), `$TMP/w/host` the host copy of the data, `$TMP/w/out` the "
            "destinations of the copies out (`$TMP/w` is a tmpfs with `CP_FS=tmpfs`); `podman …` stands for `podman --root $TMP/podman/storage "
            "--runroot $TMP/podman/run --storage-driver vfs --cgroup-manager cgroupfs --tmpdir "
            "$TMP/podman/tmp` with `CONTAINERS_CONF=$TMP/podman/containers.conf`.",
        )
    )
    print("\n".join(out))


def batch(out_json, label, n, template):
    """Starts n commands at once (each one TEMPLATE with {id} replaced by
    its own container id, split like a shell would), reaps them as they
    end and appends {label, n, start_spread, total, each: [seconds],
    codes: [exit codes], ids} to the JSON list in out_json.

    "At once": the driver forks the n children first; each blocks reading
    a pipe, and closing the pipe's write end releases them all together,
    so the time the driver needs to fork (start_spread, not timed) does
    not stretch a batch. Each child then closes every other fd and execs
    its command, stdin and stdout /dev/null, stderr a temporary file (the
    first failing one's is kept)."""
    import shlex
    import tempfile
    import time

    n = int(n)
    ids = [template_id(label, n, i) for i in range(n)]
    argvs = [shlex.split(template.replace("{id}", cid)) for cid in ids]
    errs = [tempfile.TemporaryFile() for _ in range(n)]
    gate_r, gate_w = os.pipe()
    procs = {}
    t_fork = time.monotonic()
    for i, argv in enumerate(argvs):
        pid = os.fork()
        if pid == 0:
            try:
                os.close(gate_w)
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(errs[i].fileno(), 2)
                os.read(gate_r, 1)  # EOF once the driver closes gate_w
                os.closerange(3, 1 << 16)
                os.execvp(argv[0], argv)
            except BaseException:
                pass
            os._exit(127)
        procs[pid] = i
    os.close(gate_r)
    spread = time.monotonic() - t_fork
    t0 = time.monotonic()
    os.close(gate_w)
    ends, codes = [0.0] * n, [None] * n
    left = n
    while left:
        pid, status = os.wait()
        if pid not in procs:
            continue
        i = procs[pid]
        ends[i] = time.monotonic()
        codes[i] = os.waitstatus_to_exitcode(status)
        left -= 1
    total = max(ends) - t0
    stderr = ""
    for i, c in enumerate(codes):
        if c != 0:
            errs[i].seek(0)
            stderr = f"{ids[i]} exited {c}: " + errs[i].read().decode(errors="replace")[-2000:]
            break
    for f in errs:
        f.close()
    try:
        data = load_json(out_json)
    except FileNotFoundError:
        data = []
    data.append(dict(label=label, n=n, start_spread=spread, total=total,
                     each=[e - t0 for e in ends], codes=codes, ids=ids, stderr=stderr))
    save_json(out_json, data)
    bad = sum(1 for c in codes if c != 0)
    print(f"{label}, {n} at once: {total * 1e3:.0f} ms total, {bad} failed", file=sys.stderr)
    if stderr:
        print("  " + stderr.strip().replace("\n", "\n  "), file=sys.stderr)
    sys.exit(1 if bad else 0)


def template_id(label, n, i):
    """A container id unique to this bench run: BENCH_ID_PREFIX (set by
    parallel.sh), the driver's pid (one driver per batch), N and the index."""
    prefix = os.environ.get("BENCH_ID_PREFIX", "par")
    return f"{prefix}-{os.getpid()}-{n}-{i}"


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    import math

    v = sorted(values)
    k = max(1, math.ceil(q / 100 * len(v)))
    return v[k - 1]


def parallel(rows_path, batch_json, meta_path):
    import statistics

    rows = read_rows(rows_path)
    meta = read_meta(meta_path)
    try:
        batches = load_json(batch_json)
    except (FileNotFoundError, json.JSONDecodeError):
        batches = []
    counts = sorted({r["n"] for r in rows})

    def stats(label, n):
        bs = [b for b in batches if b["label"] == label and b["n"] == n]
        if not bs:
            return None
        bad = sum(1 for b in bs for c in b["codes"] if c != 0)
        totals = [b["total"] for b in bs]
        each = [e for b in bs for e in b["each"]]
        mean = statistics.mean(totals)
        return dict(
            runs=len(bs),
            failed=bad,
            containers=sum(b["n"] for b in bs),
            mean=mean,
            sd=statistics.stdev(totals) if len(totals) > 1 else 0.0,
            p50=percentile(each, 50),
            p99=percentile(each, 99),
            tput=n / mean,
            spread=statistics.mean(b["start_spread"] for b in bs),
        )

    labels = []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])
    rc_label = next((r["label"] for r in rows if r["runtime"] == "rootcell" and r["group"] == "cgroup2"), None)
    out = ["## Parallel load (1, 10, 50 containers at once)", ""]
    out.append(
        "N containers started at once, each `<runtime> --root $TMP/state-… run --bundle B <own id>` of a "
        f"busybox bundle whose process is `{meta.get('work', 'sleep 0.1')}` (config from `runc spec`), all N "
        "sharing one state root, timed by `bench/parallel.sh` (a Python driver forks N children that wait on one "
        "pipe, releases them together by closing it, each execs its command; it reaps each as it ends, checks "
        "every exit code, then that no state directory and no cgroup is left). *Total* is from the release to "
        "the last end of a batch (mean ± σ over the runs); "
        "p50/p99 are over the wall time (release to end) of every container of every run of that size; throughput is "
        "N / mean total. *vs rootcell* is the total over rootcell's in the same row set and size; "
        "*scaling* is the throughput over that row's throughput at the previous size (≥ 1: no collapse)."
    )
    out.append("")
    out.append("| runtime | N | total (ms) | p50 (ms) | p99 (ms) | containers/s | vs rootcell | scaling |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    notes = []
    for label in labels:
        row = next(r for r in rows if r["label"] == label)
        prev = None
        for n in counts:
            if not any(r["label"] == label and r["n"] == n for r in rows):
                continue
            if row["status"] != "ok":
                out.append(f"| {label} | {n} | failed: {row['status']} | | | | | |")
                continue
            s = stats(label, n)
            if s is None:
                out.append(f"| {label} | {n} | not measured | | | | | |")
                continue
            if s["failed"]:
                notes.append(f"- {label}, {n} at once: {s['failed']} of {s['containers']} containers exited non-zero")
            ref = stats(rc_label, n) if row["group"] == "cgroup2" and rc_label else None
            failed = f" ({s['failed']} of {s['containers']} failed)" if s["failed"] else ""
            vs = f"{s['mean'] / ref['mean']:.2f}×" if ref else "–"
            sc = f"{s['tput'] / prev['tput']:.2f}" if prev else "–"
            out.append(
                f"| {label} | {n} | {ms(s['mean']):.0f} ± {ms(s['sd']):.0f}{failed} | {ms(s['p50']):.0f} "
                f"| {ms(s['p99']):.0f} | {s['tput']:.1f} | {vs} | {sc} |"
            )
            prev = s
    notes.extend(f"- {line.split(':', 1)[1].strip()}" for line in read_lines(meta_path) if line.startswith("leak:"))
    if notes:
        out.append("")
        out.extend(notes)
    out.append("")
    out.append(
        "Row sets: *cgroup2 ns* runs every runtime (rootcell, runc, crun alike) in a mount namespace with a "
        f"fresh cgroup2 on `/sys/fs/cgroup`, {CGROUP2_NS_TEXT}, "
        "with a config without `linux.resources` and without the `/sys/fs/cgroup` mount (crun 1.8 refuses "
        f"this machine's layout, {meta.get('cgroups', '?')}); *host* runs rootcell and runc as they are, with "
        "the config as `runc spec` makes it. The plain rootcell rows run the installed binary (immutable: no "
        "re-exec); the *build tree* row runs the writable `target/release/rootcell`, which re-executes itself "
        "to keep its binary out of a container's reach (CVE-2019-5736, docs/SECURITY.md class 14). The driver's forks before the release are not timed "
        f"(about {meta.get('spread', '?')} ms for the largest batch). The machine has {meta.get('cpu', '?')}: "
        "with sleeping containers the total measures how much setup and teardown work overlaps."
    )
    out.append("")
    out.extend(meta_lines(meta, meta.get("runs", "?")))
    out.append("")
    out.extend(
        exact_commands(
            [f"- {row['label']}: `{shorten(row['command'], meta)}`" for row in rows if row["n"] == counts[0]],
            "`{id}` is a fresh id per container (`par<script pid>-<driver pid>-<N>-<index>`).",
        )
    )
    print("\n".join(out))


def poll_hwm(command):
    """Runs COMMAND (no shell; the process that ends up exec'ing the runtime
    keeps its pid) and polls /proc/PID/status every 2 ms; prints the last
    VmHWM read in KiB (VmHWM only grows), then the RssFile read with it
    (the file-backed part: the binary's and libraries' pages, shared with
    the page cache). Fails if the command does."""
    import shlex
    import subprocess
    import time

    proc = subprocess.Popen(shlex.split(command), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = None
    path = f"/proc/{proc.pid}/status"
    while proc.poll() is None:
        try:
            with open(path) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            last = (int(fields["VmHWM"].split()[0]), int(fields["RssFile"].split()[0]))
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.002)
    if proc.returncode != 0 or last is None:
        sys.exit(f"poll-hwm: exit {proc.returncode}, VmHWM {last}")
    print(f"{last[0]}\t{last[1]}")


def median(values):
    v = sorted(values)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def mib(kib):
    return "–" if kib is None else f"{kib / 1024:.1f}"


def read_tsv(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def symbol_crate(name):
    """The crate a demangled symbol belongs to, cargo-bloat style: the first
    path segment (of the type for `<T as Trait>::f`); C symbols are
    libseccomp's (by its prefixes) or the C runtime's."""
    n = name
    while n.startswith("<") or n.startswith("&") or n.startswith("*") or n.startswith("("):
        n = n.lstrip("<&*( ")
        for p in ("mut ", "const ", "dyn "):
            if n.startswith(p):
                n = n[len(p):]
    if "::" in n:
        head = n.split("::", 1)[0]
        if " as " in head:
            # `<Type as crate::Trait>` with a type named without its path
            # (or a generic `T`): the trait's crate.
            head = head.rsplit(" as ", 1)[1].lstrip("<&*( ")
        if head in ("core", "alloc", "std", "std_detect", "panic_unwind", "compiler_builtins",
                    "hashbrown", "gimli", "addr2line", "miniz_oxide", "rustc_demangle", "object",
                    "adler2"):
            return "std (core, alloc, backtrace)"
        return head
    seccomp = ("seccomp_", "sys_chk_", "sys_set_", "sys_notify", "sys_filter", "sys_reset",
               "gen_bpf", "gen_pfc", "_gen_", "db_", "_db_", "arch_", "_bpf_", "_blk_", "_hsh_",
               "_program_", "_pfc_", "syscall_resolve", "syscall_iterate")
    arch = ("x86", "x32", "aarch64", "arm", "mips", "ppc", "s390", "riscv", "parisc", "sh_", "loongarch", "m68k")
    if name.startswith(seccomp) or (name.startswith(arch) and "syscall" in name):
        return "libseccomp (C)"
    return "C runtime (libc, libgcc)"


def rss(rows_path, meta_path, time_tsv, hwm_tsv, self_tsv, bin_dir):
    rows = read_rows(rows_path)
    meta = read_meta(meta_path)
    times, hwms, selves = {}, {}, {}
    for label, _run, kib in read_tsv(time_tsv):
        if kib.isdigit():
            times.setdefault(label, []).append(int(kib))
    files = {}
    for label, _run, kib, file_kib in read_tsv(hwm_tsv):
        if kib.isdigit():
            hwms.setdefault(label, []).append(int(kib))
        if file_kib.isdigit():
            files.setdefault(label, []).append(int(file_kib))
    for label, _run, _pid, kib, who in read_tsv(self_tsv):
        if kib.isdigit():
            selves.setdefault(label, {}).setdefault(who, []).append(int(kib))
    crun = next((r for r in rows if r["runtime"] == "crun"), None)
    crun_time = median(times.get(crun["label"], [])) if crun else None
    crun_hwm = median(hwms.get(crun["label"], [])) if crun else None

    def vs(v, ref):
        return "–" if v is None or not ref else f"{v / ref:.2f}×"

    out = ["## Memory (peak RSS of `run`) and binary size", ""]
    out.append(
        "Peak resident set size of `<runtime> --root $TMP/state run --bundle B bench` (busybox bundle, "
        "config from `runc spec`), measured by `bench/rss.sh`, medians over the runs: "
        "`/usr/bin/time -f %M` around the runtime (container `/bin/true`; the largest peak of the "
        "runtime and of every process it reaped — stage 1, init, the container's process — since "
        "the kernel folds a reaped child's peak into its parent's), and `VmHWM` of the waiting "
        "runtime (`/proc/PID/status` of the runtime process polled every 2 ms while its container "
        "runs `sleep 0.2`; the last value read), with the file-backed part of its resident set "
        "read at the same time (`RssFile`: pages of the binary and its shared libraries, shared "
        "with the page cache and every other process mapping them). MiB; ratios are to crun's; "
        "> 1 is more memory."
    )
    out.append("")
    out.append(
        "| command | `time %M` (MiB) | max (MiB) | vs crun | waiting runtime VmHWM (MiB) | vs crun "
        "| of which file-backed (MiB) |"
    )
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        t, h = times.get(row["label"], []), hwms.get(row["label"], [])
        if row["status"] != "ok" or not t:
            out.append(f"| {row['label']} | failed: {row['status']} | | | | | |".replace("failed: ok", "no result"))
            continue
        mt, mh = median(t), median(h)
        out.append(
            f"| {row['label']} | {mib(mt)} | {mib(max(t))} | {vs(mt, crun_time)} "
            f"| {mib(mh)} | {vs(mh, crun_hwm)} | {mib(median(files.get(row['label'], [])))} |"
        )
    out.append("")
    order = ["runtime before re-exec", "stage 1", "before execve", "runtime"]
    names = {
        "runtime before re-exec": "runtime, before its re-exec from a protected copy",
        "stage 1": "stage 1, before it exits",
        "before execve": "init, just before `execve`",
        "runtime": "runtime (after the re-exec), at exit",
    }
    labels = [r["label"] for r in rows if r["label"] in selves]
    if labels:
        out.append(
            "Each rootcell process's own peak (`ROOTCELL_RSS=1`, bench/README.md; `VmHWM` of "
            "`/proc/self/status` for the runtime, `getrusage` for the forked processes, which "
            "have not exec'd since their fork), MiB, medians:"
        )
        out.append("")
        out.append("| process | " + " | ".join(labels) + " |")
        out.append("| --- |" + " ---: |" * len(labels))
        for who in order + sorted({w for l in labels for w in selves[l]} - set(order)):
            if not any(who in selves[l] for l in labels):
                continue
            cells = [mib(median(selves[l].get(who, []))) for l in labels]
            out.append(f"| {names.get(who, who)} | " + " | ".join(cells) + " |")
        out.append("")

    # The binary.
    facts = read_meta(os.path.join(bin_dir, "facts"))
    sections = {}
    with open(os.path.join(bin_dir, "sections")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
                sections[parts[0]] = int(parts[1])
    file_size = int(facts.get("file", "0") or 0)
    out.append(
        f"The binary (`{meta.get('binary', '?')}`, {facts.get('linkage', '?')}"
        + (f", loads {facts['libs'].strip()}" if facts.get("libs", "").strip() else "")
        + f"): {file_size / 2**20:.1f} MiB on disk. Its largest ELF sections (`size -A`), KiB:"
    )
    out.append("")
    top = sorted(sections.items(), key=lambda kv: -kv[1])[:8]
    out.append("| " + " | ".join(f"`{k}`" for k, _ in top) + " |")
    out.append("|" + " ---: |" * len(top))
    out.append("| " + " | ".join(f"{v / 1024:.0f}" for _, v in top) + " |")
    out.append("")
    crates, funcs = {}, []
    with open(os.path.join(bin_dir, "symbols")) as f:
        for line in f:
            # `nm --size-sort`: size, type, name.
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) < 3 or parts[1] not in ("t", "T", "w", "W"):
                continue
            size, name = int(parts[0], 16), parts[2]
            crate = symbol_crate(name)
            crates[crate] = crates.get(crate, 0) + size
            funcs.append((size, name, crate))
    text = sections.get(".text", 0)
    if crates:
        out.append(
            "What makes up `.text`: function symbols grouped by crate (`nm --size-sort -C`, the "
            "first path segment of each name, as `cargo bloat --crates` does; generic code "
            "instantiated for another crate counts for the crate that defines it, so `std` "
            "includes rootcell's own collections and formatting; the CLI's symbols are named "
            "`rootcell::` like the library's):"
        )
        out.append("")
        out.append("| crate | KiB | share of `.text` |")
        out.append("| --- | ---: | ---: |")
        for crate, size in sorted(crates.items(), key=lambda kv: -kv[1])[:14]:
            share = f"{size / text * 100:.1f} %" if text else "–"
            out.append(f"| {crate} | {size / 1024:.0f} | {share} |")
        out.append("")
        out.append("Largest functions:")
        out.append("")
        out.append("| KiB | crate | function |")
        out.append("| ---: | --- | --- |")
        for size, name, crate in sorted(funcs, key=lambda x: -x[0])[:10]:
            short = name if len(name) <= 110 else name[:107] + "…"
            out.append(f"| {size / 1024:.1f} | {crate} | `{short.replace('|', '/')}` |")
        out.append("")
    hot = facts.get("hot", "").split()
    if len(hot) == 3:
        listed, found, size = (int(x) for x in hot)
        out.append(
            f"Of the {listed} functions `crates/rootcell-cli/hot-symbols.txt` lists (those a "
            f"container's start runs, placed first and together by the linker so that the kernel's "
            f"64 KiB fault-around maps few cold neighbours), {found} are in this binary, "
            f"{size / 1024:.0f} KiB of `.text`"
            + (" (far fewer than listed: the list is stale, `scripts/hot-symbols` remakes it)."
               if found < 0.8 * listed else ".")
        )
        out.append("")
    refs = []
    for rt in ("runc", "crun"):
        if rt in facts:
            own, libs = (int(x) for x in facts[rt].split())
            refs.append(f"{rt} {own / 2**20:.1f} MiB" + (f" + {libs / 2**20:.1f} MiB of shared libraries" if libs else ""))
    if refs:
        out.append("For comparison, on disk: " + "; ".join(refs) + ".")
        out.append("")
    out.extend(meta_lines(meta, meta.get("runs", "?")))
    out.append("")
    out.extend(
        exact_commands(
            [f"- {row['label']}: `{shorten(row['command'], meta)}`" for row in rows],
            "The `time %M` commands; the VmHWM runs are the same without `/usr/bin/time` and with "
            "bundles whose process is `sleep 0.2`, the `ROOTCELL_RSS=1` runs the same without it.",
        )
    )
    print("\n".join(out))


def cri(single_json, parallel_json, meta_path):
    """Pod start through CRI (bench/cri.sh): `rootcell-cri-node start-pods
    --json` results, one file for one pod at a time and one for N at once."""
    import statistics

    meta = read_meta(meta_path)

    def load(path):
        try:
            return load_json(path)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    single, par = load(single_json), load(parallel_json)
    out = ["## Pods through CRI (containerd 1.6)", ""]
    out.append(
        "`bench/cri.sh` starts one private CRI node (`crates/rootcell-cri-node`, the one `tests/e2e_cri.rs` uses: "
        "containerd 1.6 with its CRI plugin in mount, network and pid namespaces of its own, CNI bridge + host-local + "
        "portmap, cgroupfs driver, images from a registry on the node's loopback) with a `runc` handler "
        "(`/usr/sbin/runc`) and a `rootcell` handler (the installed binary), both `io.containerd.runc.v2`. "
        "*Pod start* is one pod's `RunPodSandbox` (CNI included) + `CreateContainer` + `StartContainer` of "
        "`echo ready`, until that line is in the container's CRI log, timed by the client "
        "(`rootcell-cri-node start-pods`); removing the pod is not timed. Rounds alternate the handlers "
        "(runc, rootcell, runc, …) on the same node. *N at once* starts N such pods concurrently (one client "
        "task each) and times the whole batch."
    )
    out.append("")
    out.append("| handler | what | rounds | median (ms) | mean (ms) | min (ms) | max (ms) | vs runc (median) |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")

    def rows(result, key, what):
        if result is None:
            out.append(f"| – | {what} | not measured | | | | | |")
            return
        base = result["handlers"].get("runc", {}).get(key) or []
        for handler, r in sorted(result["handlers"].items(), key=lambda hr: (hr[0] != "runc", hr[0])):
            v = r.get(key) or []
            if not v:
                out.append(f"| {handler} | {what} | failed | | | | | |")
                continue
            med = statistics.median(v)
            vs = f"{med / statistics.median(base):.2f}×" if base else "–"
            out.append(
                f"| {handler} | {what} | {len(v)} | {med:.1f} | {statistics.mean(v):.1f} | {min(v):.1f} "
                f"| {max(v):.1f} | {vs} |"
            )

    rows(single, "pods_ms", "pod start, one at a time")
    if par is not None:
        rows(par, "totals_ms", f"{par['count']} pods at once, total")
        rows(par, "pods_ms", f"{par['count']} pods at once, each pod")
    out.append("")
    out.extend(meta_lines(meta, meta.get("runs", "?")))
    if meta.get("containerd"):
        out.append(f"- containerd: {meta['containerd']}")
    print("\n".join(out))


def interleave(out_json, warmup, runs, *args):
    """Times commands the way hyperfine -N does (split like a shell, fork and
    exec, stdin, stdout and stderr on /dev/null), but in rounds: one run of
    each command in turn, WARMUP untimed rounds and then RUNS timed ones.
    This VM's speed drifts over seconds (other guests); run one after the
    other, as hyperfine runs its commands, the rows of one table could be
    measured at different speeds. Writes hyperfine's JSON layout (what
    attach_results reads).

    A command `nsenter --mount=NS CMD…` (lib.sh cgroup2_wrapper) is timed
    without nsenter: this process enters NS itself before the run, outside
    the timing, and returns to its own mount namespace after it. nsenter is
    a dynamically linked glibc program: its start-up alone costs about
    1.3 ms here, which no runtime should be charged."""
    import ctypes
    import shlex
    import time

    libc = ctypes.CDLL(None, use_errno=True)
    clone_newns = 0x00020000

    def enter(fd):
        if libc.setns(fd, clone_newns) != 0:
            err = ctypes.get_errno()
            sys.exit(f"interleave: setns: {os.strerror(err)}")

    cmds = []
    namespaces = {}
    it = iter(args)
    for flag in it:
        if flag != "-n":
            sys.exit("interleave: expected -n LABEL COMMAND, got " + flag)
        label, command = next(it), next(it)
        argv = shlex.split(command)
        ns = None
        if len(argv) > 2 and argv[0] == "nsenter" and argv[1].startswith("--mount="):
            path = argv[1][len("--mount=") :]
            if path not in namespaces:
                namespaces[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            ns, argv = namespaces[path], argv[2:]
        cmds.append((label, argv, ns))
    own_ns = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    cwd = os.getcwd()
    null = os.open(os.devnull, os.O_RDWR)
    spawn_io = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]

    def once(argv, ns):
        if ns is not None:
            enter(ns)
        start = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=spawn_io)
        _, status = os.waitpid(pid, 0)
        took = time.perf_counter() - start
        if ns is not None:
            # setns sets the root and the working directory to the
            # namespace's: both back as they were.
            enter(own_ns)
            os.chdir(cwd)
        return took, os.waitstatus_to_exitcode(status)

    for _ in range(int(warmup)):
        for _, argv, ns in cmds:
            once(argv, ns)
    times = {label: [] for label, _, _ in cmds}
    codes = {label: [] for label, _, _ in cmds}
    for _ in range(int(runs)):
        for label, argv, ns in cmds:
            took, code = once(argv, ns)
            times[label].append(took)
            codes[label].append(code)
    results = []
    for label, _, _ in cmds:
        t = times[label]
        mean = sum(t) / len(t)
        sd = (sum((x - mean) ** 2 for x in t) / (len(t) - 1)) ** 0.5 if len(t) > 1 else 0.0
        results.append(
            {
                "command": label,
                "mean": mean,
                "stddev": sd,
                "median": median(t),
                "min": min(t),
                "max": max(t),
                "times": t,
                "exit_codes": codes[label],
            }
        )
    save_json(out_json, {"results": results})


def section(doc, content_file):
    with open(content_file) as f:
        content = f.read().strip("\n") + "\n"
    heading = content.splitlines()[0].strip()
    try:
        with open(doc) as f:
            lines = f.read().splitlines(keepends=True)
    except FileNotFoundError:
        lines = DOC_INTRO.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.strip() == heading), None)
    if start is None:
        text = "".join(lines).rstrip("\n") + "\n\n" + content
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        before = "".join(lines[:start])
        after = "".join(lines[end:])
        text = before + content + ("\n" + after if after else "")
    os.makedirs(os.path.dirname(os.path.abspath(doc)), exist_ok=True)
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "strip-cgroups":
        strip_cgroups(*args)
    elif cmd == "add-mounts":
        add_mounts(args[0], int(args[1]), args[2], json.loads(args[3]))
    elif cmd == "lifecycle":
        lifecycle(*args)
    elif cmd == "mounts":
        mounts(*args)
    elif cmd == "engines":
        engines(*args)
    elif cmd == "sandbox":
        sandbox(*args)
    elif cmd == "chroot":
        chroot(*args)
    elif cmd == "cp":
        cp(*args)
    elif cmd == "batch":
        batch(*args)
    elif cmd == "parallel":
        parallel(*args)
    elif cmd == "rss":
        rss(*args)
    elif cmd == "poll-hwm":
        poll_hwm(*args)
    elif cmd == "phases":
        phases(*args)
    elif cmd == "steps":
        steps(*args)
    elif cmd == "cgroup-dirs":
        cgroup_dirs(*args)
    elif cmd == "cri":
        cri(*args)
    elif cmd == "section":
        section(*args)
    elif cmd == "interleave":
        interleave(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

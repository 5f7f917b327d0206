#!/usr/bin/env bash
# The GPU check (python -m repro.bench --gpu) on a machine that has torch but not the
# project's other packages, and no network: the lent GPU machine.
#
#   tools/gpu_check.sh prepare [--python-version X.Y]   # here, with the package index
#   tools/gpu_check.sh run [--device auto|cpu|cuda] [--budget-s S]   # there
#
# prepare: fetches the wheels listed in tools/gpu_check_wheels.txt (versions from
#   .ci/constraints.txt) for Python X.Y (default 3.12, the lent machine's) on x86-64 Linux
#   into .whl/ (git-ignored), and prints the device-side command.
# run: installs .whl/ with pip --no-index --target into a temporary folder, puts it and the
#   working tree on PYTHONPATH, and runs the check: no network, git or `pip install -e .`.
#   Writes $OUT/bench_gpu.json and $OUT/bench_gpu.log ($OUT: the device tool's output
#   folder; results/ when unset). The check stops its steps at --budget-s (default 300) and
#   is killed 60 s later whatever it is doing; the JSON is rewritten after every step.
# PYTHON: the interpreter (default python3). GPU_CHECK_WHL: the wheel folder (default .whl).
# Exit status: 0 check passed; 1 a step failed (see the JSON); 2 bad usage or missing .whl/;
#   3 prepare could not reach the package index.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WHEELS_LIST="$ROOT/tools/gpu_check_wheels.txt"
CONSTRAINTS="$ROOT/.ci/constraints.txt"
WHL="${GPU_CHECK_WHL:-$ROOT/.whl}"  # another folder: tests (a checkout's .whl/ is left alone)
PY="${PYTHON:-python3}"

die() { echo "gpu_check: $1" >&2; exit "${2:-2}"; }
norm() { echo "$1" | tr '[:upper:]' '[:lower:]' | sed -E 's/[-_.]+/-/g'; }

pin() {  # the exact version of package $1 in .ci/constraints.txt
    local want line name
    want="$(norm "$1")"
    while IFS= read -r line; do
        [[ "$line" == *"=="* ]] || continue
        name="${line%%==*}"
        if [ "$(norm "$name")" = "$want" ]; then echo "${line#*==}"; return 0; fi
    done < "$CONSTRAINTS"
    die "$1 (tools/gpu_check_wheels.txt) has no pin in .ci/constraints.txt; add one"
}

prepare() {
    local pyver="3.12"
    while [ $# -gt 0 ]; do
        case "$1" in
            --python-version) [ $# -ge 2 ] || die "--python-version needs a value, e.g. 3.12"
                              pyver="$2"; shift 2 ;;
            *) die "prepare: unknown argument '$1' (usage: prepare [--python-version X.Y])" ;;
        esac
    done
    [[ "$pyver" =~ ^3\.[0-9]+$ ]] || die "--python-version must look like 3.12, got '$pyver'"
    local compiled=() pure=() name flag
    while read -r name flag; do
        case "$name" in ''|'#'*) continue ;; esac
        if [ "$flag" = "pure" ]; then pure+=("$name==$(pin "$name")")
        else compiled+=("$name==$(pin "$name")"); fi
    done < "$WHEELS_LIST"
    local tmp="$WHL.partial"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    local common=(--no-deps --only-binary=:all: --python-version "$pyver" -d "$tmp" -q
                  --disable-pip-version-check)
    # x86-64 manylinux: the lent machine's processor, whatever this one's is
    if ! "$PY" -m pip download "${common[@]}" --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 "${compiled[@]}" >&2 \
       || { [ ${#pure[@]} -eq 0 ] || ! "$PY" -m pip download "${common[@]}" \
            --implementation py --platform any "${pure[@]}" >&2; }; then
        rm -rf "$tmp"
        die "pip download failed: is the package index reachable from here? (prepare needs it; run needs no network)" 3
    fi
    rm -rf "$WHL"
    mv "$tmp" "$WHL"
    local n bytes
    n=$(find "$WHL" -type f -name '*.whl' | wc -l)
    bytes=$(du -cb "$WHL"/*.whl | tail -1 | cut -f1)
    echo "gpu_check: $n wheels for Python $pyver in .whl/ ($bytes bytes)"
    echo "gpu_check: on the lent GPU machine (the device tool's run), in the repository root:"
    echo "    command: bash tools/gpu_check.sh run"
    echo "    carry: [\".whl\"]    timeout_s: 420"
    echo "  elsewhere: copy the working tree and .whl/ there, then: OUT=<folder> bash tools/gpu_check.sh run"
}

run() {
    local device="auto" budget="300"
    while [ $# -gt 0 ]; do
        case "$1" in
            --device) [ $# -ge 2 ] || die "--device needs auto, cpu or cuda"; device="$2"; shift 2 ;;
            --budget-s) [ $# -ge 2 ] || die "--budget-s needs seconds"; budget="$2"; shift 2 ;;
            *) die "run: unknown argument '$1' (usage: run [--device auto|cpu|cuda] [--budget-s S])" ;;
        esac
    done
    [[ "$budget" =~ ^[0-9]+$ ]] || die "--budget-s must be whole seconds, got '$budget'"
    compgen -G "$WHL/*.whl" >/dev/null \
        || die "no wheels in .whl/: run 'tools/gpu_check.sh prepare' on a machine with the package index first, and carry .whl"
    local out="${OUT:-$ROOT/results}"
    mkdir -p "$out"
    SITE="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"  # global: the EXIT trap reads it
    trap 'rm -rf "$SITE"' EXIT
    local site="$SITE"
    local pyver
    pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --disable-pip-version-check --target "$site/lib" "$WHL"/*.whl \
        || die "installing .whl/ failed: prepared for another Python? This one is $pyver: run 'tools/gpu_check.sh prepare --python-version $pyver'"
    # DVC without git or pygit2: every repository it opens is treated as having no SCM
    mkdir -p "$site/dvc_global"
    printf '[core]\n    no_scm = true\n    analytics = false\n' > "$site/dvc_global/config"
    export DVC_GLOBAL_CONFIG_DIR="$site/dvc_global" DVC_NO_ANALYTICS=1 PYTHONUNBUFFERED=1
    export REPRO_PROGRESS="${REPRO_PROGRESS:-0}"  # the log: one line per step, no bars
    export PYTHONPATH="$ROOT:$site/lib${PYTHONPATH:+:$PYTHONPATH}"
    cd "$ROOT"
    set +e
    set -o pipefail
    timeout -k 10 $((budget + 60)) "$PY" -m repro.bench --gpu --device "$device" \
        --budget-s "$budget" --out "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.log"
    local rc=$?
    set -e
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "gpu_check: killed at the hard limit ($((budget + 60)) s); $out/bench_gpu.json holds the steps that finished" >&2
        return 1
    fi
    [ "$rc" -eq 0 ] || return 1
    echo "gpu_check: wrote $out/bench_gpu.json and $out/bench_gpu.log"
}

[ $# -ge 1 ] || die "usage: tools/gpu_check.sh prepare [--python-version X.Y] | run [--device D] [--budget-s S]"
verb="$1"; shift
case "$verb" in
    prepare) prepare "$@" ;;
    run) run "$@" ;;
    *) die "unknown verb '$verb': use prepare or run" ;;
esac

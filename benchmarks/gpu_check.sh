#!/usr/bin/env bash
# The one device check of the scale issue: CPU and GPU must give the same verdicts, and the GPU path's
# figures go beside the CPU ones. Run from the repository root on the GPU machine:
#
#   bash benchmarks/gpu_check.sh                         # about 5 minutes on one H100, 16 cores
#   GPU_CHECK_QUICK=1 PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh   # smoke run, tiny models
#
# Steps, by value, each under its own timeout (a failed or timed-out step is reported and the next
# one runs): machine facts; tests/test_device_parity.py (CPU and CUDA audits of the same tiny
# models); the 2 GB scale models with 1 and 10 references on cuda, then the same files on cpu
# (benchmarks/device_compare.py); the 70B-width slice the same way with what is left of the budget.
# Without a GPU "cpu" stands in for "cuda". Everything printed is also in $OUT (./gpu_out where OUT
# is unset): gpu_check.log (all of it), parity_pytest.log, scale_2gb.log, slice.log, the two
# device_compare-*.json summaries and bench_logs.tgz (each child's log and report.json).
#
# GPU_CHECK_BUDGET: seconds for all steps (default 330); GPU_CHECK_WORKDIR (default /tmp/gpu-check).
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-330}
WORK=${GPU_CHECK_WORKDIR:-/tmp/gpu-check}
QUICK=${GPU_CHECK_QUICK:-0}
START=$SECONDS

# step NAME CAP LOGFILE COMMAND...: run under timeout min(CAP, budget left), output also to $OUT/LOGFILE
step() {
    local name=$1 cap=$2 log=$3 left rc t0
    shift 3
    left=$((BUDGET - (SECONDS - START)))
    ((cap > left)) && cap=$left
    echo
    if ((cap < 20)); then
        echo "######## $name: SKIPPED, ${left}s of the ${BUDGET}s budget left"
        return 0
    fi
    echo "######## $name (timeout ${cap}s; $((SECONDS - START))s into the run) ########"
    t0=$SECONDS
    timeout -k 15 "$cap" "$@" 2>&1 | tee "$OUT/$log"
    rc=${PIPESTATUS[0]}
    echo "######## $name: rc=$rc in $((SECONDS - t0))s$( ((rc == 124 || rc == 137)) && echo ' (TIMED OUT)')"
}

facts() {
    echo "date: $(date -u +%FT%TZ); host: $(uname -srm); repo: $PWD"
    git log -1 --format='commit %H %s' 2>/dev/null || echo "commit: (no git here)"
    nvidia-smi -L 2>&1 || echo "nvidia-smi: not available"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null
    echo "nproc: $(nproc); $(free -g | awk '/Mem:/ {print "RAM " $2 " GiB, available " $7 " GiB"}')"
    df -h "$(dirname "$WORK")" | tail -1
    "$PY" - <<'EOF'
import importlib.metadata as md, platform, torch
print(f"python {platform.python_version()} ({__import__('sys').executable}); torch {torch.__version__}; "
      f"cuda available: {torch.cuda.is_available()}; threads {torch.get_num_threads()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs; "
          f"float32 matmul precision {torch.get_float32_matmul_precision()!r}, "
          f"allow_tf32 matmul {torch.backends.cuda.matmul.allow_tf32}, cudnn {torch.backends.cudnn.allow_tf32}")
names = ["typer", "click", "rich", "shellingham", "attrs", "typing_extensions", "jsonschema", "referencing", "rpds-py",
         "license-expression", "boolean.py", "cyclonedx-python-lib", "py-serializable", "packageurl-python",
         "defusedxml", "sortedcontainers", "numpy", "scipy", "safetensors", "huggingface_hub", "jinja2", "pyyaml",
         "threadpoolctl", "pytest"]
def version(n):
    try:
        return md.version(n)
    except md.PackageNotFoundError:
        return "MISSING"
print("packages: " + ", ".join(f"{n} {version(n)}" for n in names))
EOF
    "$PY" -m checker --help | head -n 12
}

main() {
    echo "######## gpu_check: budget ${BUDGET}s, quick=$QUICK, OUT=$OUT, workdir $WORK ########"
    if compgen -G ".whl/*.whl" >/dev/null; then
        if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
            export PYTHONPATH=/tmp/site:$PWD
            echo "wheels installed into /tmp/site: $(cd .whl && ls *.whl | tr '\n' ' ')"
        else
            export PYTHONPATH=$PWD
            echo "! wheel install FAILED: going on with the machine's own packages"
        fi
    else
        export PYTHONPATH=$PWD
        echo "no .whl folder: using the installed packages"
    fi

    export -f facts
    export PY WORK
    step "machine facts" 60 facts.txt bash -c facts
    local devices=cpu,cpu quick=()
    if "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
        devices=cuda,cpu
    else
        echo "! no CUDA device visible to torch: cpu stands in for cuda below"
    fi
    [[ $QUICK == 1 ]] && quick=(--quick)

    step "parity tests (tests/test_device_parity.py)" 150 parity_pytest.log \
        "$PY" -m pytest -q -s -rs -p no:cacheprovider tests/test_device_parity.py
    rm -rf "$WORK"
    local sizes="2 GB, 1 and 10 references"
    [[ $QUICK == 1 ]] && sizes="--quick sizes (0.01 GB, 1 and 3 references)"
    step "$sizes: $devices on the same files" 210 scale_2gb.log \
        "$PY" benchmarks/device_compare.py --devices "$devices" --workdir "$WORK" --timeout 150 "${quick[@]}" \
        $([[ $QUICK == 1 ]] || echo --sizes 2 --refs 1,10)
    rm -rf "$WORK"/size-*   # the models, if the step was stopped before it deleted them (logs stay)
    step "70B-width slice: $devices on the same files" 600 slice.log \
        "$PY" benchmarks/device_compare.py --devices "$devices" --slice --workdir "$WORK" --timeout 200 "${quick[@]}"

    echo
    echo "######## collecting into $OUT ($((SECONDS - START))s into the run) ########"
    cp "$WORK"/logs/device_compare-*.json "$OUT"/ 2>/dev/null
    if [[ -d $WORK/logs ]]; then
        tar czf "$OUT/bench_logs.tgz" -C "$WORK" logs
        if (($(stat -c %s "$OUT/bench_logs.tgz") > 15 * 1024 * 1024)); then  # the tool brings back files < 16 MiB
            tar czf "$OUT/bench_logs.tgz" -C "$WORK" --exclude=report.json logs
            echo "bench_logs.tgz without the report.json files (too large with them)"
        fi
    fi
    rm -f "$OUT/facts.txt"  # in gpu_check.log already: at most 8 files come back
    ls -l "$OUT"
    echo "######## gpu_check done in $((SECONDS - START))s ########"
}

main 2>&1 | tee "$OUT/gpu_check.log"

#!/usr/bin/env bash
# Build the station's Linux x86-64 bundle: a PyInstaller one-folder program plus the install script,
# icon and desktop entry, ready to copy to a line PC (see installer/README.md).
#
#   installer/build_linux.sh                      fresh build venv from requirements.lock (a build machine)
#   installer/build_linux.sh --runtime-venv .venv reuse a venv that `make setup` already filled (faster)
#   installer/build_linux.sh --no-torch           "lite" bundle without torch/CUDA (variation model only)
#
# Output: dist/station-<version>-linux-x86_64[-lite]/ holding station/ (the program), install_linux.sh,
# resources/ and README.md; with --tar also that folder as a .tar.gz. Build tools (PyInstaller) live in
# build/venv-installer, never in the runtime requirements.
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Options:
  --runtime-venv DIR  take the runtime packages from this venv (same Python version) instead of
                      installing requirements.lock into the build venv
  --no-torch          leave torch, torchvision and the CUDA libraries out of the bundle
  --python PY         Python used to create the build venv (default: python3)
  --tar               also pack the output folder as a .tar.gz (slow for the multi-GB torch bundle)
  --no-selftest       do not run the built `station selftest` at the end
  -h, --help          this help
EOF
}

# Everything runs inside main(), which bash reads whole before running: editing this file while a
# build runs cannot change that build.
main() {
    REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    RUNTIME_VENV=""
    WITH_TORCH=1
    PYTHON="${PYTHON:-python3}"
    MAKE_TAR=0
    SELFTEST=1
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --runtime-venv) RUNTIME_VENV="$(cd "$2" && pwd)"; shift 2 ;;
            --no-torch) WITH_TORCH=0; shift ;;
            --python) PYTHON="$2"; shift 2 ;;
            --tar) MAKE_TAR=1; shift ;;
            --no-selftest) SELFTEST=0; shift ;;
            -h|--help) usage; exit 0 ;;
            *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
        esac
    done

    if [[ "$(uname -s)" != "Linux" || "$(uname -m)" != "x86_64" ]]; then
        echo "error: this script builds the Linux x86-64 bundle; on Windows use installer/windows/build_windows.ps1" >&2
        exit 2
    fi

    cd "$REPO"
    START=$(date +%s)
    # Build tools only, linked to --runtime-venv's packages; or tools and runtime packages together. Two
    # folders, so the two ways never mix packages.
    if [[ -n "$RUNTIME_VENV" ]]; then BUILD_VENV="$REPO/build/venv-installer-linked"; else BUILD_VENV="$REPO/build/venv-installer"; fi
    VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' station/__init__.py)"
    NAME="station-${VERSION}-linux-x86_64$([[ $WITH_TORCH == 1 ]] || echo -lite)"
    OUT="$REPO/dist/$NAME"
    WORK="$REPO/build/pyinstaller-$([[ $WITH_TORCH == 1 ]] && echo full || echo lite)"

    step() { printf '\n== %s (%ds)\n' "$*" "$(( $(date +%s) - START ))"; }

    need_mb=$(( WITH_TORCH == 1 ? 16000 : 4000 ))
    free_mb=$(df -Pm "$REPO" | awk 'NR==2 {print $4}')
    if (( free_mb < need_mb )); then
        echo "error: $free_mb MB free under $REPO; the build needs about $need_mb MB" >&2
        exit 1
    fi

    step "build venv $BUILD_VENV"
    if [[ ! -x "$BUILD_VENV/bin/python" ]]; then
        "$PYTHON" -m venv "$BUILD_VENV"
    fi
    BPY="$BUILD_VENV/bin/python"
    "$BPY" -m pip install --quiet --upgrade pip
    "$BPY" -m pip install --quiet -r installer/requirements-build.txt
    SITE="$("$BPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    PTH="$SITE/station-runtime.pth"

    if [[ -n "$RUNTIME_VENV" ]]; then
        step "runtime packages from $RUNTIME_VENV"
        RPY="$RUNTIME_VENV/bin/python"
        bver="$("$BPY" -c 'import sys; print(sys.version_info[:2])')"
        rver="$("$RPY" -c 'import sys; print(sys.version_info[:2])')"
        if [[ "$bver" != "$rver" ]]; then
            echo "error: the runtime venv runs Python $rver, the build venv $bver; use --python with the same version" >&2
            exit 2
        fi
        # The build venv sees the runtime venv's packages through a .pth file: PyInstaller analyses exactly
        # what that venv holds, and nothing is installed into it.
        "$RPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$PTH"
    else
        step "runtime packages from requirements.lock into the build venv"
        rm -f "$PTH"
        REQ="$REPO/build/requirements-bundle.txt"
        # The test and lint tools stay out of the program; so do torch and CUDA in the lite bundle.
        skip='^(pytest|pytest-qt|pytest-timeout|ruff|import-linter|grimp|iniconfig|pluggy)=='
        [[ $WITH_TORCH == 1 ]] || skip="${skip%)==}|torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z-]+|sympy|mpmath|networkx|onnxscript|onnx-ir)=="
        grep -v -i -E "$skip" requirements.lock > "$REQ"
        "$BPY" -m pip install --quiet -r "$REQ"
    fi
    # The station itself is analysed from this source tree (the spec puts it on the search path).

    step "checking the runtime packages"
    if [[ $WITH_TORCH == 1 ]]; then mods="torch torchvision"; else mods=""; fi
    "$BPY" - $mods <<'EOF'
import importlib, sys
for m in ["PySide6.QtWidgets", "cv2", "onnxruntime", "harvesters.core", "genicam.genapi", "scipy", "safetensors",
          "pyqtgraph", *sys.argv[1:]]:
    importlib.import_module(m)
print("runtime packages import")
EOF

    step "PyInstaller -> $OUT/station"
    rm -rf "$OUT"
    STATION_BUNDLE_TORCH=$WITH_TORCH "$BPY" -m PyInstaller --noconfirm --log-level WARN \
        --distpath "$OUT" --workpath "$WORK" installer/station.spec

    step "installer files"
    cp installer/install_linux.sh "$OUT/"
    chmod +x "$OUT/install_linux.sh"
    mkdir -p "$OUT/resources"
    cp resources/station.svg resources/station.png resources/station.desktop "$OUT/resources/"
    cp installer/README.md "$OUT/README.md"
    BUILD_SECONDS=$(( $(date +%s) - START ))
    SIZE_TOTAL=$(du -sm "$OUT/station" | cut -f1 || true)
    # torch, torchvision and CUDA: their package folders plus the CUDA/torch libraries at the bundle's top level
    SIZE_TORCH=$(cd "$OUT/station/_internal" && find torch torchvision torchvision.libs nvidia cuda \
        -maxdepth 0 2>/dev/null | xargs -r du -smc | tail -1 | cut -f1 || true)
    SIZE_TORCH_TOP=$(cd "$OUT/station/_internal" && find . -maxdepth 1 -type f \( -name 'libcu*' -o -name 'libnv*' \
        -o -name 'libnccl*' -o -name 'libtorch*' -o -name 'libc10*' -o -name 'libcaffe2*' \) -printf '%s\n' \
        | awk '{s += $1} END {print int(s / 1048576)}' || true)
    SIZE_TORCH=$(( ${SIZE_TORCH:-0} + ${SIZE_TORCH_TOP:-0} ))
    cat > "$OUT/BUILD-INFO.txt" <<EOF
station $VERSION, Linux x86-64 $([[ $WITH_TORCH == 1 ]] && echo "with torch + CUDA" || echo "lite (no torch)")
built $(date -u +%Y-%m-%dT%H:%M:%SZ) from git $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- station installer 2>/dev/null || echo " (with local changes)")
build time ${BUILD_SECONDS} s; bundle ${SIZE_TOTAL} MB, of which torch/torchvision/CUDA ${SIZE_TORCH} MB
EOF

    if [[ $SELFTEST == 1 ]]; then
        step "selftest of the built bundle (no Python environment on PATH)"
        clean_path="$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -E 'venv|pyenv|conda|\.local/bin' | paste -sd: -)"
        (cd "$OUT" && env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV PATH="$clean_path" \
            STATION_HOME="$REPO/build/selftest-home" QT_QPA_PLATFORM=offscreen ./station/station selftest)
    fi

    if [[ $MAKE_TAR == 1 ]]; then
        step "packing $NAME.tar.gz"
        tar -C "$REPO/dist" -czf "$REPO/dist/$NAME.tar.gz" "$NAME"
    fi

    step "done"
    cat "$OUT/BUILD-INFO.txt"
    echo "output: $OUT"
}

main "$@"

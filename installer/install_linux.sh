#!/usr/bin/env bash
# Install the inspection station on a Linux line PC from the folder this script lies in (the built
# bundle: station/, resources/). No Python, no internet needed. Run it as root for all users, or as a
# normal user for that user only:
#
#   sudo ./install_linux.sh                                # -> /opt/station, launcher /usr/local/bin/station
#   ./install_linux.sh                                     # -> ~/.local/share/station-app, ~/.local/bin/station
#   sudo ./install_linux.sh --home /srv/station --owner op --weights wide_resnet50_2-95faca4d.pth --recipe bottle/
#   ./install_linux.sh --offline /media/usb/station-offline   # holds weights/*.pth and models/<part>/v*/
#   sudo ./install_linux.sh --uninstall                    # removes the program, keeps recipes and results
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Options:
  --prefix DIR        where the program goes (default: /opt/station as root, else ~/.local/share/station-app)
  --bin-dir DIR       where the `station` launcher goes (default: /usr/local/bin as root, else ~/.local/bin)
  --apps-dir DIR      where the menu entry goes (default: /usr/share/applications as root, else
                      ~/.local/share/applications)
  --home DIR          one station data folder (settings, recipes, results, weights) for every user of this
                      installation; the launcher sets STATION_HOME to it. Default: each user's own
                      (~/.local/share/station). Root needs it to install weights or recipes.
  --owner USER        (root) the operator account that owns --home
  --weights FILE      backbone weights to import into the weights store (hash-checked by
                      `station weights import`); repeatable
  --allow-custom-weights  accept weights that are not torchvision's published files
  --recipe DIR        a recipe (a part folder with v0001/... or one version folder) to place into the
                      models folder; checked with `station selftest --recipe`; repeatable
  --offline DIR       an offline bundle: DIR/weights/* are imported, DIR/models/<part>/ placed
  --desktop-shortcut  also put the icon on the desktop of the installing user (or --owner)
  --no-selftest       do not run `station selftest` after installing
  --uninstall         remove the program, launcher and menu entry (data folders are kept)
  -h, --help          this help
EOF
}

die() { echo "error: $*" >&2; exit 2; }
say() { printf '%s\n' "$*"; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT=0; if [[ $(id -u) == 0 ]]; then ROOT=1; fi
PREFIX=""; BIN_DIR=""; APPS_DIR=""; HOME_DIR=""; OWNER=""
WEIGHTS=(); RECIPES=(); ALLOW_CUSTOM=0; SHORTCUT=0; SELFTEST=1; UNINSTALL=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift 2 ;;
        --bin-dir) BIN_DIR="$2"; shift 2 ;;
        --apps-dir) APPS_DIR="$2"; shift 2 ;;
        --home) HOME_DIR="$2"; shift 2 ;;
        --owner) OWNER="$2"; shift 2 ;;
        --weights) WEIGHTS+=("$2"); shift 2 ;;
        --allow-custom-weights) ALLOW_CUSTOM=1; shift ;;
        --recipe) RECIPES+=("$2"); shift 2 ;;
        --offline)
            [[ -d "$2" ]] || die "$2: offline bundle folder not found"
            found=0
            if [[ -d "$2/weights" ]]; then
                for f in "$2"/weights/*; do
                    if [[ -f "$f" && "$f" != *.json ]]; then WEIGHTS+=("$f"); found=1; fi
                done
            fi
            if [[ -d "$2/models" ]]; then
                for d in "$2"/models/*/; do
                    if [[ -d "$d" ]]; then RECIPES+=("${d%/}"); found=1; fi
                done
            fi
            [[ $found == 1 ]] || die "$2: no weights/ files and no models/<part>/ folders in the offline bundle"
            shift 2 ;;
        --desktop-shortcut) SHORTCUT=1; shift ;;
        --no-selftest) SELFTEST=0; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

if [[ $ROOT == 1 ]]; then
    PREFIX="${PREFIX:-/opt/station}"
    BIN_DIR="${BIN_DIR:-/usr/local/bin}"
    APPS_DIR="${APPS_DIR:-/usr/share/applications}"
else
    PREFIX="${PREFIX:-${XDG_DATA_HOME:-$HOME/.local/share}/station-app}"
    BIN_DIR="${BIN_DIR:-$HOME/.local/bin}"
    APPS_DIR="${APPS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/applications}"
    [[ -z "$OWNER" ]] || die "--owner needs root"
fi
PREFIX="$(realpath -m "$PREFIX")"
APP="$PREFIX/app"
LAUNCHER="$BIN_DIR/station"
DESKTOP_FILE="$APPS_DIR/station.desktop"

if [[ $UNINSTALL == 1 ]]; then
    [[ -f "$APP/station" || -f "$LAUNCHER" || -f "$DESKTOP_FILE" ]] || die "no station installed in $PREFIX"
    rm -rf "$APP" "$APP.old" "$PREFIX/share"
    rmdir "$PREFIX" 2>/dev/null || true
    if [[ -f "$LAUNCHER" ]] && grep -q "station-launcher" "$LAUNCHER"; then rm -f "$LAUNCHER"; fi
    rm -f "$DESKTOP_FILE"
    command -v update-desktop-database >/dev/null && update-desktop-database "$APPS_DIR" 2>/dev/null || true
    say "removed the station from $PREFIX (recipes, results and weights in the station data folders are kept)"
    exit 0
fi

# --- checks before anything is changed ----------------------------------------------------------------
[[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] || die "this bundle is for Linux x86-64, not $(uname -s) $(uname -m)"
[[ -x "$HERE/station/station" ]] || die "$HERE/station/station not found: run this script from the unpacked bundle folder"
[[ -f "$HERE/resources/station.desktop" ]] || die "$HERE/resources/ is incomplete (station.desktop missing)"
if [[ -n "$OWNER" ]]; then
    id "$OWNER" >/dev/null 2>&1 || die "--owner $OWNER: no such user"
    [[ -n "$HOME_DIR" ]] || die "--owner needs --home (the folder that user will own)"
fi
if [[ -z "$HOME_DIR" && -f "$LAUNCHER" ]]; then
    # An update without --home keeps the data folder the installed launcher uses: otherwise the station
    # would silently start on an empty per-user folder and the recipes would seem gone.
    HOME_DIR="$(sed -n 's/^STATION_HOME="\${STATION_HOME:-\(.*\)}"$/\1/p' "$LAUNCHER")"
    if [[ -n "$HOME_DIR" ]]; then say "keeping the station data folder of the installed version: $HOME_DIR"; fi
fi
if [[ $ROOT == 1 && -z "$HOME_DIR" && ( ${#WEIGHTS[@]} -gt 0 || ${#RECIPES[@]} -gt 0 ) ]]; then
    die "as root, weights and recipes need a station data folder every user shares: add e.g. --home /srv/station --owner <operator account>"
fi
for f in "${WEIGHTS[@]}"; do [[ -f "$f" ]] || die "$f: weights file not found"; done
for d in "${RECIPES[@]}"; do
    [[ -f "$d/recipe.json" ]] || compgen -G "$d/v[0-9]*/recipe.json" >/dev/null \
        || die "$d: not a recipe (neither $d/recipe.json nor $d/v0001/recipe.json)"
done
need_kb=$(du -sk "$HERE/station" | cut -f1)
if ! mkdir -p "$PREFIX" 2>/dev/null || [[ ! -w "$PREFIX" ]]; then
    die "cannot write to $PREFIX: run as root (sudo) or choose another --prefix"
fi
free_kb=$(df -Pk "$PREFIX" | awk 'NR==2 {print $4}')
(( free_kb > need_kb + 200000 )) || die "$PREFIX: $(( free_kb / 1024 )) MB free, the program needs $(( need_kb / 1024 )) MB"

# --- the program -------------------------------------------------------------------------------------------
say "installing the station into $APP ($(( need_kb / 1024 )) MB)"
rm -rf "$APP.new"
cp -a "$HERE/station" "$APP.new"
if [[ -d "$APP" ]]; then  # an update: the old version stays until the new one is complete
    rm -rf "$APP.old"
    mv "$APP" "$APP.old"
fi
mv "$APP.new" "$APP"
rm -rf "$APP.old"
mkdir -p "$PREFIX/share"
cp "$HERE"/resources/station.{svg,png} "$PREFIX/share/"
for f in README.md BUILD-INFO.txt; do
    if [[ -f "$HERE/$f" ]]; then cp "$HERE/$f" "$PREFIX/share/$f"; fi
done

# --- the launcher and the menu entry -----------------------------------------------------------------
mkdir -p "$BIN_DIR"
{
    echo '#!/bin/sh'
    echo '# station-launcher: written by install_linux.sh; starts the installed station bundle.'
    if [[ -n "$HOME_DIR" ]]; then
        echo "STATION_HOME=\"\${STATION_HOME:-$(realpath -m "$HOME_DIR")}\""
        echo 'export STATION_HOME'
    fi
    echo "exec \"$APP/station\" \"\$@\""
} > "$LAUNCHER.tmp"
chmod 755 "$LAUNCHER.tmp"
mv "$LAUNCHER.tmp" "$LAUNCHER"
mkdir -p "$APPS_DIR"
sed -e "s|@EXEC@|$LAUNCHER|" -e "s|@ICON@|$PREFIX/share/station.svg|" "$HERE/resources/station.desktop" > "$DESKTOP_FILE"
chmod 644 "$DESKTOP_FILE"
command -v update-desktop-database >/dev/null && update-desktop-database "$APPS_DIR" 2>/dev/null || true
say "launcher: $LAUNCHER; menu entry: $DESKTOP_FILE"
case ":$PATH:" in *":$BIN_DIR:"*) ;; *) say "note: $BIN_DIR is not on PATH; start the station with $LAUNCHER" ;; esac

as_user() {  # run a command as another account (root only), else as ourselves
    local user="$1"; shift
    if [[ $ROOT == 0 || "$user" == root ]]; then "$@"
    elif command -v runuser >/dev/null; then runuser -u "$user" -- "$@"
    else sudo -u "$user" -- "$@"
    fi
}

if [[ $SHORTCUT == 1 ]]; then
    user="${OWNER:-${SUDO_USER:-$(id -un)}}"
    user_home="$(getent passwd "$user" | cut -d: -f6)"
    desktop="$user_home/Desktop"
    if command -v xdg-user-dir >/dev/null; then  # the desktop folder's localised name, e.g. ~/Schreibtisch
        named="$(cd / && HOME="$user_home" xdg-user-dir DESKTOP 2>/dev/null || true)"
        if [[ -n "$named" && "$named" != "$user_home" ]]; then desktop="$named"; fi
    fi
    mkdir -p "$desktop"
    cp "$DESKTOP_FILE" "$desktop/station.desktop"
    chmod 755 "$desktop/station.desktop"
    if [[ $ROOT == 1 ]]; then chown "$user": "$desktop/station.desktop"; fi
    # GNOME starts desktop files only once they are marked trusted
    if command -v gio >/dev/null; then
        as_user "$user" gio set "$desktop/station.desktop" metadata::trusted true 2>/dev/null || true
    fi
    say "desktop icon: $desktop/station.desktop"
fi

# --- the station data folder, weights and recipes --------------------------------------------------------
run_station() {  # the installed program, with this installation's data folder, as the owner when given
    as_user "${OWNER:-root}" env STATION_HOME="$STATION_HOME_USED" QT_QPA_PLATFORM=offscreen "$APP/station" "$@"
}
if [[ -n "$HOME_DIR" ]]; then
    STATION_HOME_USED="$(realpath -m "$HOME_DIR")"
    mkdir -p "$STATION_HOME_USED/models" "$STATION_HOME_USED/weights"
    if [[ -n "$OWNER" ]]; then chown -R "$OWNER": "$STATION_HOME_USED"; fi
    say "station data folder: $STATION_HOME_USED"
else
    STATION_HOME_USED="${STATION_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/station}"
fi

for f in "${WEIGHTS[@]}"; do
    say "importing weights $f"
    src="$f"
    if [[ -n "$OWNER" ]]; then  # the owner may not read the installing user's files: hand over a copy
        src="$(mktemp -d)/$(basename "$f")"
        cp "$f" "$src"
        chmod 755 "$(dirname "$src")"; chmod 644 "$src"
    fi
    args=(weights import "$src")
    if [[ $ALLOW_CUSTOM == 1 ]]; then args+=(--allow-custom); fi
    # The station's own import: torchvision's files must match their published hash, others need --allow-custom.
    if ! run_station "${args[@]}"; then
        die "the weights $f were not imported (see above); the program is installed, the weights store unchanged"
    fi
    if [[ "$src" != "$f" ]]; then rm -rf "$(dirname "$src")"; fi
done

MODELS="$STATION_HOME_USED/models"
PLACED=()
for d in "${RECIPES[@]}"; do
    d="$(realpath "$d")"
    if [[ -f "$d/recipe.json" ]]; then  # one version folder: models/<its part folder's name>/<vNNNN>
        part="$(basename "$(dirname "$d")")"; versions=("$d")
    else
        part="$(basename "$d")"; versions=("$d"/v[0-9]*)
    fi
    [[ "$part" =~ ^[A-Za-z0-9._-]+$ ]] || die "$d: part name '$part' is not a plain folder name"
    mkdir -p "$MODELS/$part"
    for v in "${versions[@]}"; do
        [[ -f "$v/recipe.json" ]] || continue
        target="$MODELS/$part/$(basename "$v")"
        if [[ -d "$target" ]]; then
            if diff -rq "$v" "$target" >/dev/null; then
                say "recipe $part/$(basename "$v") already installed"
                continue
            fi
            die "$target already exists with other content; remove it or give the recipe a new version"
        fi
        cp -r "$v" "$target.tmp"
        mv "$target.tmp" "$target"
        say "recipe placed: $target"
    done
    if [[ -n "$OWNER" ]]; then chown -R "$OWNER": "$MODELS/$part"; fi
    PLACED+=("$MODELS/$part")
done

# --- check the installation -------------------------------------------------------------------------------
if [[ $SELFTEST == 1 ]]; then
    say ""
    say "checking the installation (station selftest) ..."
    args=(selftest)
    for p in "${PLACED[@]}"; do args+=(--recipe "$p"); done
    if ! run_station "${args[@]}"; then
        say ""
        say "the program is installed, but the self-test found a problem (see FAIL above)."
        say "run it again with: $LAUNCHER selftest"
        exit 1
    fi
fi
say ""
say "done: start the station from the application menu ('Inspection station') or with: $LAUNCHER"

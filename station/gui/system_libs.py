"""Before Qt loads: are the system libraries of its X11 (xcb) platform plugin installed?

On a fresh Debian the window did not open: Qt's xcb plugin needs ``libxcb-icccm4``,
``libxcb-keysyms1``, ``libxcb-cursor0`` and others that a minimal system lacks, and Qt then aborts
with a message naming the plugin, not the library. This module asks the dynamic linker (``ldd`` on
the plugin) which libraries are missing and turns them into one apt command. No Qt import here.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

# shared library -> the Debian/Ubuntu package that holds it (what Qt 6's xcb plugin links)
DEBIAN_PACKAGES = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}
# what the README lists: the window's system packages on a fresh Debian/Ubuntu
WINDOW_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-randr0",
                   "libxcb-render-util0", "libxcb-shape0", "libxcb-xinerama0", "libxkbcommon-x11-0", "libegl1",
                   "libfontconfig1", "libdbus-1-3")


def xcb_plugin() -> Path | None:
    """PySide6's xcb platform plugin, or None (no PySide6, or a build without it)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        plugin = Path(root) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def missing_libraries(plugin: Path) -> list[str]:
    """Shared libraries ``plugin`` links that the dynamic linker cannot find (empty without ``ldd``)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line})


def apt_command(libraries: list[str]) -> str:
    packages = sorted({DEBIAN_PACKAGES.get(lib, lib) for lib in libraries})
    return "sudo apt-get install -y " + " ".join(packages)


def uses_xcb() -> bool:
    """Whether Qt will pick its X11 platform: asked for, or an X display without Wayland."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    return bool(os.environ.get("DISPLAY")) and not os.environ.get("WAYLAND_DISPLAY")


def window_problem() -> str | None:
    """One line saying what the window's platform lacks and the command that installs it, or None."""
    if not uses_xcb():
        return None
    plugin = xcb_plugin()
    if plugin is None:
        return None
    missing = missing_libraries(plugin)
    if not missing:
        return None
    return (f"error: the window cannot open: Qt's X11 plugin needs system libraries that are missing "
            f"({', '.join(missing)}); install them with: {apt_command(missing)}")


if __name__ == "__main__":  # `make run` asks before starting; prints nothing when all is there
    import sys

    problem = window_problem()
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(1)

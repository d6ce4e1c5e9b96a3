"""The synthetic demo part: a machined washer drawn procedurally, with injected defects and their masks.

It is the station's embedded default (``synthetic://demo``): every machine can teach and inspect it
without a camera or a data set. Each part differs slightly from the last, as real parts do -- the
turning marks, the pose (a few pixels and about a degree), the light level and direction, the sensor
noise -- and a fraction of parts carry one defect:

``scratch``        a thin bright or dark curved line on the face
``spot``           a dark pit with an irregular outline
``missing``        a chip broken out of the outer edge (the background shows through)
``contamination``  a brown oily or rusty stain

The imaging conditions can be changed too (:class:`Conditions`), so tests and demos can provoke the
station's input and drift watch: the light level (a lamp dimmed by 20 %: ``light=0.8``), optical
blur (a dirty or defocused lens), the part's position, or no part at all (an empty fixture). The
source takes them as URI options that apply from frame ``change_at`` on (see
:class:`SyntheticSource`).

Every image comes with the exact defect mask (``True`` where the defect covers at least half of the
pixel) and the defect type, and everything is a pure function of ``(seed, index)``: the same seed
gives the same parts on every machine, whatever the timing.

Over ~450 lines: the drawing of one part (pose, surface, four defect kinds, imaging conditions) is one
piece; the source around it is short.

>>> part = SyntheticPart(seed=0)
>>> good = part.good_images(20)                      # for teaching
>>> sample = part.render(7, defect="scratch")        # image, mask, label
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from station.acquisition.base import Frame, SourceError, SourceURI
from station.acquisition.paced import PacedSource

DEFECT_TYPES = ("scratch", "spot", "missing", "contamination")
GOOD = "good"
DEMO_PARTS = ("demo",)  # names after synthetic:// (one part design so far)

_METAL = np.array([0.80, 0.82, 0.86], dtype=np.float32)  # slightly blue steel
_BACKGROUND = np.array([0.15, 0.16, 0.17], dtype=np.float32)  # dark conveyor belt
_STAIN = np.array([0.40, 0.25, 0.10], dtype=np.float32)  # oil / rust


@dataclass
class SyntheticSample:
    """One rendered part. ``mask`` is ``bool (H, W)``, all ``False`` for a good part."""

    image: np.ndarray
    mask: np.ndarray = field(repr=False)
    label: str  # "good" or the defect type
    defects: list[dict[str, Any]]  # [{"type", "bbox": [x, y, w, h], "area_px"}]
    pose: dict[str, float]  # dx, dy (pixels), angle (degrees), gain

    @property
    def is_good(self) -> bool:
        return self.label == GOOD


@dataclass(frozen=True)
class Conditions:
    """How the part is imaged, beyond its own part-to-part variation.

    ``light``: factor on the lamp's brightness (1: as taught; 0.8: dimmed by 20 %); ``blur``: sigma in
    pixels of a Gaussian optical blur before the sensor noise (0: sharp); ``shift``: the part's
    displacement ``(dx, dy)`` in pixels out of its fixture; ``empty``: no part in the image at all."""

    light: float = 1.0
    blur: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    empty: bool = False

    @property
    def nominal(self) -> bool:
        return self == NOMINAL


NOMINAL = Conditions()
EMPTY = "empty"  # the label of a frame without a part


class CoverageCanvas:
    """A square pixel grid and anti-aliased coverage (0..1) of the shapes defects are drawn with:
    thick polylines, irregular blobs, discs. Shared by the synthetic parts."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        coords = np.arange(self.size, dtype=np.float32) + 0.5  # pixel centres
        self._xx, self._yy = np.meshgrid(coords, coords)

    def _polyline_coverage(self, xs: np.ndarray, ys: np.ndarray, half_width: float) -> np.ndarray:
        """Anti-aliased coverage of a thick polyline: computed in its bounding box only."""
        S = self.size
        pad = half_width + 2
        x0, x1 = max(0, int(xs.min() - pad)), min(S, int(xs.max() + pad) + 1)
        y0, y1 = max(0, int(ys.min() - pad)), min(S, int(ys.max() + pad) + 1)
        alpha = np.zeros((S, S), dtype=np.float32)
        if x0 >= x1 or y0 >= y1:
            return alpha
        px = self._xx[y0:y1, x0:x1][..., None]
        py = self._yy[y0:y1, x0:x1][..., None]
        ax, ay, bx, by = xs[:-1], ys[:-1], xs[1:], ys[1:]
        ex, ey = bx - ax, by - ay
        t = np.clip(((px - ax) * ex + (py - ay) * ey) / np.maximum(ex * ex + ey * ey, 1e-9), 0.0, 1.0)
        dist = np.hypot(px - (ax + t * ex), py - (ay + t * ey)).min(axis=-1)
        alpha[y0:y1, x0:x1] = np.clip(half_width - dist + 0.5, 0.0, 1.0)
        return alpha

    def _blob_coverage(self, rng: np.random.Generator, to_image, pu: float, pv: float, radius: float,
                       lobes: int, roughness: float) -> np.ndarray:
        """Anti-aliased coverage of an irregular blob: a circle whose radius varies with the angle."""
        x0, y0 = to_image(np.array([pu]), np.array([pv]))
        phases = rng.uniform(0, 2 * math.pi, lobes)
        weights = rng.uniform(0.5, 1.0, lobes)
        alpha, win = self._window(float(x0[0]), float(y0[0]), radius * (1 + roughness * 1.6) + 2)
        if win is None:
            return alpha
        dx = self._xx[win] - float(x0[0])
        dy = self._yy[win] - float(y0[0])
        ang = np.arctan2(dy, dx)
        rr = np.full_like(dx, radius)
        for i, k in enumerate(range(2, 2 + lobes)):
            rr += radius * roughness / k * weights[i] * np.cos(k * ang + phases[i])
        alpha[win] = np.clip(rr - np.hypot(dx, dy) + 0.5, 0.0, 1.0)
        return alpha

    def _disc_coverage(self, x0: float, y0: float, radius: float) -> np.ndarray:
        alpha, win = self._window(x0, y0, radius + 2)
        if win is not None:
            alpha[win] = np.clip(radius - np.hypot(self._xx[win] - x0, self._yy[win] - y0) + 0.5, 0.0, 1.0)
        return alpha

    def _window(self, x: float, y: float, half: float) -> tuple[np.ndarray, tuple[slice, slice] | None]:
        """A zero coverage image and the slice of it within ``half`` pixels of ``(x, y)``."""
        S = self.size
        alpha = np.zeros((S, S), dtype=np.float32)
        x0, x1 = max(0, int(x - half)), min(S, int(x + half) + 2)
        y0, y1 = max(0, int(y - half)), min(S, int(y + half) + 2)
        if x0 >= x1 or y0 >= y1:
            return alpha, None
        return alpha, (slice(y0, y1), slice(x0, x1))


class SyntheticPart(CoverageCanvas):
    """A procedurally drawn machined washer (outer ring, bore, four bolt holes, a key notch).

    Parameters
    ----------
    seed
        Selects the lot: the same seed and index always give the same image and mask.
    size
        Image side in pixels (square); the geometry scales with it.
    jitter
        Scale of the part-to-part variation (pose, light, texture); 0 renders identical good parts.
    """

    def __init__(self, seed: int = 0, size: int = 256, jitter: float = 1.0) -> None:
        if not 64 <= int(size) <= 4096:
            raise ValueError(f"synthetic part size must be 64..4096 pixels, not {size}")
        if jitter < 0:
            raise ValueError("jitter must be >= 0")
        self.seed = int(seed)
        self.size = int(size)
        self.jitter = float(jitter)
        s = self.size / 256.0
        self.scale = s
        self.outer_r = 100.0 * s
        self.bore_r = 38.0 * s
        self.hole_ring_r = 70.0 * s
        self.hole_r = 9.0 * s
        self.hole_angles = np.deg2rad([45.0, 135.0, 225.0, 315.0])
        self.notch_w = 16.0 * s
        self.notch_depth = 10.0 * s
        CoverageCanvas.__init__(self, self.size)
        # A fixed conveyor-belt texture for the lot (the belt does not change from part to part).
        lot = np.random.default_rng([self.seed, 0xBE17])
        belt = lot.standard_normal((self.size, self.size), dtype=np.float32)
        self._belt = cv2.GaussianBlur(belt, (0, 0), 1.5 * s) * 0.02
        # Sensor noise is cut from one long pre-drawn strip at a random offset per frame: drawing
        # fresh normals for every pixel costs more than all the rest of the drawing.
        n = self.size * self.size * 3
        self._noise = lot.standard_normal(n + min(n, 1 << 20), dtype=np.float32) * np.float32(0.007)
        # The washer's outline is drawn once, centred; each frame warps it to the part's pose.
        centred = self._xx - self.size / 2.0, self._yy - self.size / 2.0
        self._outline = self._material(*centred, np.hypot(*centred))

    # --- public API ---------------------------------------------------------------------------------
    def render(self, index: int = 0, defect: str | None = None,
               conditions: Conditions = NOMINAL) -> SyntheticSample:
        """Render part number ``index``; ``defect`` is ``None`` (good), a type from
        :data:`DEFECT_TYPES`, or ``"random"`` (one type picked from the index); ``conditions``: the
        light, blur, position or absence of the part (:class:`Conditions`; the same part otherwise)."""
        rng = np.random.default_rng([self.seed, int(index)])
        pose_rng = np.random.default_rng([self.seed, int(index), 1])
        defect_rng = np.random.default_rng([self.seed, int(index), 2])
        if defect == "random":
            defect = DEFECT_TYPES[int(defect_rng.integers(len(DEFECT_TYPES)))]
        if defect is not None and defect not in DEFECT_TYPES:
            raise ValueError(f"unknown defect {defect!r}; use one of {', '.join(DEFECT_TYPES)} or 'random'")
        return self._render(rng, pose_rng, defect_rng, defect, conditions)

    def sample(self, index: int, defect_rate: float = 0.2,
               defect_types: tuple[str, ...] = DEFECT_TYPES, conditions: Conditions = NOMINAL) -> SyntheticSample:
        """Part ``index`` of a production stream where a fraction ``defect_rate`` is defective."""
        choice = np.random.default_rng([self.seed, int(index), 3])
        if defect_rate > 0 and choice.random() < defect_rate:
            return self.render(index, defect_types[int(choice.integers(len(defect_types)))], conditions)
        return self.render(index, None, conditions)

    def good_images(self, n: int, start: int = 0) -> list[np.ndarray]:
        """``n`` good parts (indices ``start .. start + n - 1``), e.g. to teach the demo recipe."""
        return [self.render(start + i).image for i in range(n)]

    # --- drawing ------------------------------------------------------------------------------------
    def _render(self, rng: np.random.Generator, pose_rng: np.random.Generator,
                defect_rng: np.random.Generator, defect: str | None, conditions: Conditions = NOMINAL) -> SyntheticSample:
        S, s, j = self.size, self.scale, self.jitter
        # Pose: the part sits in a fixture, so it moves by a pixel or two and turns by about a degree.
        tx, ty = (pose_rng.normal(0.0, 0.8 * s * j, 2)).clip(-2.5 * s * j, 2.5 * s * j)
        tx, ty = tx + float(conditions.shift[0]), ty + float(conditions.shift[1])
        angle = float(np.clip(pose_rng.normal(0.0, 0.5 * j), -1.5 * j, 1.5 * j))
        gain = float(1.0 + np.clip(pose_rng.normal(0.0, 0.02 * j), -0.05, 0.05))
        light_dir = float(0.8 + pose_rng.normal(0.0, 0.3 * j))  # the lamp is fixed; it flickers
        light_slope = float(0.05 + 0.02 * j * pose_rng.random())
        theta = math.radians(angle)
        cos_t, sin_t = math.cos(theta), math.sin(theta)
        cx, cy = S / 2.0 + float(tx), S / 2.0 + float(ty)

        dx = self._xx - cx
        dy = self._yy - cy
        u = cos_t * dx + sin_t * dy  # image -> part coordinates (rotate back by theta)
        v = -sin_t * dx + cos_t * dy
        r = np.sqrt(u * u + v * v)
        # The same mapping for cv2 (pixel centres at integer coordinates) to warp the outline.
        half = S / 2.0 - 0.5
        warp = np.array([[cos_t, sin_t, cos_t * (0.5 - cx) + sin_t * (0.5 - cy) + half],
                         [-sin_t, cos_t, -sin_t * (0.5 - cx) + cos_t * (0.5 - cy) + half]])
        material = cv2.warpAffine(self._outline, warp, (S, S), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        shade = self._surface(rng, r, u, v)
        light = conditions.light * gain * (1.0 + light_slope * (dx * math.cos(light_dir) + dy * math.sin(light_dir)) / self.outer_r)

        def to_image(pu: np.ndarray, pv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return cos_t * pu - sin_t * pv + cx, sin_t * pu + cos_t * pv + cy

        mask = np.zeros((S, S), dtype=bool)
        defects: list[dict[str, Any]] = []
        stain_alpha = None
        if conditions.empty:  # an empty fixture: the belt alone, and nothing to be defective
            material, defect = np.zeros_like(material), None
        good_material = material
        if defect is not None:
            for _attempt in range(20):  # re-draw the (rare) defect that falls almost entirely off the face
                alpha, kind_params = self._defect(defect, defect_rng, to_image)
                dmask = (alpha >= 0.5) & (good_material >= 0.5)
                if dmask.sum() >= 30 * s * s:
                    break
            if defect == "missing":
                material = good_material * (1.0 - alpha)
            elif defect == "scratch":
                shade = shade + kind_params["contrast"] * alpha
            elif defect == "spot":
                shade = shade * (1.0 - kind_params["depth"] * alpha)
            elif defect == "contamination":
                stain_alpha = alpha * kind_params["opacity"]
            mask = dmask
            ys, xs = np.nonzero(mask)
            defects.append({"type": defect,
                            "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1],
                            "area_px": int(mask.sum())})

        metal = (shade * light)[..., None] * _METAL
        if stain_alpha is not None:
            stain = _STAIN * (0.8 + 0.4 * shade[..., None])
            metal = metal * (1.0 - stain_alpha[..., None]) + stain * stain_alpha[..., None]
        bg = ((0.9 + self._belt) * (0.5 + 0.5 * light))[..., None] * _BACKGROUND
        m = material[..., None]
        image = m * metal + (1.0 - m) * bg
        if conditions.blur > 0:  # optics blur before the sensor adds its noise
            image = cv2.GaussianBlur(image, (0, 0), float(conditions.blur))
        offset = int(rng.integers(0, self._noise.size - image.size + 1))
        image += self._noise[offset:offset + image.size].reshape(image.shape)  # sensor noise, ~2 grey levels
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        label = EMPTY if conditions.empty else (defect or GOOD)
        return SyntheticSample(image=image, mask=mask, label=label, defects=defects,
                               pose={"dx": float(tx), "dy": float(ty), "angle": angle, "gain": gain})

    def _material(self, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Anti-aliased coverage (0..1) of the washer in part coordinates."""
        cover = np.clip(self.outer_r - r + 0.5, 0.0, 1.0) * np.clip(r - self.bore_r + 0.5, 0.0, 1.0)
        for a in self.hole_angles:
            hx, hy = self.hole_ring_r * math.cos(a), self.hole_ring_r * math.sin(a)
            cover *= np.clip(np.hypot(u - hx, v - hy) - self.hole_r + 0.5, 0.0, 1.0)
        inside_notch = np.minimum(u - (self.outer_r - self.notch_depth), self.notch_w / 2 - np.abs(v))
        cover *= 1.0 - np.clip(inside_notch + 0.5, 0.0, 1.0)
        return cover

    def _surface(self, rng: np.random.Generator, r: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Grey level of the face before lighting: turning marks and chamfers."""
        s, j = self.scale, self.jitter
        # Turning marks: concentric grooves with a per-part phase and an irregular depth along the radius.
        step = 0.5
        n = int(self.outer_r / step) + 8
        profile = rng.normal(0.0, 1.0, n).astype(np.float32)
        profile = np.convolve(profile, np.ones(5, dtype=np.float32) / 5, mode="same") * 0.035 * j
        radial = np.interp(r, np.arange(n, dtype=np.float32) * step, profile).astype(np.float32)
        phase = rng.uniform(0, 2 * math.pi) * min(1.0, j)
        grooves = 0.03 * np.sin(r * (2 * math.pi / (2.2 * s)) + phase)
        shade = 0.62 + grooves + radial
        # Chamfers catch the light: bright bands at the outer edge and at the bore.
        shade += 0.12 * np.clip((r - (self.outer_r - 5.0 * s)) / (2.0 * s), 0.0, 1.0)
        shade += 0.10 * np.clip(((self.bore_r + 4.0 * s) - r) / (2.0 * s), 0.0, 1.0)
        return shade.astype(np.float32)

    def _face_point(self, rng: np.random.Generator, margin: float) -> tuple[float, float]:
        """A random point on the flat face, at least ``margin`` from every edge, hole and the notch."""
        for _ in range(200):
            rad = rng.uniform(self.bore_r + margin + 4 * self.scale, self.outer_r - margin - 5 * self.scale)
            ang = rng.uniform(0, 2 * math.pi)
            pu, pv = rad * math.cos(ang), rad * math.sin(ang)
            holes_ok = all(math.hypot(pu - self.hole_ring_r * math.cos(a), pv - self.hole_ring_r * math.sin(a))
                           > self.hole_r + margin for a in self.hole_angles)
            notch_ok = not (pu > self.outer_r - self.notch_depth - margin and abs(pv) < self.notch_w / 2 + margin)
            if holes_ok and notch_ok:
                return pu, pv
        return (self.bore_r + self.outer_r) / 2, 0.0

    def _defect(self, kind: str, rng: np.random.Generator, to_image) -> tuple[np.ndarray, dict[str, float]]:
        """Coverage (0..1, image grid) of one defect and the parameters of its appearance."""
        s = self.scale
        if kind == "scratch":
            pu, pv = self._face_point(rng, 6 * s)
            length = rng.uniform(30, 60) * s
            ang = rng.uniform(0, 2 * math.pi)
            bend = rng.uniform(-0.35, 0.35) * length
            t = np.linspace(-0.5, 0.5, 24)
            # A gently bent line (quadratic Bezier) through the chosen point.
            cu = pu + t * length * math.cos(ang) - (1 - 4 * t * t) * bend * math.sin(ang)
            cv = pv + t * length * math.sin(ang) + (1 - 4 * t * t) * bend * math.cos(ang)
            xs, ys = to_image(cu, cv)
            width = rng.uniform(2.0, 3.2) * s
            alpha = self._polyline_coverage(xs, ys, width / 2)
            contrast = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.22, 0.32))
            return alpha, {"contrast": contrast}
        if kind == "spot":
            pu, pv = self._face_point(rng, 9 * s)
            radius = rng.uniform(4.5, 8.0) * s
            alpha = self._blob_coverage(rng, to_image, pu, pv, radius, lobes=3, roughness=0.25)
            return alpha, {"depth": float(rng.uniform(0.45, 0.65))}
        if kind == "contamination":
            pu, pv = self._face_point(rng, 12 * s)
            radius = rng.uniform(7.0, 12.0) * s
            alpha = self._blob_coverage(rng, to_image, pu, pv, radius, lobes=5, roughness=0.4)
            return alpha, {"opacity": float(rng.uniform(0.6, 0.8))}
        if kind == "missing":
            # A chip out of the outer edge, away from the key notch.
            ang = rng.uniform(math.radians(25), math.radians(335))
            radius = rng.uniform(9.0, 15.0) * s
            depth = rng.uniform(0.35, 0.6) * radius  # how far the chip's centre lies outside the edge
            cu = (self.outer_r + depth) * math.cos(ang)
            cv = (self.outer_r + depth) * math.sin(ang)
            x0, y0 = to_image(np.array([cu]), np.array([cv]))
            return self._disc_coverage(float(x0[0]), float(y0[0]), radius), {}
        raise ValueError(kind)

class SyntheticSource(PacedSource):
    """``synthetic://demo?defect_rate=0.2&fps=10&seed=0&size=256&count=0&live=1`` as a camera.

    ``fps=0`` delivers frames as fast as they are asked for; ``count`` > 0 ends the stream after
    that many frames. Like a camera the source is ``live`` (the pipeline drops the oldest frame when it
    falls behind); ``live=0`` makes it a replay that loses nothing. Frame ``k`` is always part ``k``
    of the seed's lot, so a run is reproducible whatever the timing.

    Changed conditions, to provoke the input and drift watch (all from frame ``change_at`` on,
    default 0: from the start):

    ``light=0.8``     the lamp at 80 % (dimmed by 20 %); ``light=1.1`` brighter
    ``blur=2``        an optical blur of sigma 2 px (defocus, a dirty lens)
    ``shift=12,0``    the part 12 px to the right of (and 0 px below) its fixture position
    ``empty=1``       no part in the fixture
    ``empty_every=N`` every N-th frame (N-1, 2N-1, ...) has no part, whatever ``change_at``

    ``synthetic://demo?light=0.8&change_at=300&count=600`` is "dimmed by 20 % halfway". The frame's
    ``meta["label"]`` is ``"empty"`` for a frame without a part.
    """

    def __init__(self, part: SyntheticPart, *, name: str = "demo", defect_rate: float = 0.2,
                 fps: float = 10.0, count: int = 0, live: bool = True,
                 defect_types: tuple[str, ...] = DEFECT_TYPES, uri: str | None = None,
                 conditions: Conditions = NOMINAL, change_at: int = 0, empty_every: int = 0) -> None:
        if not 0.0 <= defect_rate <= 1.0:
            raise SourceError(f"defect_rate must be between 0 and 1, not {defect_rate}")
        if fps < 0:
            raise SourceError(f"fps must be >= 0, not {fps}")
        super().__init__()
        self.part = part
        self.name = name
        self.defect_rate = float(defect_rate)
        self.fps = float(fps)
        self.count = int(count)
        self.live = bool(live)
        self.defect_types = tuple(defect_types)
        self.conditions = conditions
        self.change_at = int(change_at)
        self.empty_every = int(empty_every)
        self.uri = uri or f"synthetic://{name}?seed={part.seed}&size={part.size}&defect_rate={defect_rate}&fps={fps}"
        self._next_index = 0

    @classmethod
    def from_uri(cls, uri: str) -> SyntheticSource:
        parsed = SourceURI.parse(uri)
        name = parsed.target.strip("/") or "demo"
        if name not in DEMO_PARTS:
            raise SourceError(f"unknown synthetic part {name!r}; available: {', '.join(DEMO_PARTS)}")
        p = dict(parsed.params)
        known = {"seed", "size", "defect_rate", "fps", "count", "live", "jitter", "defects", "light", "blur", "shift",
                 "empty", "change_at", "empty_every"}
        unknown = set(p) - known
        if unknown:
            raise SourceError(f"{uri}: unknown option(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(known))}")
        try:
            seed = int(p.get("seed", 0))
            size = int(p.get("size", 256))
            jitter = float(p.get("jitter", 1.0))
            defect_rate = float(p.get("defect_rate", 0.2))
            fps = float(p.get("fps", 10.0))
            count = int(p.get("count", 0))
            live = p.get("live", "1").lower() not in ("0", "false", "no")
            shift = tuple(float(v) for v in p.get("shift", "0,0").split(","))
            if len(shift) == 1:
                shift = (shift[0], 0.0)
            if len(shift) != 2:
                raise ValueError(f"shift={p['shift']!r} is not dx,dy")
            conditions = Conditions(light=float(p.get("light", 1.0)), blur=float(p.get("blur", 0.0)),
                                    shift=(shift[0], shift[1]),
                                    empty=p.get("empty", "0").lower() not in ("0", "false", "no"))
            change_at, empty_every = int(p.get("change_at", 0)), int(p.get("empty_every", 0))
            if conditions.light <= 0 or conditions.blur < 0 or change_at < 0 or empty_every < 0:
                raise ValueError("light must be > 0; blur, change_at and empty_every >= 0")
        except ValueError as exc:
            raise SourceError(f"{uri}: bad option value ({exc})") from None
        types = tuple(t for t in p.get("defects", ",".join(DEFECT_TYPES)).split(",") if t)
        bad = [t for t in types if t not in DEFECT_TYPES]
        if bad or not types:
            raise SourceError(f"{uri}: unknown defect type(s) {', '.join(bad) or '(none)'}; "
                              f"use {', '.join(DEFECT_TYPES)}")
        try:
            part = SyntheticPart(seed=seed, size=size, jitter=jitter)
        except ValueError as exc:
            raise SourceError(f"{uri}: {exc}") from None
        return cls(part, name=name, defect_rate=defect_rate, fps=fps, count=count, live=live,
                   defect_types=types, uri=uri, conditions=conditions, change_at=change_at, empty_every=empty_every)

    def conditions_at(self, index: int) -> Conditions:
        """The imaging conditions of frame ``index``."""
        c = self.conditions if index >= self.change_at else NOMINAL
        if self.empty_every and (index + 1) % self.empty_every == 0:
            c = Conditions(c.light, c.blur, c.shift, empty=True)
        return c

    def next_frame(self, timeout: float = 1.0) -> Frame | None:
        """The next part, paced at ``fps``; ``None`` if it is not due within ``timeout`` seconds."""
        self._require_acquiring()
        with self._lock:
            if self.count and self._next_index >= self.count:
                raise StopIteration
            if not self._wait_turn(timeout):
                return None
            index = self._next_index
            self._next_index += 1
        sample = self.part.sample(index, self.defect_rate, self.defect_types, self.conditions_at(index))
        return Frame(image=sample.image, frame_id=index, timestamp=time.time(),
                     pixel_format="RGB8", source=self.uri,
                     meta={"label": sample.label, "mask": sample.mask, "defects": sample.defects})


def export_mvtec(root: str | Path, seed: int = 0, size: int = 256, n_train: int = 60, n_test_good: int = 10,
                 n_per_defect: int = 5) -> Path:
    """Write the demo part as an MVTec AD style category (``train/good``, ``test/<type>``,
    ``ground_truth/<type>/NNN_mask.png``), so every data-set tool of the station can use it.

    Returns ``root``.
    """
    return write_mvtec(root, SyntheticPart(seed=seed, size=size), DEFECT_TYPES, n_train, n_test_good, n_per_defect)


def write_mvtec(root: str | Path, part: Any, defect_types: Sequence[str], n_train: int, n_test_good: int,
                n_per_defect: int) -> Path:
    """Write renders of ``part`` (a synthetic part with ``render(index, defect)``) as an MVTec AD style
    category. Train and test parts come from disjoint index ranges of the same lot. Returns ``root``."""
    from station.core.images import save_image

    root = Path(root)
    for i in range(n_train):
        save_image(root / "train" / GOOD / f"{i:03d}.png", part.render(i).image)
    base = 1_000_000  # test parts are never training parts
    for i in range(n_test_good):
        save_image(root / "test" / GOOD / f"{i:03d}.png", part.render(base + i).image)
    for k, kind in enumerate(defect_types):
        for i in range(n_per_defect):
            sample = part.render(base + (k + 1) * 10_000 + i, kind)
            save_image(root / "test" / kind / f"{i:03d}.png", sample.image)
            save_image(root / "ground_truth" / kind / f"{i:03d}_mask.png", sample.mask.astype(np.uint8) * 255)
    return root

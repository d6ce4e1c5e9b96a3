"""The variation model's free-pose mode (``align="shape"``): parts lying at any angle, anywhere.

Where the rigid mode compares every image with the pose of a reference *image*, this mode cuts each
part out of its image into a **model frame**: a square centred on the part, turned into the part's
taught orientation, at the resolution of the original image as far as ``work_side`` allows (a small
part in a large frame keeps its detail instead of being shrunk with the whole image). Statistics,
local flow and deviations are then computed in that frame, and maps are warped back into the image.

Teaching (:func:`teach_free_pose`):

1. Each training image (reduced so its longer side is ``work_side``) is segmented by its difference
   from the border's background (:func:`~station.detectors.variation_pose.foreground_mask`). The
   reference is the training image whose part lies nearest the image centre without touching the
   border; its part defines the first shape model and the frame size (the part's largest radius
   plus a margin).
2. Every image is located: shape-based matching over the full circle gives candidate poses, ECC in
   the model frame refines each promising candidate to sub-pixel accuracy, the best correlation wins
   (the rule for symmetric parts, see :mod:`station.detectors.variation_pose`).
3. The **part mask** is where at least half of the aligned training images show the part (their
   segmentations, warped into the frame), holes filled; the background around a small part, which
   changes from image to image, is never learned or inspected. It is stored in the recipe.
4. With ``align_passes`` >= 2 the shape model and the ECC reference are rebuilt from the *mean*
   aligned part inside that mask, and all images are located again against it.

Pixels of the frame that fall outside an image (a part at the border) are left out of the statistics
and get no anomaly score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.detectors.variation_pose import (
    Pose,
    ShapeModel,
    _angle_gap,
    centroid,
    foreground_mask,
    masked_correlation,
    moment_candidates,
    part_masks,
    refine_ecc,
    rotation,
)

POSE_METHODS = ("shape", "moments")
RIVAL_MARGIN = 0.85  # candidates scoring at least this share of the best are refined and compared
FRAME_MARGIN = 1.15  # frame radius = part radius x this + a few pixels


def gray_f32(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    g = a.astype(np.float32) if a.ndim == 2 else a[..., :3].astype(np.float32).mean(axis=2)
    return g


def work_gray(image: np.ndarray, factor: float) -> np.ndarray:
    g = gray_f32(image)
    if factor < 1.0:
        h, w = g.shape
        g = cv2.resize(g, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return g


@dataclass
class Framing:
    """The model frame: ``side`` pixels square, ``scale`` original pixels per frame pixel;
    ``factor`` = work pixels per original pixel (images reduced to ``work_side``)."""

    side: int
    scale: float
    factor: float

    def transform(self, pose: Pose, origin_offset: np.ndarray) -> np.ndarray:
        """Frame -> original-image coordinates for a pose of the shape model (work pixels).
        ``origin_offset``: where the model origin lies relative to the frame centre (frame px)."""
        r = rotation(pose.angle_deg) * self.scale
        q0 = np.full(2, (self.side - 1) / 2.0) + origin_offset
        c = (np.array([pose.x, pose.y]) + 0.5) / self.factor - 0.5
        return np.hstack([r, (c - r @ q0)[:, None]]).astype(np.float64)

    def crop(self, image: np.ndarray, matrix: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """``image`` resampled into the frame (anti-aliased when the frame is coarser)."""
        m = np.asarray(matrix, np.float64).copy()
        src = np.asarray(image)
        k = int(math.floor(math.log2(self.scale))) if self.scale >= 2.0 else 0
        for _ in range(k):  # image pyramid: level coordinates x_l = (x + 0.5) / 2 - 0.5
            src = cv2.pyrDown(src)
            m = m * 0.5
            m[:, 2] += -0.25
        out = cv2.warpAffine(src, m, (self.side, self.side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=border)
        return out.reshape((self.side, self.side) + np.asarray(image).shape[2:])

    def valid(self, image_shape: tuple[int, int], matrix: np.ndarray) -> np.ndarray:
        """Frame pixels that come from inside the image."""
        ys, xs = np.mgrid[0:self.side, 0:self.side].astype(np.float64)
        x = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
        y = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
        h, w = image_shape
        return (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)

    def back(self, frame_map: np.ndarray, matrix: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
        """A map computed in the frame, warped into the original image (zero outside the frame)."""
        h, w = image_shape
        return cv2.warpAffine(frame_map, np.asarray(matrix, np.float64), (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer ∘ inner`` for 2x3 affine matrices."""
    o = np.vstack([np.asarray(outer, np.float64), [0, 0, 1]])
    i = np.vstack([np.asarray(inner, np.float64), [0, 0, 1]])
    return (o @ i)[:2]


@dataclass
class Location:
    matrix: np.ndarray  # frame -> original image
    score: float  # shape score of the winning candidate
    correlation: float  # ECC correlation in the frame (of the unrefined pose where ECC failed)
    rivals: int  # candidates close to the best (a symmetric or near-symmetric part)


@dataclass
class FreeAligner:
    """Locates a part in an image: candidates from the shape model (or moments), ECC in the frame."""

    model: ShapeModel
    framing: Framing
    origin_offset: np.ndarray  # model origin relative to the frame centre, frame pixels
    reference: np.ndarray  # frame, gray float32: the ECC template
    mask: np.ndarray | None  # frame, bool: where ECC compares
    method: str = "shape"
    max_candidates: int = 3

    def __post_init__(self) -> None:
        self._ecc_mask = None
        self._axis = 0.0
        if self.mask is not None:
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
            self._ecc_mask = cv2.dilate(self.mask.astype(np.uint8), k) > 0
            axis = moment_candidates(self.mask)
            self._axis = axis[0].angle_deg if axis else 0.0

    def normalise(self, frame: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``frame`` (uint8, gray or colour) scaled to the reference's light level: the median gray
        value on the part, which a local defect hardly moves. Free parts lie anywhere under a light
        that is not uniform, and each part's level would otherwise widen every pixel's tolerance."""
        if self.mask is None:
            return frame
        sel = self.mask & valid
        if sel.sum() < 16:
            return frame
        gray = gray_f32(frame)
        level = float(np.median(gray[sel]))
        target = float(np.median(self.reference[self.mask]))
        if level <= 1.0 or target <= 1.0:
            return frame
        return np.clip(frame.astype(np.float32) * (target / level) + 0.5, 0, 255).astype(np.uint8)

    def candidates(self, gray_work: np.ndarray) -> list[Pose]:
        if self.method == "moments":
            fg = foreground_mask(gray_work)
            if fg is not None:  # the image's axis minus the model's own axis (both directions)
                return [Pose(p.x, p.y, p.angle_deg - self._axis, 1.0) for p in moment_candidates(fg)]
        return self.model.find(gray_work, max_candidates=4)

    def locate(self, image: np.ndarray) -> Location:
        """The pose of the part in ``image`` (any size, the taught scale)."""
        gray = gray_f32(image)
        cands = self.candidates(work_gray(gray, self.framing.factor))
        if not cands:  # nothing like the part: look at the middle of the image (the map will say why)
            h, w = gray.shape
            centre = Pose((w * self.framing.factor - 1) / 2, (h * self.framing.factor - 1) / 2, 0.0, 0.0)
            return Location(self.framing.transform(centre, self.origin_offset), 0.0, -1.0, 0)
        rivals = [c for c in cands if c.score >= RIVAL_MARGIN * cands[0].score][: self.max_candidates]
        best: Location | None = None
        for c in rivals:
            m0 = self.framing.transform(c, self.origin_offset)
            frame = self.framing.crop(gray, m0)
            d, cc = refine_ecc(self.reference, frame, self._ecc_mask)
            if cc > -1:
                loc = Location(compose(m0, d), c.score, cc, len(rivals) - 1)
            else:  # ECC gave up (a damaged part): keep the shape pose, judged by its plain correlation
                loc = Location(m0, c.score, masked_correlation(self.reference, frame, self.mask), len(rivals) - 1)
            if best is None or loc.correlation > best.correlation:
                best = loc
        assert best is not None
        return best


def _reference_index(masks: list[np.ndarray | None]) -> int:
    """The image whose part lies nearest the centre without touching the border, among those whose
    segmented part has a typical size (a failed segmentation is not a reference)."""
    areas = [int(m.sum()) for m in masks if m is not None]
    typical = float(np.median(areas)) if areas else 0.0
    best, best_d = 0, math.inf
    for i, m in enumerate(masks):
        if m is None or not 0.8 * typical <= m.sum() <= 1.25 * typical:
            continue
        h, w = m.shape
        touches = m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()
        x, y = centroid(m)
        d = math.hypot(x - (w - 1) / 2, y - (h - 1) / 2) + (10.0 * max(h, w) if touches else 0.0)
        if d < best_d:
            best, best_d = i, d
    return best


def _fill_largest(mask: np.ndarray) -> np.ndarray | None:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    region = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    flood = np.pad(1 - region, 1, constant_values=1)
    cv2.floodFill(flood, None, (0, 0), 2)
    return flood[1:-1, 1:-1] != 2


def _part_mask(mean: np.ndarray, share: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The part in the model frame. In the *mean* aligned frame the part is sharp while the
    background, seen at a different place in every image, is averaged smooth -- so segmenting the
    mean against the frame's border finds thin ends (a screw's tip) that single segmentations miss.
    Where that fails, the pixels that at least half of the images' segmentations call part."""
    for candidate in (foreground_mask(mean), share >= 0.5):
        if candidate is None:
            continue
        found = _fill_largest(candidate)
        if found is not None and 16 <= found.sum() <= 0.8 * found.size:
            return found
    return fallback


@dataclass
class FreeTeach:
    aligner: FreeAligner
    frames: list[np.ndarray]  # uint8, frame size, the images' colour
    valid: list[np.ndarray]  # bool, frame size
    part_mask: np.ndarray  # bool, frame size
    locations: list[Location]


def teach_free_pose(images: list[np.ndarray], work_side: int, passes: int, method: str = "shape",
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                    done: int = 0, total: int = 0) -> FreeTeach:
    """Locate the part in every training image and cut it out into the model frame (see module)."""
    if method not in POSE_METHODS:
        raise ValueError(f"unknown pose method {method!r}; use one of {', '.join(POSE_METHODS)}")
    h, w = np.asarray(images[0]).shape[:2]
    factor = min(1.0, work_side / max(h, w))
    grays = [gray_f32(im) for im in images]
    works = [work_gray(g, factor) for g in grays]
    fgs = part_masks(works)
    ref = _reference_index(fgs)
    region = fgs[ref] if fgs[ref] is not None else np.ones(works[ref].shape, bool)
    origin = centroid(region)
    ys, xs = np.nonzero(region)
    radius = float(np.hypot(xs - origin[0], ys - origin[1]).max())
    diameter = 2.0 * (radius * FRAME_MARGIN + 4.0) / factor  # original pixels
    side = int(min(work_side, math.ceil(diameter)))
    framing = Framing(side=side, scale=diameter / side, factor=factor)
    model = ShapeModel(works[ref], region, origin)
    zero = np.zeros(2)
    m_ref = framing.transform(Pose(origin[0], origin[1], 0.0, 1.0), zero)
    ref_frame = framing.crop(grays[ref], m_ref)
    work_to_frame_mask = region.astype(np.float32)
    ref_mask = framing.crop(cv2.resize(work_to_frame_mask, (w, h), interpolation=cv2.INTER_LINEAR), m_ref,
                            border=cv2.BORDER_CONSTANT) >= 0.5
    aligner = FreeAligner(model, framing, zero, ref_frame, ref_mask, method)
    part_mask = ref_mask
    locations: list[Location] = []
    for p in range(max(1, passes)):
        locations = []
        acc = np.zeros((side, side), np.float64)
        cnt = np.zeros((side, side), np.float64)
        fg_acc = np.zeros((side, side), np.float64)
        for i, g in enumerate(grays):
            checkpoint(cancel)
            loc = aligner.locate(g)
            locations.append(loc)
            valid = framing.valid((h, w), loc.matrix)
            acc += np.where(valid, framing.crop(g, loc.matrix), 0.0)
            cnt += valid
            if fgs[i] is not None:
                fg_full = cv2.resize(fgs[i].astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
                fg_acc += framing.crop(fg_full, loc.matrix, border=cv2.BORDER_CONSTANT)
            done += 1
            report(progress, "aligning", done, total)
        mean = (acc / np.maximum(cnt, 1)).astype(np.float32)
        part_mask = _part_mask(mean, fg_acc / max(1, sum(f is not None for f in fgs)), part_mask)
        if p == passes - 1:
            break
        # the next pass matches against the mean part: no single image's noise or pose error
        f = framing.scale * factor  # work pixels per frame pixel
        tsize = max(8, round(side * f))
        template = cv2.resize(mean, (tsize, tsize), interpolation=cv2.INTER_AREA)
        tmask = cv2.resize(part_mask.astype(np.uint8), (tsize, tsize), interpolation=cv2.INTER_NEAREST) > 0
        c = (tsize - 1) / 2.0
        aligner = FreeAligner(ShapeModel(template, tmask, (c, c)), framing, zero, mean, part_mask, method)
    final_ref = (acc / np.maximum(cnt, 1)).astype(np.float32)
    aligner = FreeAligner(aligner.model, framing, zero, final_ref, part_mask, method)
    valid = [framing.valid((h, w), loc.matrix) for loc in locations]
    frames = [aligner.normalise(framing.crop(np.asarray(im), loc.matrix), v)
              for im, loc, v in zip(images, locations, valid, strict=True)]
    return FreeTeach(aligner, frames, valid, part_mask, locations)


def needs_free_pose(images: list[np.ndarray], work_side: int, max_rotation_deg: float,
                    sample: int = 8) -> tuple[bool, str]:
    """Whether a part needs the free-pose mode, from a sample of training images, and why.

    Only a *distinct* part qualifies: one that the background segmentation finds with a consistent
    size in most images, mostly clear of the image border (a bottle that fills the frame, a web or a
    texture does not). It then needs the mode when, in at least a quarter of the sampled images,
    the best match of the first image's shape model lies more than 10 % of the image side away or
    turned by more than ``max_rotation_deg`` -- *and* scores clearly better than the best match near
    the first image's pose (so a symmetric or repetitive part that need not move stays rigid)."""
    idx = np.unique(np.linspace(0, len(images) - 1, min(sample, len(images))).round().astype(int))
    h, w = np.asarray(images[0]).shape[:2]
    factor = min(1.0, work_side / max(h, w))
    works = [work_gray(images[i], factor) for i in idx]
    fgs = part_masks(works)
    found = [m for m in fgs if m is not None]
    areas = np.array([m.sum() for m in found], float)
    typical = float(np.median(areas)) if len(areas) else 0.0
    consistent = int(((areas >= 0.7 * typical) & (areas <= 1.4 * typical)).sum()) if len(areas) else 0
    clear = sum(not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()) for m in found)
    if consistent < 0.75 * len(works) or clear < 0.5 * len(works):
        return False, "no distinct part of a steady size stands clear of the background"
    ref = next(i for i, m in enumerate(fgs) if m is not None and 0.7 * typical <= m.sum() <= 1.4 * typical)
    origin = centroid(fgs[ref])
    model = ShapeModel(works[ref], fgs[ref], origin)
    side = max(works[0].shape)
    turned = moved = 0
    for i, g in enumerate(works):
        if i == ref:
            continue
        best = model.find(g, max_candidates=1)
        if not best:
            continue
        b = best[0]
        near = [p for p in model.find(g, max_candidates=8, angle_range=max_rotation_deg)
                if math.hypot(p.x - origin[0], p.y - origin[1]) <= 0.1 * side]
        if near and b.score <= near[0].score + 0.05:
            continue  # matches about as well where it was: it need not move
        moved += math.hypot(b.x - origin[0], b.y - origin[1]) > 0.1 * side
        turned += _angle_gap(b.angle_deg, 0.0) > max_rotation_deg
    n = max(1, len(works) - 1)
    if max(turned, moved) / n >= 0.25:
        return True, (f"{turned} of {n} sampled parts turned by more than {max_rotation_deg:g} degrees, "
                      f"{moved} moved by more than 10 % of the image")
    return False, f"parts keep their pose ({turned} of {n} sampled parts turned, {moved} moved)"

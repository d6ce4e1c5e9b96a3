"""Alignment for the variation model: known shifts and rotations are recovered, the smooth flow
absorbs slow distortions but not local defects, and bad input gives clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from station.detectors.alignment import (
    PhaseCorrelator,
    RigidAligner,
    apply_flow,
    scale_transform,
    smooth_flow,
    to_gray_u8,
    warp_to_reference,
)

SIZE = 128


def textured_part(seed: int = 3, size: int = SIZE) -> np.ndarray:
    """An asymmetric gray part (float32, 0..255): smooth texture, a bar and two holes on a disc."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 200.0, np.float32)
    c = size // 2
    cv2.circle(img, (c, c), int(0.4 * size), 90.0, -1)
    texture = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 2.0)
    part = np.zeros((size, size), np.uint8)
    cv2.circle(part, (c, c), int(0.4 * size), 1, -1)
    img += 25.0 * texture / texture.std() * part  # the background stays plain
    cv2.rectangle(img, (c - 30, c - 6), (c + 10, c + 2), 160.0, -1)
    cv2.circle(img, (c + 22, c - 20), 7, 20.0, -1)
    cv2.circle(img, (c - 15, c + 25), 4, 230.0, -1)
    return cv2.GaussianBlur(img, (0, 0), 1.0)


def posed(img: np.ndarray, angle: float, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    """``img`` rotated by ``angle`` degrees about its centre and shifted; returns (image, matrix)."""
    h, w = img.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE), m


def interior_error(a: np.ndarray, b: np.ndarray, margin: int = 20) -> float:
    return float(np.abs(a - b)[margin:-margin, margin:-margin].mean())


@pytest.mark.parametrize(("angle", "dx", "dy"), [(0.0, 0.0, 0.0), (6.5, 4.0, -3.0), (-13.0, -7.5, 5.25),
                                                 (2.0, 11.0, 0.5)])
def test_rigid_fit_recovers_known_rotation_and_shift(angle, dx, dy):
    ref = textured_part()
    moved, truth = posed(ref, angle, dx, dy)
    fit = RigidAligner(ref, "rigid", max_rotation_deg=20).estimate(moved)
    assert fit.refined
    assert fit.angle_deg == pytest.approx(angle, abs=0.25)
    # the fitted transform maps reference points where the true one does (within a pixel's tenth)
    pts = np.array([[20, 20, 1], [100, 30, 1], [64, 64, 1], [30, 110, 1]], np.float64).T
    assert np.abs(fit.matrix @ pts - truth @ pts).max() < 0.3
    aligned = warp_to_reference(moved, fit.matrix)
    assert interior_error(aligned, ref) < 0.15 * max(interior_error(moved, ref), 1.0)


def test_any_orientation_is_found_with_a_full_search():
    ref = textured_part()
    moved, _ = posed(ref, 137.0, 3.0, -2.0)
    assert RigidAligner(ref, "rigid", max_rotation_deg=180).estimate(moved).angle_deg == pytest.approx(137.0, abs=0.3)
    # a search limited to small rotations does not pretend to find it
    small = RigidAligner(ref, "rigid", max_rotation_deg=10).estimate(moved)
    assert abs(small.angle_deg - 137.0) > 30


def test_translation_mode_recovers_shift_without_rotating():
    ref = textured_part()
    moved, _ = posed(ref, 0.0, -9.0, 6.5)
    fit = RigidAligner(ref, "translation").estimate(moved)
    assert fit.angle_deg == 0.0
    assert fit.shift == pytest.approx((-9.0, 6.5), abs=0.1)


def test_no_alignment_is_the_identity():
    ref = textured_part()
    moved, _ = posed(ref, 5.0, 3.0, 3.0)
    fit = RigidAligner(ref, "none").estimate(moved)
    assert np.array_equal(fit.matrix, np.eye(2, 3, dtype=np.float32))


def test_alignment_ignores_brightness_and_contrast_changes():
    ref = textured_part()
    moved, _ = posed(ref, -4.0, 2.0, 5.0)
    fit = RigidAligner(ref).estimate(0.7 * moved + 40.0)
    assert fit.angle_deg == pytest.approx(-4.0, abs=0.25)
    assert fit.shift == pytest.approx(tuple(posed(ref, -4.0, 2.0, 5.0)[1][:, 2]), abs=0.3)


def test_phase_correlation_sign_and_repeatability():
    ref = textured_part()
    moved, _ = posed(ref, 0.0, 5.0, -3.0)
    pc = PhaseCorrelator(ref)
    first = pc.shift(moved)
    assert first[:2] == pytest.approx((5.0, -3.0), abs=0.3)
    assert all(pc.shift(moved) == first for _ in range(3))  # OpenCV 5.0's phaseCorrelate was not


def test_transform_scales_between_resolutions():
    ref = textured_part()
    _, m = posed(ref, 8.0, 6.0, -4.0)
    big = scale_transform(m, 2.0, 2.0)
    assert big[:, :2] == pytest.approx(m[:, :2])
    assert big[:, 2] == pytest.approx(2.0 * m[:, 2], abs=1e-4)


def test_errors_are_clear():
    ref = textured_part()
    with pytest.raises(ValueError, match="unknown alignment mode"):
        RigidAligner(ref, "affine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ in size"):
        RigidAligner(ref).estimate(ref[:100])


def test_smooth_flow_absorbs_a_slow_distortion_but_not_a_local_defect():
    ref = textured_part(size=160)
    h, w = ref.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # a slow, smooth distortion of up to 2 px (like parallax of a tilted part)
    fx = 2.0 * np.sin(xs / w * np.pi)
    fy = 1.5 * np.cos(ys / h * np.pi)
    distorted = cv2.remap(ref, xs - fx, ys - fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    defect = distorted.copy()
    cv2.circle(defect, (60, 100), 8, 255.0, -1)
    ref8 = to_gray_u8(ref)
    flow = smooth_flow(ref8, to_gray_u8(defect), sigma=8.0, max_shift=4.0)
    assert np.sqrt((flow ** 2).sum(axis=2)).max() <= 4.0 + 1e-4
    corrected = apply_flow(defect, flow)
    before = np.abs(defect - ref)
    after = np.abs(corrected - ref)
    outside = np.ones_like(ref, bool)
    cv2.circle(outside.view(np.uint8), (60, 100), 16, 0, -1)
    outside[:20] = outside[-20:] = False
    outside[:, :20] = outside[:, -20:] = False
    assert after[outside].mean() < 0.6 * before[outside].mean()  # the distortion is mostly gone
    assert after[95:106, 55:66].mean() > 0.8 * before[95:106, 55:66].mean()  # the defect is not

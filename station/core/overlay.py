"""Rendering results on images in the style of the MVTec AD paper's Figure 3: ground truth outlined
in red, detected defects outlined in green, and the anomaly heatmap beside it."""

from __future__ import annotations

import cv2
import numpy as np

from station.core.images import convert_color
from station.core.regions import DefectRegion

RED = (230, 30, 30)
GREEN = (40, 220, 40)


def heatmap_rgb(anomaly_map: np.ndarray, threshold: float, span: float = 2.0) -> np.ndarray:
    """Colour map of ``anomaly_map`` pinned to the threshold: 0 -> blue, the threshold -> the middle
    of the scale, ``span * threshold`` and above -> red, so good parts look calm on every image."""
    top = max(float(threshold) * span, 1e-12)
    scaled = np.clip(anomaly_map / top, 0.0, 1.0)
    u8 = (scaled * 255.0).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def draw_contours(image: np.ndarray, contours: list[np.ndarray], color: tuple[int, int, int],
                  thickness: int) -> np.ndarray:
    if contours:
        cv2.polylines(image, [c.reshape(-1, 1, 2).astype(np.int32) for c in contours], True, color,
                      thickness, cv2.LINE_AA)
    return image


def mask_contours(mask: np.ndarray) -> list[np.ndarray]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2) for c in contours]


def render_overlay(
    image: np.ndarray,
    anomaly_map: np.ndarray,
    threshold: float,
    regions: list[DefectRegion],
    ground_truth: np.ndarray | None = None,
    max_side: int = 512,
    alpha: float = 0.5,
) -> np.ndarray:
    """Two panels side by side: the image with ground truth (red) and detections (green), and the
    heatmap blended over the image. Returns RGB ``uint8``."""
    rgb = convert_color(image, "rgb").copy()
    h, w = rgb.shape[:2]
    thickness = max(2, round(max(h, w) / 300))
    # detections first and a little wider, so the ground truth drawn over them stays visible
    draw_contours(rgb, [r.contour for r in regions], GREEN, thickness + 1)
    if ground_truth is not None and ground_truth.any():
        draw_contours(rgb, mask_contours(ground_truth), RED, thickness)
    amap = anomaly_map if anomaly_map.shape[:2] == (h, w) else cv2.resize(anomaly_map, (w, h))
    heat = heatmap_rgb(amap, threshold)
    blended = cv2.addWeighted(convert_color(image, "rgb"), 1 - alpha, heat, alpha, 0)
    panel = np.hstack([rgb, np.full((h, max(4, w // 100), 3), 255, np.uint8), blended])
    scale = max_side / max(h, w)
    if scale < 1:
        panel = cv2.resize(panel, (round(panel.shape[1] * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return panel

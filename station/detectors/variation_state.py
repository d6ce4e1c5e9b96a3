"""The variation model as recipe data (:mod:`station.detectors.variation`): its configuration, its
learned arrays (levels, references, mask, the free-pose locator) and the checked rebuild from them.
Derived arrays (envelopes, divisors) are not stored; ``_prepare`` recomputes them on load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from station.detectors.variation_pose import ShapeModel
from station.detectors.variation_shape import Framing, FreeAligner

if TYPE_CHECKING:
    from station.detectors.variation import VariationModel


class VariationState:
    """The persistence methods of :class:`~station.detectors.variation.VariationModel` (a part of that class)."""

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "work_side": self.work_side,
            "align": self.align,
            "max_rotation_deg": self.max_rotation_deg,
            "pose_method": self.pose_method,
            "align_side": self.align_side,
            "align_passes": self.align_passes,
            "local_alignment": self.local_alignment,
            "flow_sigma": self.flow_sigma,
            "flow_max_shift": self.flow_max_shift,
            "statistic": self.statistic,
            "levels": self.levels,
            "tolerance_px": self.tolerance_px,
            "std_factor": self.std_factor,
            "abs_floor": self.abs_floor,
            "input_blur": self.input_blur,
            "texture": self.texture,
            "texture_sigma": self.texture_sigma,
            "map_blur": self.map_blur,
        }
        if self._align_chosen is not None:
            config["align_chosen"] = self._align_chosen  # what "auto" chose at teach-in
        if self._mask_spec == "polygons":
            config["mask"] = [np.asarray(p, dtype=np.float64).tolist() for p in self._mask_input]
        else:
            config["mask"] = self._mask_spec  # None, "auto" or "array" (the array lives in the state)
        return config

    def get_state(self) -> dict[str, np.ndarray]:
        if not self.is_fitted:
            raise RuntimeError("the variation model is not taught yet: nothing to save")
        assert self._image_shape is not None and self._reference is not None
        state: dict[str, np.ndarray] = {
            "image_shape": np.asarray(self._image_shape, dtype=np.int64),
            "reference": np.ascontiguousarray(self._reference, dtype=np.float32),
        }
        if self._reference_u8 is not None:
            state["flow_reference"] = np.ascontiguousarray(self._reference_u8, dtype=np.uint8)
        for k, (mean, std) in enumerate(zip(self._means, self._stds, strict=True)):
            state[f"level{k}.mean"] = np.ascontiguousarray(mean, dtype=np.float32)
            state[f"level{k}.std"] = np.ascontiguousarray(std, dtype=np.float32)
        if self._mask is not None:
            state["mask"] = self._mask.astype(np.uint8)
        if self._free is not None:
            state.update(_free_pose_state(self._free))
        return state

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, np.ndarray], **runtime: Any) -> VariationModel:
        """Rebuild a taught model (``runtime`` options such as ``device`` are accepted and ignored:
        the variation model runs on the CPU)."""
        from station.detectors.variation import VARIATION_ALIGN_MODES

        config = dict(config)
        mask_config = config.pop("mask", None)
        chosen = config.pop("align_chosen", None)
        if chosen is not None and (config.get("align") != "auto" or chosen not in VARIATION_ALIGN_MODES
                                   or chosen == "auto"):
            raise ValueError(f"the recipe's variation model records an invalid alignment choice {chosen!r}")
        if mask_config == "array" and "mask" not in state:
            raise ValueError("the recipe's variation model names a stored mask array but holds none")
        try:  # "auto" and "array" masks come from the state, not from the images
            model = cls(**config, mask=None if mask_config in ("auto", "array") else mask_config)
        except TypeError as exc:
            raise ValueError(f"the recipe's variation-model parameters are not understood ({exc})") from exc
        if mask_config in ("auto", "array"):
            model._mask_spec = mask_config
        model._align_chosen = chosen
        missing = [k for k in ("image_shape", "reference", "level0.mean", "level0.std") if k not in state]
        if missing:
            raise ValueError(f"the recipe's variation-model state lacks {', '.join(missing)}")
        shape = tuple(int(v) for v in np.asarray(state["image_shape"]).ravel())
        if len(shape) != 3 or shape[2] not in (1, 3):
            raise ValueError(f"the recipe's variation model has an invalid image shape {shape}")
        model._image_shape = shape  # type: ignore[assignment]
        model._channels = shape[2]
        model._reference = np.asarray(state["reference"], dtype=np.float32)
        if model.local_alignment and model.alignment != "shape":
            if "flow_reference" not in state:
                raise ValueError("the recipe's variation model uses local alignment but has no flow reference")
            model._reference_u8 = np.asarray(state["flow_reference"], dtype=np.uint8)
        k = 0
        means, stds = [], []
        while f"level{k}.mean" in state:
            if f"level{k}.std" not in state:
                raise ValueError(f"the recipe's variation-model state lacks level{k}.std")
            means.append(np.asarray(state[f"level{k}.mean"], dtype=np.float32))
            stds.append(np.asarray(state[f"level{k}.std"], dtype=np.float32))
            if means[-1].shape != stds[-1].shape or means[-1].ndim != 3:
                raise ValueError(f"the recipe's variation-model level {k} has inconsistent arrays")
            k += 1
        model._means, model._stds = means, stds
        if model.alignment == "shape":
            model._free = _free_pose_from_state(state, model.pose_method, model._reference)
        if "mask" in state:
            model._mask = np.asarray(state["mask"]).astype(bool)
            if model._mask.shape != means[0].shape[:2]:
                raise ValueError("the recipe's variation-model mask does not match its statistics")
        model._prepare()
        return model


def _free_pose_state(free: FreeAligner) -> dict[str, np.ndarray]:
    """The free-pose locator as plain arrays (its shape model is rebuilt from the template)."""
    f = free.framing
    return {
        "pose.template": np.ascontiguousarray(free.model.template, dtype=np.float32),
        "pose.region": free.model.region.astype(np.uint8),
        "pose.origin": np.asarray(free.model.origin, dtype=np.float64),
        "pose.framing": np.asarray([f.side, f.scale, f.factor], dtype=np.float64),
        "pose.part_mask": np.asarray(free.mask, dtype=np.uint8),
    }


def _free_pose_from_state(state: dict[str, np.ndarray], method: str, reference: np.ndarray) -> FreeAligner:
    keys = ("pose.template", "pose.region", "pose.origin", "pose.framing", "pose.part_mask")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"the recipe's variation model (free pose) lacks {', '.join(missing)}")
    side, scale, factor = (float(v) for v in np.asarray(state["pose.framing"]).ravel()[:3])
    part_mask = np.asarray(state["pose.part_mask"]).astype(bool)
    if reference.shape != (round(side), round(side)) or part_mask.shape != reference.shape:
        raise ValueError("the recipe's variation model (free pose) has a frame that does not match its reference")
    origin = tuple(float(v) for v in np.asarray(state["pose.origin"]).ravel()[:2])
    model = ShapeModel(np.asarray(state["pose.template"], np.float32),
                       np.asarray(state["pose.region"]).astype(bool), origin)  # type: ignore[arg-type]
    return FreeAligner(model, Framing(round(side), scale, factor), np.zeros(2), reference, part_mask, method)

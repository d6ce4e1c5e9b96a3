"""Driving the teach-in wizard in GUI tests: a part named, synthetic good parts added, a detector
chosen -- the steps before the one a test is about. Import only from tests that need Qt."""

from __future__ import annotations

from station.acquisition.synthetic import SyntheticPart


def wizard_at_detector(qtbot, ctx, kind: str, n_images: int, name: str = "bracket", timeout: int = 10000):
    """A shown :class:`~station.gui.teach.TeachWizard` on its detector page with ``kind`` chosen (and
    its page complete), after ``n_images`` parts of the synthetic lot (seed 3, 96 px) were added."""
    from station.gui.teach import TeachWizard

    w = TeachWizard(ctx)
    qtbot.addWidget(w)
    w.show()
    w.part_page.name.setText(name)
    w.next()
    part = SyntheticPart(seed=3, size=96)
    for i in range(n_images):
        w.samples_page.add_frame_image(part.render(i).image, f"part {i}")
    w.next()
    w.detector_page.select_kind(kind)
    qtbot.waitUntil(w.detector_page.isComplete, timeout=timeout)
    return w

"""Application services the station window needs, free of Qt so they are testable headless.

- :mod:`station.app.paths` -- where the per-user files live (settings, models, audit log)
- :mod:`station.app.settings` -- versioned settings; a bad file is logged and the app still starts
- :mod:`station.app.engineer` -- the engineer-mode password, stored hashed
- :mod:`station.app.audit` -- the append-only audit log of threshold, area and recipe changes
- :mod:`station.app.demo` -- teaching the synthetic demo part on first start
- :mod:`station.app.recipes` -- listing and re-tuning the recipes of the models folder
- :mod:`station.app.teach_session` -- the one model the teach-in wizard's pages share
- :mod:`station.app.review` -- scoring a data set for the review mode
- (the shift's counters are the live layer's: :mod:`station.live.shift`)
"""

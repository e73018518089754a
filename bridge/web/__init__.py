"""The control panel (issue 15): a page to watch, drive and tune a running bridge, served over
HTTP and a WebSocket by aiohttp on the bridge's own event loop (README, "Control panel").

Imported only when the panel is on: a bridge without ``web`` never imports aiohttp. The page is
plain HTML, JavaScript and CSS in ``static/`` (package data; no build step, nothing fetched
from elsewhere). ``attach_panel`` adds the panel to a bridge as one more source.
"""

from __future__ import annotations

from vadbridge.config import BridgeConfig
from vadbridge.daemon import Bridge
from vadbridge.inputs import source_rate_limiter
from vadbridge.reload import Reloader
from vadbridge.web.backend import BridgeBackend, Face, PanelBackend
from vadbridge.web.server import ControlPanel, page_address
from vadbridge.web.tuning import Change, SaveOutcome, TuneOutcome, Tuner

__all__ = [
    "BridgeBackend",
    "ControlPanel",
    "Face",
    "PanelBackend",
    "SaveOutcome",
    "TuneOutcome",
    "Tuner",
    "attach_panel",
    "page_address",
]


def attach_panel(bridge: Bridge, config: BridgeConfig, reloader: Reloader) -> ControlPanel:
    """A panel for ``bridge`` (built from ``config``; ``config.web`` says where it listens),
    added to its sources: ``vadbridge run`` binds it with the other listeners and the bridge
    runs and supervises it. Changes from the page go through ``reloader`` (its file is the one
    Save writes beside)."""

    async def apply(change: Change) -> str | None:
        return (await reloader.apply(change, origin="control panel")).error

    tuner = Tuner(lambda: reloader.config, apply, reloader.path)
    panel = ControlPanel(config.web, BridgeBackend(bridge, tuner), bridge.input_stats,
                         input_limiter=source_rate_limiter(config.limits.rate_limit_per_source))
    bridge.sources.append(panel)
    return panel

"""SIGHUP: re-read the config file and apply what can change without dropping the stream.

The control panel's changes take the same path (``Reloader.apply``): a whole candidate config,
checked and swapped in exactly as a re-read file would be.

The new file is validated in full and its new sinks are built (off the event loop: resolving a
host may block) before anything running is touched; a bad file is rejected with the loader's
one-line reason (file:line: key: expected, got) and the running config stays. The swap itself is
one synchronous step on the event loop (``Bridge.reconfigure``), so it lands between two frames;
the outputs it adds are supervised by the bridge like those present at start.

What a reload applies:
- ``outputs``: an output whose settings did not change keeps its sink (it never misses a frame);
  a new output gets a new sink; a removed output gets one neutral frame and is closed. A
  ``record`` output whose path a running recording already writes keeps that recording's sink,
  rebound to its (new) avatar: the take goes on in the same file. Opening a second sink would
  truncate the file under the old writer (NUL bytes and interleaved rows), and waiting for the
  old writer to close first would still truncate the take so far.
- ``smoothing`` (time constants, space, idle_timeout_s): the avatar table and its smoothed state
  stay, so a settled face does not move; a space switch keeps the smoothed VAD
  (``Animator.set_space``).
- ``liveliness`` (blinks and breathing on, off or changed): the blink clocks start again, and
  every bound face is sent on the next frame, so none stays mid-blink.
- ``idle_refresh_hz``, ``stats_interval_s`` and ``log_level`` (unless ``-v`` forced debug).

What needs a restart (logged; the running value stays): ``inputs`` (sockets, subscriptions),
``model``, ``avatars`` (table capacity, shard), ``limits`` (read by the sources), ``web`` (the
control panel's listener), ``pacing`` (the pacer's kernel timer is made with the frame clock)
and ``frame_rate`` (the frame clock's ``time_s = frame * period`` would jump, and receivers such
as Live Link read frame numbers as a timeline).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from vadbridge.config import BridgeConfig, ConfigError, RecordOutputConfig, load_config
from vadbridge.core.avatars import AvatarLimitError
from vadbridge.daemon import Binding, Bridge, Sink
from vadbridge.wiring import WiringError, build_sink, live_settings, owned_outputs

__all__ = ["NEEDS_RESTART", "RELOADABLE", "ReloadResult", "Reloader"]

log = logging.getLogger("vadbridge.reload")
_T = TypeVar("_T")

RELOADABLE = ("outputs", "smoothing", "liveliness", "idle_refresh_hz", "stats_interval_s",
              "log_level")
NEEDS_RESTART = ("frame_rate", "pacing", "inputs", "model", "avatars", "limits", "web")


@dataclass(frozen=True)
class ReloadResult:
    """What one reload did. ``error`` set = rejected (nothing changed)."""

    applied: bool
    changed: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()
    error: str | None = None


class _Rejected(Exception):
    pass


class Reloader:
    """Reloads ``path`` into a running ``bridge`` whose current config is ``config``.

    ``prepare`` re-applies what the command line overrode (``--fps``, ``--osc-in``...), so a
    reload does not undo flags. ``request()`` is the signal handler; ``reload()`` does the work;
    ``apply()`` takes a change from elsewhere (the control panel). ``path`` None: the bridge
    runs on the built-in defaults, there is no file to reload (``apply`` still works).
    """

    def __init__(
        self,
        bridge: Bridge,
        path: Path | None,
        config: BridgeConfig,
        *,
        prepare: Callable[[BridgeConfig], BridgeConfig] = lambda config: config,
        keep_log_level: bool = False,
    ) -> None:
        self.bridge = bridge
        self.path = path
        self.config = config
        self.prepare = prepare
        self.keep_log_level = keep_log_level
        self.reloads = 0
        self.rejected = 0
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    def request(self, then: Callable[[], None] | None = None) -> None:
        """Schedule a reload on the running loop (safe to call from a signal handler);
        ``then()`` runs when it has been applied or rejected."""
        self._keep(asyncio.get_running_loop().create_task(self._reload_then(then),
                                                          name="config reload"))

    async def _reload_then(self, then: Callable[[], None] | None) -> None:
        cancelled = False
        try:
            await self.reload()
        except asyncio.CancelledError:  # the bridge is shutting down: nothing to report
            cancelled = True
            raise
        finally:
            if then is not None and not cancelled:
                then()

    async def reload(self) -> ReloadResult:
        async with self._lock:  # two quick SIGHUPs: the second reload sees the first's result
            try:
                result = await self._reload()
            except _Rejected as rejected:
                self.rejected += 1
                log.error("config reload rejected, keeping the running config: %s", rejected)
                return ReloadResult(applied=False, error=str(rejected))
            self.reloads += 1
            return result

    async def apply(self, change: Callable[[BridgeConfig], BridgeConfig], *,
                    origin: str) -> ReloadResult:
        """Apply ``change(running config)``, a whole validated config (it may raise
        ``ConfigError``), as a reload of a file would be: the same checks, the same swap.
        ``change`` runs under the reload lock, so it sees what a SIGHUP just applied."""
        async with self._lock:
            try:
                try:
                    new = change(self.config)
                except ConfigError as error:
                    raise _Rejected(str(error)) from None
                return await self._apply(new, origin)
            except _Rejected as rejected:
                log.error("%s: change rejected, keeping the running config: %s", origin, rejected)
                return ReloadResult(applied=False, error=str(rejected))

    async def _reload(self) -> ReloadResult:
        path = self.path
        if path is None:
            raise _Rejected("no config file to reload: the bridge runs on the built-in defaults")
        try:
            new = await _off_the_loop(lambda: self.prepare(load_config(path)))
        except ConfigError as error:
            raise _Rejected(str(error)) from None
        return await self._apply(new, str(path))

    async def _apply(self, new: BridgeConfig, origin: str) -> ReloadResult:
        """Swap in ``new`` (from the file, or a change from ``origin``) where it differs."""
        old = self.config
        needs_restart = tuple(n for n in NEEDS_RESTART if getattr(old, n) != getattr(new, n))
        # What actually runs: the new reloadable settings, the old everything else.
        effective = dataclasses.replace(new, **{n: getattr(old, n) for n in needs_restart})
        changed = tuple(n for n in RELOADABLE if getattr(old, n) != getattr(effective, n))
        if needs_restart:
            log.warning(
                "config reload: %s changed in %s; that needs a restart (kept the running %s)",
                ", ".join(needs_restart), origin, "settings" if len(needs_restart) > 1
                else "setting",
            )  # fmt: skip
        kept, built = await self._build_outputs(old, effective, origin)
        removed = len(self.bridge.bindings) - len(kept)
        if self.bridge.stopping:  # shutdown began while the new outputs were being built
            _close_all(built.values())
            raise _Rejected(f"{origin}: the bridge is stopping")
        self._swap(old, effective, kept, built, origin)
        self.config = effective
        log.info("config reloaded from %s: %s", origin,
                 _describe(old, effective, changed, len(kept), len(built), removed))
        return ReloadResult(applied=True, changed=changed, needs_restart=needs_restart)

    async def _build_outputs(
        self, old: BridgeConfig, new: BridgeConfig, origin: str
    ) -> tuple[dict[int, Binding], dict[int, Sink]]:
        """New-output index -> reused binding (same config entry, or a recording of the same
        path, to be rebound), and new-output index -> freshly built sink; only the outputs this
        instance owns (see wiring.owned_outputs)."""
        unused = list(self.bridge.bindings)
        kept: dict[int, Binding] = {}
        to_build = []
        owned = owned_outputs(new)
        for index, output in owned:
            match = next((b for b in unused if b.config == output), None)
            if match is not None:
                kept[index] = match
                unused.remove(match)
        for index, output in owned:
            if index in kept:
                continue
            match = next((b for b in unused if _same_recording(b.config, output)), None)
            if match is None:
                to_build.append((index, output))
            else:
                kept[index] = match
                unused.remove(match)
        if not to_build:  # the same outputs (a change of smoothing, say): no thread needed
            return kept, {}
        return kept, await _off_the_loop(
            lambda: _build_sinks(to_build, new, origin),
            discard=lambda built: _close_all(built.values()),
        )

    def _swap(self, old: BridgeConfig, new: BridgeConfig, kept: dict[int, Binding],
              built: dict[int, Sink], origin: str) -> None:
        """Runs on the loop with no await inside: the frame loop sees all of it or none."""
        bridge = self.bridge
        bindings: list[Binding] = []
        for index in sorted((*kept, *built)):
            output = new.outputs[index]
            binding = kept.get(index)
            if binding is not None and binding.config == output:
                bindings.append(binding)
                continue
            try:
                row = bridge.table.row(output.avatar)
            except AvatarLimitError as error:
                _close_all(built.values())
                raise _Rejected(f"{origin}: outputs[{index}].avatar: {error}") from None
            if binding is None:
                bindings.append(Binding(built[index], row, output))
            else:  # a recording rebound to another avatar: same sink, same file, new row
                bindings.append(Binding(binding.sink, row, output))
        bridge.reconfigure(live_settings(new), bindings)
        if not self.keep_log_level and new.log_level != old.log_level:
            logging.getLogger().setLevel(new.log_level.upper())

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _off_the_loop(
    work: Callable[[], _T], *, discard: Callable[[_T], None] | None = None
) -> _T:
    """``work()`` on its own daemon thread, awaited.

    Not ``asyncio.to_thread``: ``asyncio.run`` joins the default executor's threads at exit, so
    a reload stuck in a slow DNS lookup would keep a SIGTERMed daemon alive; nobody joins a
    daemon thread. A result that arrives after the await was cancelled goes to ``discard``.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(result: object, error: BaseException | None) -> None:  # on the loop
        if future.cancelled():
            if error is None and discard is not None:
                discard(cast(_T, result))
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(cast(_T, result))

    def run() -> None:
        result: object = None
        error: BaseException | None = None
        try:
            result = work()
        except BaseException as failure:  # handed to the awaiting task
            error = failure
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the process is stopping
            if error is None and discard is not None:
                discard(cast(_T, result))

    threading.Thread(target=run, name="config reload", daemon=True).start()
    return await future


def _build_sinks(
    outputs: list[tuple[int, Any]], config: BridgeConfig, origin: str
) -> dict[int, Sink]:
    """Runs off the loop (resolving a host may block)."""
    built: dict[int, Sink] = {}
    for index, output in outputs:
        try:
            built[index] = build_sink(output, config)
        except (WiringError, OSError, ValueError) as error:
            _close_all(built.values())
            raise _Rejected(f"{origin}: outputs[{index}]: {error}") from None
    return built


def _same_recording(old: object, new: object) -> bool:
    """Both are record outputs of one file (paths are stored resolved)."""
    return (isinstance(old, RecordOutputConfig) and isinstance(new, RecordOutputConfig)
            and old.path == new.path)


def _close_all(sinks: Any) -> None:
    for sink in sinks:
        sink.close()


def _describe(old: BridgeConfig, new: BridgeConfig, changed: tuple[str, ...],
              kept: int, built: int, removed: int) -> str:
    if not changed:
        return "no changes"
    parts = []
    if "outputs" in changed:
        parts.append(f"outputs {kept} kept, {built} new, {removed} removed")
    if "smoothing" in changed:
        s = new.smoothing
        times = (f"tau_ms={s.tau_ms:g}" if s.tau_ms is not None
                 else f"attack_ms={s.attack_ms:g} release_ms={s.release_ms:g}")
        parts.append(f"smoothing {times} space={s.space} idle_timeout_s={s.idle_timeout_s:g}")
    if "liveliness" in changed:
        lively = new.liveliness
        parts.append(f"liveliness blink={str(lively.blink).lower()} "
                     f"breathing={str(lively.breathing).lower()}")
    if "stats_interval_s" in changed:
        parts.append(f"stats_interval_s={new.stats_interval_s:g}")
    if "log_level" in changed:
        parts.append(f"log_level={new.log_level}")
    return "; ".join(parts)

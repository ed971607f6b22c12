"""Display timings: first display of a big frame with automatic levels (drawn from a decimated copy; the
binned pyramid follows in a background thread after the first paint, timed separately), a level change,
and the app's start to its first painted window; pyqtgraph's own ImageView and a full-frame ImageItem
are the peers measured in the same run.

    QT_QPA_PLATFORM=offscreen python -m benchmarks.display
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def best(function, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def best_of(function, after, repeats: int = 3) -> float:
    """Like best, with ``after`` run untimed after each repeat (e.g. waiting for background work)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
        after()
    return min(times)


def frame(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    data = rng.normal(1000, 30, (n, n)).astype(np.float32)
    data[rng.integers(0, n, 500), rng.integers(0, n, 500)] = 30000  # stars, crudely
    return data


def main() -> int:
    import pyqtgraph as pg
    from PyQt6.QtWidgets import QApplication

    from ccdgui.model import display
    from ccdgui.qt.image_view import ImageView, lookup_table

    app = QApplication.instance() or QApplication([])
    lut = lookup_table("linear", "grey")
    rows = []
    for n in (4096, 8192):
        data = frame(n)
        ours = ImageView("bench")
        ours.resize(900, 900)
        ours.show()
        app.processEvents()

        def first_show(view=ours, data=data):
            view.data = None
            view.show_frame(data, "x", display.interval_limits(data, display.DisplayState()), lut)
            app.processEvents()
            view.image.render()
            view.grab()

        def wait_ready(view=ours):
            while not view.is_ready:
                app.processEvents()
                time.sleep(0.001)

        def first_to_full(view=ours, data=data):
            first_show()
            wait_ready()
            view.image.render()
            view.grab()


        counter = iter(range(10**6))

        def level_change(view=ours, counter=counter):
            view.set_levels((900.0 + next(counter) % 7, 1100.0))
            view.image.render()
            view.grab()

        first = best_of(first_show, wait_ready, 3)
        full = best(first_to_full, 3)
        change = best(level_change)
        peer_view = pg.ImageView()
        peer_view.resize(900, 900)
        peer_view.show()
        app.processEvents()

        def peer_first(view=peer_view, data=data):
            view.setImage(data, autoLevels=True)
            view.imageItem.render()
            view.grab()

        item = peer_view.getImageItem()

        def peer_change(item=item, view=peer_view, counter=counter):
            item.setLevels((900.0 + next(counter) % 7, 1100.0))
            item.render()
            view.grab()

        peer_first_s = best(peer_first, 3)
        peer_change_s = best(peer_change)
        rows.append(f"| first display of a {n}² frame with automatic levels | {first * 1000:.0f} ms | "
                    f"pyqtgraph ImageView.setImage(autoLevels) {peer_first_s * 1000:.0f} ms | "
                    f"{peer_first_s / first:.1f}× |")
        rows.append(f"| first display of a {n}² frame, then its full-resolution pyramid (background) | "
                    f"{full * 1000:.0f} ms | | |")
        rows.append(f"| level change on a {n}² frame, redrawn | {change * 1000:.1f} ms | "
                    f"full-frame ImageItem {peer_change_s * 1000:.1f} ms | {peer_change_s / change:.1f}× |")
        ours.close()
        peer_view.close()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ccdgui", "--smoke-test"], capture_output=True, text=True,
                          env=env)
    wall = time.perf_counter() - started
    shown = next((part for part in done.stdout.split(";") if "window shown" in part), "?").strip()
    rows.append(f"| app start to first painted window (smoke test: {shown}) | whole smoke test "
                f"{wall:.2f} s | | |")
    print("| work | ccdgui | peer | ratio |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

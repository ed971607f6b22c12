"""Row sources: stored values decoded one way (whole frames, lazy frames, bands, the compiled kernel)
to float32(float64(stored) × BSCALE + BZERO), exactly; reads safe from any thread; descriptors bounded."""

import os
import random
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.model import combine as engine
from ccdgui.model import fitsio
from ccdgui.model import rows as row_sources
from ccdgui.model.combine import CombineOptions
from ccdgui.model.rows import Decoding, DescriptorPool, FrameError, RawRows, read_at

from .stacks import assert_file_combines_equal_on_both_paths

STORED = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
SCALINGS = ["none", "unsigned", "scaled", "blank"]


def write_fits(path, stored: np.ndarray, bitpix: int, **cards) -> None:
    """A primary-HDU FITS file holding ``stored`` exactly as given (no scaling by any library)."""
    header = [fits.Card("SIMPLE", True), fits.Card("BITPIX", bitpix), fits.Card("NAXIS", 2),
              fits.Card("NAXIS1", stored.shape[1]), fits.Card("NAXIS2", stored.shape[0]),
              fits.Card("IMAGETYP", "LIGHT"), fits.Card("EXPTIME", 1.0)]
    header += [fits.Card(key, value) for key, value in cards.items()]
    text = "".join(card.image for card in header) + "END".ljust(80)
    data = np.ascontiguousarray(stored, dtype=STORED[bitpix]).tobytes()
    with open(path, "wb") as handle:
        handle.write(text.encode("ascii").ljust(-(-len(text) // 2880) * 2880, b" "))
        handle.write(data + b"\0" * (-len(data) % 2880))


def stored_values(bitpix: int, seed: int = 0) -> np.ndarray:
    """600 stored values covering a type: its extremes, values near its middle and zero, random ones."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(STORED[bitpix]).newbyteorder("=")
    if dtype.kind == "f":
        values = rng.normal(0, 1, 600) * 10.0 ** rng.integers(-8, 30, 600)
        values[:6] = [0.0, -0.0, 1.5, -2.25, np.nan, 3e29]
        return values.astype(dtype).reshape(6, 100)
    info = np.iinfo(dtype)
    middle = (int(info.min) + int(info.max) + 1) // 2
    special = [info.min, info.max, info.min + 1, info.max - 13, 0, 1, -1, 13, -13, middle, middle + 13,
               middle - 13, middle + 1, middle - 1]
    special = [v for v in special if info.min <= v <= info.max]
    values = rng.integers(int(info.min), int(info.max), 600, dtype=dtype, endpoint=True)
    values[:len(special)] = special
    return values.reshape(6, 100)


def scaling(bitpix: int, name: str) -> dict:
    if name == "unsigned":
        return {"BZERO": 2 ** (abs(bitpix) - 1)}
    if name == "scaled":
        return {"BSCALE": 0.001, "BZERO": 12.5}
    if name == "blank":
        return {"BZERO": 2 ** (abs(bitpix) - 1), "BLANK": 13}
    return {}


def reference(stored: np.ndarray, cards: dict) -> np.ndarray:
    """float32 of the physical value computed in Python floats from exact Python ints (no numpy casts)."""
    bscale, bzero, blank = float(cards.get("BSCALE", 1.0)), cards.get("BZERO", 0), cards.get("BLANK")
    out = []
    for value in stored.ravel().tolist():
        if isinstance(value, int) and value == blank:
            out.append(float("nan"))
        elif isinstance(value, int) and bscale == 1.0 and isinstance(bzero, int):
            out.append(float(value + bzero))  # the exact integer, rounded once to double
        elif bscale == 1.0 and bzero == 0:
            out.append(value)  # floats as stored (−0.0 stays −0.0)
        else:
            out.append(float(value) * bscale + float(bzero))
    return np.array(out, dtype=np.float64).astype(np.float32).reshape(stored.shape)


def assert_same(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    """Equal values, NaN where NaN, and the same sign of zero: bit for bit but for NaN payloads."""
    assert actual.dtype == np.float32 and actual.dtype.isnative, what
    np.testing.assert_array_equal(actual, expected, err_msg=what)
    finite = ~np.isnan(expected)
    assert (np.signbit(actual[finite]) == np.signbit(expected[finite])).all(), what


@pytest.mark.parametrize("bitpix", sorted(STORED))
@pytest.mark.parametrize("name", SCALINGS)
def test_every_storage_decodes_the_same_everywhere(tmp_path, monkeypatch, bitpix, name):
    """read_frame, a lazy frame read whole, bands of its rows and a median of three copies through the
    compiled kernel and through numpy: all the float32 rounding of the exact physical value."""
    if name == "blank" and bitpix < 0:
        pytest.skip("BLANK applies to integer images only")
    cards = scaling(bitpix, name)
    stored = stored_values(bitpix, seed=abs(bitpix))
    if name == "blank":
        stored[2, 7:9] = 13
    expected = reference(stored, cards)
    path = tmp_path / "f.fits"
    write_fits(path, stored, bitpix, **cards)

    assert_same(fitsio.read_frame(path).data, expected, "read_frame")
    assert_same(fitsio.read_header_frame(path).data, expected, "lazy frame")
    rows = fitsio.read_header_frame(path).rows
    assert_same(np.concatenate([rows[0:2], rows[2:5], rows[5:6]]), expected, "bands")
    band = np.empty((3, 100), np.float32)
    rows.read_into(1, 4, band)
    assert_same(band, expected[1:4], "read_into")
    assert rows.decode is not None  # every FITS storage goes to the kernel undecoded

    def median_of_copies() -> np.ndarray:
        frames = [fitsio.read_header_frame(path) for _ in range(3)]
        return engine.combine([f.stack_source() for f in frames], CombineOptions(method="median",
                                                                                   reject="none")).data

    if engine._stack is not None:
        assert_same(median_of_copies(), expected, "compiled kernel")
    monkeypatch.setattr(engine, "_stack", None)
    assert_same(median_of_copies(), expected, "numpy path")


def test_unsigned_and_offset_integers_are_exact(tmp_path):
    """uint32 near 2**31 and a bias level of 13 ± 13 ADU, uint64 near zero and large: exact (float32
    arithmetic used to round these in steps of 128 ADU, float64 cancelled uint64 ones)."""
    physical = np.array([[0, 13, 26, 1, 2 ** 31 + 13, 2 ** 31 - 13, 2 ** 32 - 1, 2 ** 24 + 1]], np.int64)
    write_fits(tmp_path / "u32.fits", (physical - 2 ** 31).astype(np.int32), 32, BZERO=2 ** 31)
    physical64 = [0, 13, 1, 2 ** 63 + 13, 2 ** 64 - 1, 2 ** 40 + 1, 2 ** 53 + 1, 7]
    write_fits(tmp_path / "u64.fits", np.array([[v - 2 ** 63 for v in physical64]], np.int64), 64,
               BZERO=2 ** 63)
    for name, values in (("u32.fits", physical[0].tolist()), ("u64.fits", physical64)):
        want = np.array([[float(v) for v in values]]).astype(np.float32)
        for read in (fitsio.read_frame, fitsio.read_header_frame):
            assert_same(read(tmp_path / name).data, want, name)
        assert_same(fitsio.read_header_frame(tmp_path / name).rows[0:1], want, name)
    assert fitsio.read_frame(tmp_path / "u32.fits").data[0, :4].tolist() == [0, 13, 26, 1]
    bias = np.random.default_rng(2).integers(0, 27, (5, 8, 16))  # 13 ± 13 ADU, stored as uint32
    for index, frame in enumerate(bias):
        write_fits(tmp_path / f"b{index}.fits", (frame - 2 ** 31).astype(np.int32), 32, BZERO=2 ** 31)
    frames = [fitsio.read_header_frame(tmp_path / f"b{index}.fits") for index in range(5)]
    plain_median = CombineOptions(method="median", reject="none")
    master = engine.combine([f.stack_source() for f in frames], plain_median)
    np.testing.assert_array_equal(master.data, np.median(bias, axis=0))
    assert fitsio.read_header_frame(tmp_path / "u64.fits").rows.decode[0] == "L"


def test_scaled_int32_eager_and_lazy_agree(tmp_path):
    """BITPIX 32 with BSCALE 0.001: whole-frame and band reads used to differ in most pixels."""
    stored = np.random.default_rng(3).integers(-2 ** 31, 2 ** 31 - 1, (6, 100), dtype=np.int32)
    write_fits(tmp_path / "s.fits", stored, 32, BSCALE=0.001, BZERO=12.5)
    eager = fitsio.read_frame(tmp_path / "s.fits").data
    lazy = fitsio.read_header_frame(tmp_path / "s.fits").rows
    assert_same(lazy[0:6], eager)
    assert_same(eager, (stored.astype(np.float64) * 0.001 + 12.5).astype(np.float32))


@pytest.mark.parametrize("stored, bzero", [("i2", 32768.0), ("i2", -32768.0), ("i2", 0.0), ("u1", -128.0),
                                           ("u1", 16711680.0), ("i2", 16711680.0)])
def test_float32_fast_path_equals_the_double_formula_for_every_value(stored, bzero):
    """The fast path is only taken where it is provably the same: checked over every stored value."""
    info = np.iinfo(stored)
    raw = np.arange(info.min, info.max + 1).astype(">" + stored).reshape(-1, 256)
    fast = Decoding(raw.dtype, 1.0, bzero)
    assert fast.mode == "single"
    want = (raw.astype(np.float64) + bzero).astype(np.float32)
    assert_same(fast.to_float32(raw), want)
    assert Decoding(raw.dtype, 1.0, 16777216.0).mode == "double"  # a sum could round: not taken
    assert Decoding(raw.dtype, 1.0, 0.5).mode == "double"
    assert Decoding(">i4", 1.0, 2.0 ** 31).mode == "double" and Decoding(">i8", 1.0, 0.0).mode == "double"


KERNEL_CASES = [(32, 1.0, 2 ** 31, None), (32, 0.001, 12.5, None), (32, 1.0, 2 ** 31, -2 ** 31 + 5),
                (64, 1.0, 0, None), (64, 1.0, 2 ** 63, None), (64, 0.5, 100.0, 77), (16, 0.001, 12.5, None),
                (8, 1.0, -128, 200), (-32, 0.001, 12.5, None), (-64, 3.0, 2 ** 31, None)]


@pytest.mark.parametrize("bitpix, bscale, bzero, blank", KERNEL_CASES, ids=str)
def test_kernel_decodes_every_kind_as_numpy(tmp_path, monkeypatch, bitpix, bscale, bzero, blank):
    """Nine different frames, scales, three statistics: kernel and numpy give identical values and counts."""
    if engine._stack is None:
        pytest.skip("the compiled kernel was not built here")
    rng = np.random.default_rng(abs(bitpix) + 100)
    base = stored_values(bitpix, seed=abs(bitpix) + 7).astype(np.float64)
    paths = []
    for index in range(9):
        stored = stored_values(bitpix, seed=abs(bitpix) + 7)
        if bitpix > 0:  # the same large values, small differences between frames: medians matter
            step = rng.integers(-3, 4, stored.shape)
            stored = np.where((base + step >= np.iinfo(stored.dtype).min) & (base + step <= np.iinfo(
                stored.dtype).max), stored + step.astype(stored.dtype), stored)
        else:
            stored = (stored * (1 + 1e-3 * rng.normal(size=stored.shape))).astype(stored.dtype)
        if blank is not None and index == 4:
            stored[3, 5] = blank
        cards = {"BSCALE": bscale, "BZERO": bzero} | ({"BLANK": blank} if blank is not None else {})
        paths.append(tmp_path / f"f{index}.fits")
        write_fits(paths[-1], stored, bitpix, **cards)
    scales = [1.0 + 0.1 * i for i in range(9)]
    assert_file_combines_equal_on_both_paths(paths, monkeypatch, 9 * 100 * 4 * 2, scales)


def test_reads_from_threads_with_close_racing_get_the_right_bytes(tmp_path):
    """Two threads reading thousands of bands of six frames while a third closes them all the time."""
    frames, truth = [], []
    for index in range(6):
        stored = (np.arange(40 * 64).reshape(40, 64) + index * 10000).astype(np.int32)
        write_fits(tmp_path / f"t{index}.fits", stored, 32)
        frames.append(fitsio.read_header_frame(tmp_path / f"t{index}.fits").rows)
        truth.append(stored.astype(np.float32))
    failures, wrong, reads = [], [], [0, 0]
    stop = threading.Event()

    def reader(seed: int) -> None:
        chooser = random.Random(seed)
        for _ in range(3000):
            index, start = chooser.randrange(6), chooser.randrange(39)
            end = chooser.randrange(start + 1, 41)
            try:
                band = frames[index][start:end]
            except Exception as exc:  # noqa: BLE001 - any failure is what the test counts
                failures.append(repr(exc))
                continue
            if not np.array_equal(band, truth[index][start:end]):
                wrong.append((index, start, end))
            reads[seed] += 1

    def closer() -> None:
        while not stop.is_set():
            for rows in frames:
                rows.close()

    threads = [threading.Thread(target=reader, args=(s,)) for s in (0, 1)]
    closing = threading.Thread(target=closer)
    closing.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    closing.join()
    assert failures == [] and wrong == [] and reads == [3000, 3000]


def test_truncated_rows_say_so_and_short_files_read_short(tmp_path):
    path = tmp_path / "cut.f32"
    path.write_bytes(np.arange(10, dtype=np.float32).tobytes())
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_at(fd, 100, 8) == np.arange(2, 10, dtype=np.float32).tobytes()
    finally:
        os.close(fd)
    rows = RawRows(path, 0, np.float32, (5, 4))
    np.testing.assert_array_equal(rows[0:2], np.arange(8, dtype=np.float32).reshape(2, 4))
    with pytest.raises(FrameError, match="truncated file"):
        rows[0:3]


def test_descriptor_pool_is_bounded_and_closes_nothing_under_a_reader(tmp_path, monkeypatch):
    """Idle descriptors beyond the limit are closed least recently used first; one retired while read is
    closed by its reader; close() releases; a stack of 40 frames holds at most the limit."""
    pool = DescriptorPool(3)
    monkeypatch.setattr(row_sources, "POOL", pool)
    paths = []
    for index in range(40):
        paths.append(tmp_path / f"p{index}.fits")
        write_fits(paths[-1], np.full((4, 8), index, np.int16), 16)
    frames = [fitsio.read_header_frame(path) for path in paths]
    for index, frame in enumerate(frames):
        assert (frame.rows[1:3] == index).all() and pool.open_count <= 3
    entry = pool._acquire(frames[-1].rows._key, paths[-1])  # a reader in the middle of its read
    frames[-1].rows.close()
    os.fstat(entry.fd)  # still open for that reader
    pool._release(entry)
    with pytest.raises(OSError):
        os.fstat(entry.fd)
    for frame in frames:
        frame.rows.close()
    assert pool.open_count == 0
    plain_average = CombineOptions(method="average", reject="none")
    result = engine.combine([f.stack_source() for f in frames], plain_average)
    assert result.data.tolist() == [[19.5] * 8] * 4 and pool.open_count == 0  # combine closes its sources


def test_combining_hundreds_of_files_needs_no_descriptor_per_frame(tmp_path):
    """300 lazy frames (numpy path) and 60 (compiled path) combined from their files with at most 64
    descriptors for the whole process: row sources keep none open."""
    rng = np.random.default_rng(11)
    stack = rng.integers(0, 65535, (300, 12, 40)).astype(np.uint16)
    for index, frame in enumerate(stack):
        write_fits(tmp_path / f"f{index:03d}.fits", (frame.astype(np.int32) - 32768).astype(np.int16), 16,
                   BZERO=32768)
    np.save(tmp_path / "stack.npy", stack)
    script = textwrap.dedent(f"""
        import resource
        from pathlib import Path

        import numpy as np

        from ccdgui.model import combine, fitsio
        from ccdgui.model.progress import drive
        from ccdgui.model.combine import CombineOptions

        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        folder = Path({str(tmp_path)!r})
        stack = np.load(folder / "stack.npy").astype(np.float32)
        frames = [fitsio.read_header_frame(p) for p in sorted(folder.glob("f*.fits"))]
        assert len(frames) == 300 and not any(f.loaded for f in frames)
        result = drive(combine.iter_combine([f.stack_source() for f in frames],
                                                    CombineOptions(method="average", reject="none")))
        np.testing.assert_array_equal(result.data, combine.combine(list(stack), CombineOptions(
            method="average", reject="none")).data)
        assert combine._compiled_applies(60, CombineOptions(method="median", reject="none")) == (
            combine._stack is not None)
        median = combine.combine([f.stack_source() for f in frames[:60]], CombineOptions(method="median",
                                                                                          reject="none"))
        np.testing.assert_array_equal(median.data, np.median(stack[:60], axis=0).astype(np.float32))
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]

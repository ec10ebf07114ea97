"""NeXus/NXmx HDF5 files: simulated frames with their whole geometry, as DIALS reads them.

An NXmx master file holds one sweep (or a set of stills): ``/entry`` (``definition =
NXmx``, start and end time), the instrument (``/entry/instrument``: an NXbeam with the
wavelength and flux, an NXdetector with its pixel size, sensor, trusted range and
module), the sample with its rotation axis and per-frame angles, and the frames as
``/entry/data/data``, a ``(frames, slow, fast)`` dataset of counts (uint16) or photons
(float32). Frames are stored in the master itself (:func:`master_bytes` with arrays) or
in one data file per frame joined by a virtual dataset (:func:`master_bytes` with the
data files' paths, which :func:`frame_file_bytes` writes), so that the process that
rendered a frame writes it.

Geometry: vectors are in the NeXus (McStas) frame (the beam travels along +z, y is
the DIALS y and x completes a right-handed frame: DIALS' frame turned by 180 degrees
about y), so the file describes exactly what the ``.expt`` writer
(:mod:`nbnumba.io.expt`) describes. The detector chain is
``fast_pixel_direction`` / ``slow_pixel_direction`` (one pixel each) ->
``module_offset`` (in the detector plane, to the outer corner of pixel (0, 0)) ->
``transformations/det_z`` (along the detector normal, the sample-to-plane distance): the
outer corner of pixel (0, 0) is ``module_offset + det_z`` and the centre of pixel
(f, s) lies (f + 1/2) pixels along the fast and (s + 1/2) along the slow direction from
it, as in dxtbx. The sample's chain is one rotation, ``omega``, about the spindle (the
start angle of every frame, with ``omega_end`` and ``omega_increment_set``).

Compression: bitshuffle-LZ4 (what Eiger detectors write) when ``hdf5plugin`` is
installed, gzip otherwise; one chunk per frame. h5py is imported only when a file is
written (``pip install 'nbnumba[hdf5]'``). A bitshuffle-LZ4 chunk is compressed outside
HDF5, on several threads (:mod:`nbnumba.io.bitshuffle`), and stored as it is: the
same bytes as HDF5's filter would store. A frame's data file is opened from the image
of an empty one, made once per frame shape.
"""
import datetime
import io
import math
import os

import numpy as np

from ..config import ConfigError, check_number
from ..images import check_pixels
from ..experiment import (MAX_TRUSTED_COUNT, ExperimentError, NumberedName,
                          check_describable, describe, lab_frame, to_frame)
from . import bitshuffle
from .atomic import check_path, check_writable, write_atomic

#: what installs the HDF5 support
INSTALL = "pip install 'nbnumba[hdf5]'"

#: the NeXus (McStas) frame from the DIALS (imgCIF) frame: x and z change sign
_DIALS_TO_MCSTAS = (-1.0, 1.0, -1.0)

#: the sensor thickness written for a sensor of none (-detector_thick 0, the default), m:
#: dxtbx needs a positive one, and 1 nm moves no spot by more than 1 nm
THINNEST_SENSOR = 1e-9

#: whether bitshuffle-LZ4 chunks are compressed outside HDF5 (on several threads) when
#: hdf5plugin's functions are found; False: by HDF5's filter (the same bytes, slower)
DIRECT_CHUNKS = True

_DETECTOR = "/entry/instrument/detector"
_MODULE = _DETECTOR + "/module"


def require_h5py(option="-nexus"):
    """Raise :class:`~nbnumba.ConfigError` (naming ``option`` and the install command)
    unless h5py can be imported."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise ConfigError(f"{option}: writing NeXus/HDF5 files needs h5py: {INSTALL}") from None


def _h5py():
    require_h5py()
    import h5py
    return h5py


def compression():
    """(name, h5py dataset options): bitshuffle-LZ4 through ``hdf5plugin`` when it is
    installed, else gzip (level 4, with h5py's shuffle filter)."""
    try:
        import hdf5plugin
    except ImportError:
        return "gzip", {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    return "bitshuffle-lz4", dict(hdf5plugin.Bitshuffle(cname="lz4"))


# ---------------------------------------------------------------------------------------
# geometry in the NeXus frame


def _mcstas(rows, v):
    """nbnumba vector v in the NeXus (McStas) frame of ``rows`` (the DIALS frame)."""
    d = to_frame(rows, v)
    return np.array([s * x for s, x in zip(_DIALS_TO_MCSTAS, d)], dtype=float) + 0.0


def detector_chain(image):
    """The detector's transformations of a :class:`~nbnumba.experiment.SimulatedImage`:
    a dict of McStas vectors and values (mm): ``normal`` and ``distance`` (det_z),
    ``in_plane`` and ``offset`` (module_offset), ``fast``, ``slow``, ``pixel``."""
    rows = lab_frame(image.beam, image.spindle, -1)
    fast, slow = _mcstas(rows, image.fast), _mcstas(rows, image.slow)
    corner = _mcstas(rows, image.pix0) * 1000.0
    normal = np.cross(fast, slow)
    normal /= np.linalg.norm(normal)
    distance = float(normal @ corner)
    if distance < 0.0:
        normal, distance = -normal, -distance
    rest = corner - distance * normal
    length = float(np.linalg.norm(rest))
    in_plane = rest / length if length > 0.0 else fast
    return {"normal": normal, "distance": distance, "in_plane": in_plane, "offset": length,
            "fast": fast, "slow": slow, "pixel": image.pixel_size * 1000.0,
            "beam": _mcstas(rows, image.beam), "axis": _mcstas(rows, image.spindle)}


def _beam_centre(chain, image):
    """(fast, slow) pixel coordinates where the beam meets the detector plane (from the
    outer corner of pixel (0, 0)) and the distance to it (mm); None if it never does."""
    along = float(chain["normal"] @ chain["beam"])
    if along <= 1e-12:
        return None
    corner = chain["normal"] * chain["distance"] + chain["in_plane"] * chain["offset"]
    hit = chain["beam"] * (chain["distance"] / along)
    rel = hit - corner
    return (float(rel @ chain["fast"]) / chain["pixel"],
            float(rel @ chain["slow"]) / chain["pixel"], float(np.linalg.norm(hit)))


# ---------------------------------------------------------------------------------------
# writing


def _text(group, name, value, **attrs):
    ds = group.create_dataset(name, data=np.bytes_(value.encode("utf-8")))
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def _group(parent, name, nx_class, **attrs):
    g = parent.create_group(name)
    g.attrs["NX_class"] = nx_class
    for k, v in attrs.items():
        g.attrs[k] = v
    return g


def _number(group, name, value, units=None, **attrs):
    ds = group.create_dataset(name, data=value)
    if units is not None:
        ds.attrs["units"] = units
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def _transformation(group, name, value, kind, vector, depends_on, units, offset=None):
    ds = _number(group, name, value, units, transformation_type=kind,
                 vector=np.asarray(vector, float), depends_on=depends_on)
    if offset is not None:
        ds.attrs["offset"] = np.asarray(offset, float)
        ds.attrs["offset_units"] = units
    return ds


def _iso(moment):
    if moment is None:
        moment = datetime.datetime.now(datetime.timezone.utc)
    elif not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.fromtimestamp(float(moment), datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="seconds")


def _write_detector(instrument, image, chain, frames_shape, counts):
    det = _group(instrument, "detector", "NXdetector")
    _text(det, "depends_on", _DETECTOR + "/transformations/det_z")
    _text(det, "description", "nbnumba simulated pixel array detector")
    _text(det, "type", "simulated")
    _number(det, "x_pixel_size", image.pixel_size, "m")
    _number(det, "y_pixel_size", image.pixel_size, "m")
    _text(det, "sensor_material", "Si")
    _number(det, "sensor_thickness", max(image.thickness, THINNEST_SENSOR), "m")
    if image.mu > 0.0:
        _number(det, "sensor_attenuation_length", 1.0 / image.mu, "m")
    _number(det, "count_time", image.exposure, "s")
    _number(det, "frame_time", image.exposure, "s")
    if counts:
        _number(det, "saturation_value", np.int64(MAX_TRUSTED_COUNT))
        _number(det, "underload_value", np.int64(0))
        _number(det, "bit_depth_readout", np.int32(16))
        _number(det, "pedestal", image.adc, "counts")
    centre = _beam_centre(chain, image)
    if centre is not None:
        _number(det, "beam_center_x", centre[0], "pixel")
        _number(det, "beam_center_y", centre[1], "pixel")
        _number(det, "distance", centre[2] / 1000.0, "m")
    tr = _group(det, "transformations", "NXtransformations")
    _transformation(tr, "det_z", chain["distance"], "translation", chain["normal"], ".", "mm")
    module = _group(det, "module", "NXdetector_module")
    _number(module, "data_origin", np.array([0, 0], dtype=np.int64))
    _number(module, "data_size", np.array(frames_shape[1:], dtype=np.int64))
    _number(module, "data_stride", np.array([1, 1], dtype=np.int64))
    _transformation(module, "module_offset", chain["offset"], "translation",
                    chain["in_plane"], _DETECTOR + "/transformations/det_z", "mm")
    for name in ("fast", "slow"):
        _transformation(module, name + "_pixel_direction", chain["pixel"], "translation",
                        chain[name], _MODULE + "/module_offset", "mm", offset=(0, 0, 0))


def _write_sample(entry, images, chain):
    sample = _group(entry, "sample", "NXsample")
    _text(sample, "name", "simulated crystal")
    _text(sample, "depends_on", "/entry/sample/transformations/omega")
    cell = images[0].cell
    _number(sample, "unit_cell", np.array([list(cell[:3]) + [math.degrees(a) for a in
                                                              cell[3:]]]))
    tr = _group(sample, "transformations", "NXtransformations")
    start = np.array([math.degrees(im.phi0) for im in images])
    width = np.array([math.degrees(im.osc) for im in images])
    _transformation(tr, "omega", start, "rotation", chain["axis"], ".", "deg")
    _number(tr, "omega_end", start + width, "deg")
    _number(tr, "omega_increment_set", width, "deg")


def _write_master(h5, images, frames, sources, dtype, start_time, end_time, spectrum):
    from .._version import __version__
    h5py = _h5py()
    image = images[0]
    n = len(images)
    shape = (n, image.spixels, image.fpixels)
    h5.attrs["NX_class"] = "NXroot"
    h5.attrs["creator"] = "nbnumba %s" % __version__
    h5.attrs["default"] = "entry"
    entry = _group(h5, "entry", "NXentry", default="data")
    _text(entry, "definition", "NXmx", version="1.0")
    _text(entry, "start_time", _iso(start_time))
    _text(entry, "end_time", _iso(end_time))
    _text(entry, "end_time_estimated", _iso(end_time))
    chain = detector_chain(image)
    instrument = _group(entry, "instrument", "NXinstrument")
    _text(instrument, "name", "nbnumba simulation")
    source = _group(instrument, "source", "NXsource")
    _text(source, "name", "nbnumba simulated source")
    beam = _group(instrument, "beam", "NXbeam")
    wavelength = _number(beam, "incident_wavelength", image.wavelength * 1e10, "angstrom")
    if spectrum is not None:   # the wavelengths of the sources, as a variant
        wavelength.attrs["variant"] = "incident_wavelength_spectrum"
        _number(beam, "incident_wavelength_spectrum", np.asarray(spectrum[0]) * 1e10,
                "angstrom")
        _number(beam, "incident_wavelength_spectrum_weights", np.asarray(spectrum[1]))
    _number(beam, "total_flux", image.flux, "Hz")
    _write_detector(instrument, image, chain, shape, np.dtype(dtype).kind == "u")
    _write_sample(entry, images, chain)
    data = _group(entry, "data", "NXdata", signal="data")
    if sources is None:
        _store_frames(data, frames)
    else:
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        for i, path in enumerate(sources):
            layout[i] = h5py.VirtualSource(path, "/entry/data/data", shape=(1,) + shape[1:])
        data.create_virtual_dataset("data", layout, fillvalue=0)


def _direct_chunks():
    """Whether bitshuffle-LZ4 chunks are compressed here (see :data:`DIRECT_CHUNKS`)."""
    return (DIRECT_CHUNKS and compression()[0] == "bitshuffle-lz4"
            and bitshuffle.available())


def _store_frames(group, frames):
    """``group["data"]``: the frames (frames, slow, fast), one compressed chunk each.
    Bitshuffle-LZ4 chunks are compressed here (frame i + 1 while frame i is stored) and
    written as they are."""
    _, options = compression()
    chunks = (1,) + frames.shape[1:]
    if not _direct_chunks():
        group.create_dataset("data", data=frames, chunks=chunks, track_times=False,
                             **options)
        return
    ds = group.create_dataset("data", shape=frames.shape, dtype=frames.dtype,
                              chunks=chunks, track_times=False, **options)
    pending = bitshuffle.submit_lz4(frames[0])
    for i in range(len(frames)):
        following = bitshuffle.submit_lz4(frames[i + 1]) if i + 1 < len(frames) else None
        ds.id.write_direct_chunk((i, 0, 0), pending.result(), filter_mask=0)
        pending = following


def _check_geometry(images, option):
    """One beam, detector and spindle for every frame (the crystal may differ)."""
    first = images[0].geometry_key()[:-3]     # the key ends with the crystal's a, b, c
    for im in images:
        if im.geometry_key()[:-3] != first:
            raise ConfigError(f"{option}: the frames of one NXmx file need one beam and "
                              "detector")


def master_bytes(images, frames=None, sources=None, dtype=None, start_time=None,
                 end_time=None, spectrum=None, option="-nexus"):
    """The content (bytes) of an NXmx master file.

    images: :class:`~nbnumba.experiment.SimulatedImage` records of the frames, in order
    (one beam and detector; the spindle angles may differ). Either ``frames``: the
    pixels, an array (frames, slow, fast) stored compressed in the file; or
    ``sources``: one data-file path per frame (relative to the master's directory, as
    :func:`frame_file_bytes` writes them), joined by a virtual dataset of ``dtype``.
    start_time, end_time: datetimes or POSIX seconds (default: now). spectrum: None
    (one wavelength) or (wavelengths in m, weights), e.g. :func:`spectrum`.
    """
    h5py = _h5py()
    _check_geometry(images, option)
    if frames is not None:
        frames = np.asarray(frames)
        dtype = frames.dtype
        if frames.shape != (len(images), images[0].spixels, images[0].fpixels):
            raise ConfigError(f"{option}: {len(images)} frames of "
                              f"{images[0].spixels} x {images[0].fpixels} pixels expected, "
                              f"got an array of shape {frames.shape}")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as h5:
        _write_master(h5, images, frames, sources, dtype, start_time, end_time, spectrum)
    return buffer.getvalue()


#: {(shape, dtype, compression): the image of a frame's data file without its chunk}
_FRAME_TEMPLATES = {}


def _frame_template(shape, dtype):
    """The image (bytes) of a data file for frames of ``shape`` and ``dtype``: its
    groups and its empty dataset, made once per process (HDF5 makes it in about 0.5 ms,
    more than opening it and adding a chunk)."""
    name, options = compression()
    key = (tuple(shape), np.dtype(dtype).str, name)
    if key not in _FRAME_TEMPLATES:
        h5py = _h5py()
        # an in-memory file (HDF5's core driver): its image is the file's content
        with h5py.File("frame.h5", "w", driver="core", backing_store=False) as h5:
            h5.attrs["NX_class"] = "NXroot"
            entry = _group(h5, "entry", "NXentry")
            data = _group(entry, "data", "NXdata", signal="data")
            data.create_dataset("data", shape=(1,) + tuple(shape), dtype=dtype,
                                chunks=(1,) + tuple(shape), track_times=False, **options)
            h5.flush()
            _FRAME_TEMPLATES[key] = h5.id.get_file_image()
    return _FRAME_TEMPLATES[key]


def frame_file_bytes(pixels):
    """The content (bytes) of the data file of one frame: ``/entry/data/data`` of shape
    (1, slow, fast), compressed (see :func:`compression`)."""
    h5py = _h5py()
    pixels = np.asarray(pixels)
    # compressed on other threads while this one opens the file around the chunk
    pending = bitshuffle.submit_lz4(pixels) if _direct_chunks() else None
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fapl_core(backing_store=False)
    fapl.set_file_image(_frame_template(pixels.shape, pixels.dtype))
    with h5py.File(h5py.h5f.open(b"frame.h5", h5py.h5f.ACC_RDWR, fapl=fapl)) as h5:
        ds = h5["/entry/data/data"]
        if pending is not None:
            ds.id.write_direct_chunk((0, 0, 0), pending.result(), filter_mask=0)
        else:
            ds[0] = pixels
        h5.flush()
        return h5.id.get_file_image()


def relative_sources(paths, master_path):
    """The data-file paths as the master names them: relative to its directory."""
    directory = os.path.dirname(os.path.abspath(master_path))
    return [os.path.relpath(os.path.abspath(p), directory) for p in paths]


def spectrum(setup):
    """(wavelengths in m, weights) of a set-up's sources: each distinct wavelength with
    the fraction of the sources that have it (the render weighs every source alike);
    None for a single wavelength."""
    values, counts = np.unique(np.asarray(setup.sources.wavelengths, float),
                               return_counts=True)
    if len(values) < 2:
        return None
    return values, counts / counts.sum()


def frame_records(setups, adc=40.0, option="-nexus"):
    """:class:`~nbnumba.experiment.SimulatedImage` records of prepared set-ups (one per
    frame); :class:`~nbnumba.ConfigError` for a set-up NXmx cannot describe (a curved
    detector, skewed pixel axes). adc: the counts added to every pixel."""
    records = []
    for setup in setups:
        try:
            check_describable(setup, option)
        except ExperimentError as exc:
            raise ConfigError(str(exc).replace("DIALS and XDS", "NXmx")) from None
        records.append(describe(setup, NumberedName("", "1", ".nxs"), adc))
    return records


def _checked_arguments(path, results, images, adc, start_time, end_time):
    """(results, images) of :func:`write_nexus` as lists, every argument checked first:
    :class:`~nbnumba.ConfigError` saying what is expected."""
    check_path(path, "write_nexus: path")
    results = list(results) if isinstance(results, (list, tuple)) else [results]
    for i, result in enumerate(results):
        if not (hasattr(result, "image") and hasattr(getattr(result, "setup", None),
                                                       "geometry")):
            raise ConfigError(f"write_nexus: results[{i}] must be a Result (from "
                              f"nbnumba.simulate or nbnumba.render), got "
                              f"{type(result).__name__}")
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
    if images is None or isinstance(images, (str, bytes, dict)) or not hasattr(images,
                                                                              "__iter__"):
        raise ConfigError(f"write_nexus: images must be one 2-D array per result, got "
                          f"{type(images).__name__}")
    images = list(images)
    if not results or len(images) != len(results):
        raise ConfigError(f"write_nexus: {len(results)} results and {len(images)} images: "
                          "give one image per result")
    shape = (results[0].setup.spixels, results[0].setup.fpixels)
    checked = []
    for i, (result, image) in enumerate(zip(results, images)):
        own = (result.setup.spixels, result.setup.fpixels)
        if own != shape:
            raise ConfigError(f"write_nexus: the frames of one file share one detector, but "
                              f"results[{i}] has {own[1]}x{own[0]} pixels and results[0] "
                              f"{shape[1]}x{shape[0]}")
        pixels = check_pixels(image, shape, f"write_nexus: images[{i}]", np.uint16,
                              also=(np.float32,), hint="give photons as float32 "
                              "(result.image) or counts as uint16")
        checked.append(pixels.reshape(shape))
    check_number("write_nexus: adc", "counts", adc)
    for name, moment in (("start_time", start_time), ("end_time", end_time)):
        if moment is None:
            continue
        if not isinstance(moment, datetime.datetime):
            check_number(f"write_nexus: {name}", "POSIX seconds or a datetime", moment)
        try:
            _iso(moment)
        except (OverflowError, OSError, ValueError):
            raise ConfigError(f"write_nexus: {name} = {moment!r} is not a date this machine "
                              "can write (give a datetime, or seconds since 1970)") from None
    return results, checked


def write_nexus(path, results, images, adc=40.0, start_time=None, end_time=None):
    """Write rendered frames as one NXmx file (frames stored in it, compressed).

    path: the ``.nxs`` file (replaced whole, atomically). results: a
    :class:`~nbnumba.Result` or a sequence of them, the frames of one sweep in order
    (one beam and detector). images: the pixels to store, one 2-D (slow, fast) array
    per result: counts (e.g. :func:`~nbnumba.make_noise_image`'s ``pixels``, uint16) or
    photons (``result.image``, float32). adc: the counts added to every pixel (the
    detector's ``pedestal``). start_time, end_time: datetimes or POSIX seconds (default:
    now). Raises :class:`~nbnumba.ConfigError` (bad input, h5py missing) or
    :class:`~nbnumba.io.atomic.OutputError` (the file cannot be written).
    """
    require_h5py("write_nexus")
    results, images = _checked_arguments(path, results, images, adc, start_time, end_time)
    if len({np.asarray(im).dtype for im in images}) != 1:
        raise ConfigError("write_nexus: the images must share one dtype")
    check_writable(path)
    records = frame_records([r.setup for r in results], adc, "write_nexus")
    data = master_bytes(records, frames=np.stack([np.asarray(im) for im in images]),
                        start_time=start_time, end_time=end_time,
                        spectrum=spectrum(results[0].setup), option="write_nexus")
    write_atomic(path, data)

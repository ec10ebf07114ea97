"""NeXus/NXmx HDF5 files: simulated frames with their whole geometry, as DIALS reads them.

An NXmx master file holds one sweep (or a set of stills) as the NXmx application
definition asks (``nxvalidate -a NXmx`` reports no error): ``/entry`` (``version``
1.0, ``definition = NXmx``, UTC times with ``Z``), the source (``/entry/source``), the
instrument (``/entry/instrument``: ``time_zone``, an NXdetector_group, an NXbeam with the
wavelength, flux, beam size and profile and the polarization as Stokes vectors, an
NXdetector with its pixel size, sensor, trusted range, ``pixel_mask`` (the pixels not
rendered), ``distance`` and module), the sample with its rotation axis and per-frame
angles, and the frames as ``/entry/data/data`` (linked as the detector's ``data``), a
``(frames, slow, fast)`` dataset of counts (uint16: what a counting detector reads,
without the SMV images' ``-adc`` offset) or photons (float32). Frames are stored in the
master itself (:func:`master_bytes` with arrays) or in one data file per frame joined by
a virtual dataset (:func:`master_bytes` with the data files' paths, which
:func:`frame_file_bytes` writes), so that the process that rendered a frame writes it.

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
from typing import NamedTuple, Optional, Tuple

import numpy as np

from .. import vec
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

#: the instrument's ``time_zone``: a simulation happens nowhere, so its times are UTC with
#: no local offset: "-00:00", RFC 3339's offset for "UTC known, local offset unknown"
#: (ISO 8601 profile; "+00:00" would claim a place on UTC)
UTC_OFFSET = "-00:00"

_DETECTOR = "/entry/instrument/detector"


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
# the beam's polarization and the detector's pixel mask


#: the NeXus pixel-mask bit of a pixel the user chose not to use (bit 8, "user defined
#: mask"): nbnumba sets it on the pixels it did not render (outside the -roi, or 0 in
#: the -mask file)
USER_MASK_BIT = 1 << 8


def polarization_stokes(image):
    """The Stokes vector (S0, S1, S2, S3) of the simulated beam in the NeXus (McStas)
    frame: intensity 1, linear polarization of degree 2 f - 1 (f: the fraction
    :meth:`~nbnumba.experiment.SimulatedImage.polarization` gives, (1 + K)/2 for the
    Kahn factor K of ``-polar``) with its E-vector at the angle psi from x,
    counter-clockwise about z (the beam): S1 = P cos 2 psi, S2 = P sin 2 psi, no
    circular part."""
    rows = lab_frame(image.beam, image.spindle, -1)
    normal, fraction = image.polarization()
    e_vector = _mcstas(rows, vec.cross(normal, image.beam))
    psi = math.atan2(e_vector[1], e_vector[0])
    degree = 2.0 * fraction - 1.0
    return np.array([1.0, degree * math.cos(2 * psi), degree * math.sin(2 * psi), 0.0]) + 0.0


#: the NeXus pixel-mask bit of a pixel of the image that lies in no module (bit 0, "gap
#: (pixel with no sensor)"): the gaps between the panels of a detector of several
GAP_BIT = 1


def pixel_mask(setups):
    """The NXmx ``pixel_mask`` of frames rendered from ``setups`` (prepared set-ups of
    one detector): int32 (slow, fast), :data:`USER_MASK_BIT` on every pixel some frame
    did not render (outside its ROI or masked by ``-mask``), :data:`GAP_BIT` instead on
    the pixels between the panels of a detector of several, 0 elsewhere."""
    first = setups[0]
    unused = np.zeros((first.spixels, first.fpixels), dtype=bool)
    for setup in setups:
        xmin, xmax, ymin, ymax = setup.roi
        rendered = np.zeros_like(unused)
        rendered[max(ymin, 0):ymax + 1, max(xmin, 0):xmax + 1] = True
        if setup.mask is not None:
            rendered &= np.asarray(setup.mask).reshape(unused.shape) != 0
        unused |= ~rendered
    mask = np.where(unused, np.int32(USER_MASK_BIT), np.int32(0))
    if first.panels is not None:
        gaps = first.panels.coverage().reshape(unused.shape) == 0
        mask[gaps] = GAP_BIT
    return mask


# ---------------------------------------------------------------------------------------
# writing: one function per NeXus group, so that a detector of several modules (or
# several detectors) adds groups without touching the others


def _text(group, name, value, **attrs):
    ds = group.create_dataset(name, data=np.bytes_(value.encode("utf-8")))
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def _texts(group, name, values):
    """A 1-D dataset of fixed-length strings."""
    return group.create_dataset(name, data=np.array([v.encode("utf-8") for v in values]))


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


def _transformation(group, name, value, kind, vector, depends_on, units, offset=(0, 0, 0)):
    ds = _number(group, name, value, units, transformation_type=kind,
                 vector=np.asarray(vector, float), depends_on=depends_on)
    ds.attrs["offset"] = np.asarray(offset, float)
    ds.attrs["offset_units"] = units
    return ds


def _iso(moment):
    """ISO 8601 UTC time with the ``Z`` suffix, as NXmx asks (moment: a datetime, POSIX
    seconds, or None for now)."""
    if moment is None:
        moment = datetime.datetime.now(datetime.timezone.utc)
    elif not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.fromtimestamp(float(moment), datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_entry(h5, start_time, end_time):
    from .._version import __version__
    h5.attrs["NX_class"] = "NXroot"
    h5.attrs["creator"] = "nbnumba %s" % __version__
    h5.attrs["default"] = "entry"
    entry = _group(h5, "entry", "NXentry", default="data", version="1.0")
    _text(entry, "definition", "NXmx")
    _text(entry, "start_time", _iso(start_time))
    _text(entry, "end_time", _iso(end_time))
    _text(entry, "end_time_estimated", _iso(end_time))
    return entry


def _write_source(entry):
    source = _group(entry, "source", "NXsource")
    _text(source, "name", "nbnumba simulated source")
    _text(source, "probe", "x-ray")


def _write_instrument(entry):
    instrument = _group(entry, "instrument", "NXinstrument")
    _text(instrument, "name", "nbnumba simulation", short_name="nbnumba")
    _text(instrument, "time_zone", UTC_OFFSET)
    return instrument


def _write_beam(instrument, image, frames, spectrum):
    beam = _group(instrument, "beam", "NXbeam")
    wavelength = _number(beam, "incident_wavelength", image.wavelength * 1e10, "angstrom")
    if spectrum is not None:   # the wavelengths of the sources, as a variant
        wavelength.attrs["variant"] = "incident_wavelength_spectrum"
        _number(beam, "incident_wavelength_spectrum", np.asarray(spectrum[0]) * 1e10,
                "angstrom")
        _number(beam, "incident_wavelength_spectrum_weights", np.asarray(spectrum[1]))
    _number(beam, "total_flux", image.flux, "Hz")
    if image.beam_size > 0.0:   # a square beam of uniform fluence (-beamsize)
        _number(beam, "incident_beam_size", np.array([image.beam_size] * 2), "m")
        _text(beam, "profile", "rectangular")
    _number(beam, "incident_polarization_stokes",
            np.tile(polarization_stokes(image), (frames, 1)))


def _write_detector_group(instrument, detectors):
    """The NXdetector_group naming the detectors (one level: no parents)."""
    group = _group(instrument, "detector_group", "NXdetector_group")
    _texts(group, "group_names", detectors)
    _number(group, "group_index", np.arange(1, len(detectors) + 1, dtype=np.int32))
    _number(group, "group_parent", np.full(len(detectors), -1, dtype=np.int32))


def _write_detector(instrument, image, chain, dtype, mask):
    det = _group(instrument, "detector", "NXdetector")
    _text(det, "depends_on", _DETECTOR + "/transformations/det_z")
    _text(det, "description", "nbnumba simulated pixel array detector")
    _text(det, "type", "simulated")
    _number(det, "x_pixel_size", image.pixel_size, "m")
    _number(det, "y_pixel_size", image.pixel_size, "m")
    _text(det, "sensor_material", image.material or "Si")
    _number(det, "sensor_thickness", max(image.thickness, THINNEST_SENSOR), "m")
    if image.mu > 0.0:
        _number(det, "sensor_attenuation_length", 1.0 / image.mu, "m")
    _number(det, "count_time", image.exposure, "s")
    _number(det, "frame_time", image.exposure, "s")
    if np.dtype(dtype).kind == "u":   # counts: the trusted range, as a counting detector
        _number(det, "saturation_value", np.int64(MAX_TRUSTED_COUNT))
        _number(det, "underload_value", np.int64(0))
    _number(det, "bit_depth_readout", np.int32(8 * np.dtype(dtype).itemsize))
    det.create_dataset("pixel_mask", data=mask, compression="gzip", compression_opts=4,
                       shuffle=True)
    centre = _beam_centre(chain, image)
    if centre is not None:
        _number(det, "beam_center_x", centre[0], "pixel")
        _number(det, "beam_center_y", centre[1], "pixel")
        _number(det, "distance", centre[2] / 1000.0, "m")
        _number(det, "distance_derived", np.True_)   # from the axis chain
    tr = _group(det, "transformations", "NXtransformations")
    _transformation(tr, "det_z", chain["distance"], "translation", chain["normal"], ".", "mm")
    return det


def _write_module(det, chain, shape, name="module", origin=(0, 0)):
    """An NXdetector_module: the pixels (slow, fast) ``shape`` from ``origin`` of the
    data, and the chain fast/slow pixel direction -> module_offset -> det_z."""
    module = _group(det, name, "NXdetector_module")
    path = det.name + "/" + name
    _number(module, "data_origin", np.array(origin, dtype=np.int64))
    _number(module, "data_size", np.array(shape, dtype=np.int64))
    _number(module, "data_stride", np.array([1, 1], dtype=np.int64))
    _transformation(module, "module_offset", chain["offset"], "translation",
                    chain["in_plane"], det.name + "/transformations/det_z", "mm")
    for direction in ("fast", "slow"):
        _transformation(module, direction + "_pixel_direction", chain["pixel"], "translation",
                        chain[direction], path + "/module_offset", "mm")


def module_chains(image, chain):
    """Per panel of a detector of several: its module's name, where its pixels lie in the
    data (``origin``: row, column; ``size``: rows, columns) and its chain, as
    :func:`detector_chain` gives the one module's: the corner of its pixel (0, 0) is
    ``det_z`` (the detector's, the reference panel's plane) plus ``offset`` along
    ``in_plane``, whatever the panel's orientation; ``fast``, ``slow`` (McStas), pixel
    (mm)."""
    rows = lab_frame(image.beam, image.spindle, -1)
    base = chain["normal"] * chain["distance"]
    modules, names = [], set()
    for k, p in enumerate(image.panel_list()):
        rest = _mcstas(rows, p.origin) * 1000.0 - base
        length = float(np.linalg.norm(rest))
        fast = _mcstas(rows, p.fast)
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in p.name) or "module"
        if name in names or name in ("transformations", "pixel_mask", "data"):
            name = "%s_%d" % (name, k)
        names.add(name)
        modules.append((name, p.raster_origin, (p.spixels, p.fpixels), {
            "offset": length, "in_plane": rest / length if length > 0.0 else fast,
            "fast": fast, "slow": _mcstas(rows, p.slow), "pixel": p.pixel_size * 1000.0}))
    return modules


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


def _write_data(entry, frames, sources, shape, dtype):
    data = _group(entry, "data", "NXdata", signal="data")
    if sources is None:
        _store_frames(data, frames)
    else:
        h5py = _h5py()
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        for i, path in enumerate(sources):
            layout[i] = h5py.VirtualSource(path, "/entry/data/data", shape=(1,) + shape[1:])
        data.create_virtual_dataset("data", layout, fillvalue=0)
    return data["data"]


def _write_master(h5, images, frames, sources, dtype, start_time, end_time, spectrum,
                  mask):
    image = images[0]
    shape = (len(images), image.spixels, image.fpixels)
    if mask is None:
        mask = np.zeros(shape[1:], dtype=np.int32)
    entry = _write_entry(h5, start_time, end_time)
    chain = detector_chain(image)
    instrument = _write_instrument(entry)
    _write_beam(instrument, image, len(images), spectrum)
    _write_detector_group(instrument, ["detector"])
    det = _write_detector(instrument, image, chain, dtype, mask)
    if image.panels is not None and len(image.panels) > 1:   # one module per panel
        for name, origin, size, module in module_chains(image, chain):
            _write_module(det, module, size, name, origin)
    else:
        _write_module(det, chain, shape[1:])
    _write_source(entry)
    _write_sample(entry, images, chain)
    det["data"] = _write_data(entry, frames, sources, shape, dtype)   # one dataset, linked


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
                 end_time=None, spectrum=None, option="-nexus", pixel_mask=None):
    """The content (bytes) of an NXmx master file.

    images: :class:`~nbnumba.experiment.SimulatedImage` records of the frames, in order
    (one beam and detector; the spindle angles may differ). Either ``frames``: the
    pixels, an array (frames, slow, fast) stored compressed in the file; or
    ``sources``: one data-file path per frame (relative to the master's directory, as
    :func:`frame_file_bytes` writes them), joined by a virtual dataset of ``dtype``.
    Counts (unsigned integers) are stored as given: NXmx counts carry no offset (see
    :func:`write_nexus`). start_time, end_time: datetimes or POSIX seconds (default:
    now). spectrum: None (one wavelength) or (wavelengths in m, weights), e.g.
    :func:`spectrum`. pixel_mask: the detector's ``pixel_mask`` (int32, (slow, fast),
    e.g. :func:`pixel_mask`; None: every pixel good).
    """
    h5py = _h5py()
    _check_geometry(images, option)
    shape = (images[0].spixels, images[0].fpixels)
    if frames is not None:
        frames = np.asarray(frames)
        dtype = frames.dtype
        if frames.shape != (len(images),) + shape:
            raise ConfigError(f"{option}: {len(images)} frames of "
                              f"{images[0].spixels} x {images[0].fpixels} pixels expected, "
                              f"got an array of shape {frames.shape}")
    if pixel_mask is not None:
        pixel_mask = np.asarray(pixel_mask, dtype=np.int32)
        if pixel_mask.shape != shape:
            raise ConfigError(f"{option}: the pixel mask must be {shape[0]} x {shape[1]} "
                              f"pixels, got shape {pixel_mask.shape}")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as h5:
        _write_master(h5, images, frames, sources, dtype, start_time, end_time, spectrum,
                      pixel_mask)
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


def frame_records(setups, option="-nexus"):
    """:class:`~nbnumba.experiment.SimulatedImage` records of prepared set-ups (one per
    frame); :class:`~nbnumba.ConfigError` for a set-up NXmx cannot describe (a curved
    detector, skewed pixel axes)."""
    records = []
    for setup in setups:
        try:
            check_describable(setup, option)
        except ExperimentError as exc:
            raise ConfigError(str(exc).replace("DIALS and XDS", "NXmx")) from None
        records.append(describe(setup, NumberedName("", "1", ".nxs"), 0.0))
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


class FrameDescription(NamedTuple):
    """What an NXmx file says of its frames besides the pixels (:func:`describe_frames`)."""
    records: list                  #: SimulatedImage records, one per frame
    spectrum: Optional[Tuple]      #: (wavelengths in m, weights), or None
    pixel_mask: np.ndarray         #: int32 (slow, fast), see :func:`pixel_mask`


def describe_frames(setups, option="-nexus"):
    """The :class:`FrameDescription` of frames rendered from prepared ``setups`` (checked
    here: :class:`~nbnumba.ConfigError` for a set-up NXmx cannot describe)."""
    return FrameDescription(frame_records(setups, option), spectrum(setups[0]),
                            pixel_mask(setups))


def without_offset(pixels, adc):
    """Counts less an offset: ``pixels`` (integers) - ``adc`` rounded to an integer, at
    least 0, in the dtype of ``pixels``; an overloaded pixel (the dtype's largest
    value, where nbnumba clips) stays overloaded."""
    pixels = np.asarray(pixels)
    top = np.iinfo(pixels.dtype).max
    counts = np.clip(pixels.astype(np.int64) - int(round(adc)), 0, top)
    return np.where(pixels == top, top, counts).astype(pixels.dtype)


def write_nexus(path, results, images, adc=0.0, start_time=None, end_time=None):
    """Write rendered frames as one NXmx file (frames stored in it, compressed).

    path: the ``.nxs`` file (replaced whole, atomically). results: a
    :class:`~nbnumba.Result` or a sequence of them, the frames of one sweep in order
    (one beam and detector). images: the pixels to store, one 2-D (slow, fast) array
    per result: counts (unsigned integers, e.g. :func:`~nbnumba.make_noise_image`'s
    ``pixels``) or photons (``result.image``, float32). NXmx counts are what a counting
    detector reads, without an offset: make them with ``adc=0``
    (``make_noise_image(result, seed, adc=0)``), or give here the offset they carry,
    ``adc`` (counts, e.g. 40 for the default images), which is subtracted
    (:func:`without_offset`). start_time, end_time: datetimes or POSIX seconds
    (default: now). Pixels a result did not render (``-roi``, ``-mask``) are flagged in
    the detector's ``pixel_mask``. Raises :class:`~nbnumba.ConfigError` (bad input, h5py
    missing) or :class:`~nbnumba.io.atomic.OutputError` (the file cannot be written).
    """
    require_h5py("write_nexus")
    results, images = _checked_arguments(path, results, images, adc, start_time, end_time)
    if len({np.asarray(im).dtype for im in images}) != 1:
        raise ConfigError("write_nexus: the images must share one dtype")
    frames = np.stack([np.asarray(im) for im in images])
    if adc:
        if frames.dtype.kind not in "ui":
            raise ConfigError("write_nexus: adc is the offset of count images; float "
                              "images (photons) carry none")
        frames = without_offset(frames, adc)
    check_writable(path)
    frames_of = describe_frames([r.setup for r in results], "write_nexus")
    data = master_bytes(frames_of.records, frames=frames, start_time=start_time,
                        end_time=end_time, spectrum=frames_of.spectrum, option="write_nexus",
                        pixel_mask=frames_of.pixel_mask)
    write_atomic(path, data)

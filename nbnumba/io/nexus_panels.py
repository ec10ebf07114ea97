"""NXmx files of a detector of several panels: one ``NXdetector_module`` per panel.

The frames are stored as nbnumba renders them: one image per frame, ``(frames, rows,
columns)``, that holds every panel at its place (``data_origin``, ``data_size``: the
rows and columns of the image the module's pixels occupy), as real Eiger and Jungfrau
files store their modules. dxtbx's NXmx reader (``dxtbx.nexus.get_dxtbx_detector``,
``get_raw_data``) turns each module into a panel of a hierarchical detector and reads
its pixels from that slice of the image; the image's pixels in no module (the gaps)
are flagged in ``pixel_mask`` (bit 0, "gap") and never read.

Each module's chain places its panel in the NeXus (McStas) frame, independently of the
others (tiles may be turned any way): ``fast_pixel_direction`` and
``slow_pixel_direction`` (one pixel each, along the panel's axes) depend on
``module_offset`` (from the detector's origin to the outer corner of the panel's pixel
(0, 0)), which depends on the detector's ``transformations/det_z`` (the sample to the
foot of its perpendicular on the plane of the panel most square to the beam: the
detector's position, about which DIALS turns and shifts the whole detector). So the
corner of pixel (0, 0) of module k is ``det_z + module_offset`` and pixel (f, s) lies
(f + 1/2) pixels along the fast and (s + 1/2) along the slow direction from it, as in
dxtbx.

The rest of the file (beam, sample and rotation, the frames' storage and compression,
data files joined by a virtual dataset for a series) is :mod:`nbnumba.io.nexus`'s.
"""
import io

import numpy as np

from ..config import ConfigError
from ..experiment import MAX_TRUSTED_COUNT, lab_frame
from . import nexus
from .atomic import check_writable, write_atomic
from .nexus import (THINNEST_SENSOR, _group, _h5py, _iso, _mcstas, _number, _store_frames,
                    _text, _transformation, _write_sample)

_DETECTOR = "/entry/instrument/detector"

#: pixel_mask bits (NeXus NXdetector): 0 a gap between modules, 1 a pixel not rendered
GAP, NOT_RENDERED = 1, 2


def is_multi_panel(images):
    """True when the records describe a detector of several panels."""
    return images[0].panels is not None and len(images[0].panels) > 1


def module_chains(image):
    """Per panel of a :class:`~nbnumba.experiment.SimulatedImage`: its name, the McStas
    vectors (``corner`` in mm, unit ``fast`` and ``slow``), the pixel (mm) and where its
    pixels lie in the image (``origin``: row, column; ``size``: rows, columns)."""
    rows = lab_frame(image.beam, image.spindle, -1)
    chains = []
    for p in image.panel_list():
        chains.append({"name": p.name, "corner": _mcstas(rows, p.origin) * 1000.0,
                       "fast": _mcstas(rows, p.fast), "slow": _mcstas(rows, p.slow),
                       "pixel": p.pixel_size * 1000.0, "origin": p.raster_origin,
                       "size": (p.spixels, p.fpixels)})
    return chains


def _detector_point(chains, image):
    """(unit normal, distance in mm): the detector's position, the foot of the
    perpendicular from the sample on the plane of the panel nearest the beam (for a
    named detector, its plane). Each module's offset is taken from there, as in a
    single-module file: DIALS then turns and shifts the detector about this point."""
    beam = chains[0]["fast"] * 0.0 + _beam_mcstas(image)
    best, best_cos = None, -2.0
    for chain in chains:
        normal = np.cross(chain["fast"], chain["slow"])
        normal /= np.linalg.norm(normal)
        distance = float(normal @ chain["corner"])
        if distance < 0.0:
            normal, distance = -normal, -distance
        cos = float(normal @ beam)
        if cos > best_cos + 1e-12:
            best, best_cos = (normal, distance), cos
    return best


def _beam_mcstas(image):
    return _mcstas(lab_frame(image.beam, image.spindle, -1), image.beam)


def pixel_mask(image, shape, rendered=None):
    """uint32 (rows, columns): GAP where no panel lies, NOT_RENDERED where ``rendered``
    (flat, nonzero = rendered; None: every panel pixel) is 0."""
    mask = np.full(shape, GAP, dtype=np.uint32)
    for p in image.panel_list():
        r, c = p.raster_origin
        mask[r:r + p.spixels, c:c + p.fpixels] = 0
    if rendered is not None:
        off = (np.asarray(rendered).reshape(shape) == 0) & (mask == 0)
        mask[off] = NOT_RENDERED
    return mask


def rendered_pixels(setup):
    """uint8, flat raster order: 1 for each pixel a render of ``setup`` computes (inside
    the region of interest, not masked, on a panel), else 0."""
    rows, cols = setup.spixels, setup.fpixels
    xmin, xmax, ymin, ymax = setup.roi
    inside = np.zeros((rows, cols), dtype=np.uint8)
    inside[max(ymin, 0):max(ymax + 1, 0), max(xmin, 0):max(xmax + 1, 0)] = 1
    if setup.mask is not None:
        inside &= (setup.mask.reshape(rows, cols) != 0)
    return inside.ravel()


def _unique_names(chains):
    seen = {}
    names = []
    for chain in chains:
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in chain["name"]) \
            or "module"
        if base in seen or base in ("transformations", "depends_on"):
            seen[base] = seen.get(base, 0) + 1
            base = "%s_%d" % (base, seen[base])
        seen.setdefault(base, 0)
        names.append(base)
    return names


def _write_detector(instrument, image, shape, counts, rendered):
    det = _group(instrument, "detector", "NXdetector")
    _text(det, "depends_on", _DETECTOR + "/transformations/det_z")
    _text(det, "description", "nbnumba simulated detector of %d modules"
          % len(image.panel_list()))
    _text(det, "type", "simulated")
    pixel = image.panel_list()[0].pixel_size
    _number(det, "x_pixel_size", pixel, "m")
    _number(det, "y_pixel_size", pixel, "m")
    _text(det, "sensor_material", image.material or "Si")
    _number(det, "sensor_thickness", max(image.thickness, THINNEST_SENSOR), "m")
    if image.mu > 0.0:
        _number(det, "sensor_attenuation_length", 1.0 / image.mu, "m")
    _number(det, "count_time", image.exposure, "s")
    _number(det, "frame_time", image.exposure, "s")
    if counts:
        low, high = image.trusted_range if image.trusted_range else (0, MAX_TRUSTED_COUNT)
        _number(det, "saturation_value", np.int64(min(high, MAX_TRUSTED_COUNT)))
        _number(det, "underload_value", np.int64(max(low, 0)))
        _number(det, "bit_depth_readout", np.int32(16))
        _number(det, "pedestal", image.adc, "counts")
    det.create_dataset("pixel_mask", data=pixel_mask(image, shape, rendered),
                       compression="gzip", compression_opts=4)
    det["pixel_mask"].attrs["applied"] = np.bool_(False)
    chains = module_chains(image)
    normal, distance = _detector_point(chains, image)
    tr = _group(det, "transformations", "NXtransformations")
    _transformation(tr, "det_z", distance, "translation", normal, ".", "mm")
    for name, chain in zip(_unique_names(chains), chains):
        module = _group(det, name, "NXdetector_module")
        path = "%s/%s" % (_DETECTOR, name)
        _number(module, "data_origin", np.array(chain["origin"], dtype=np.int64))
        _number(module, "data_size", np.array(chain["size"], dtype=np.int64))
        _number(module, "data_stride", np.array([1, 1], dtype=np.int64))
        rest = chain["corner"] - distance * normal
        length = float(np.linalg.norm(rest))
        direction = rest / length if length > 0.0 else chain["fast"]
        _transformation(module, "module_offset", length, "translation", direction,
                        _DETECTOR + "/transformations/det_z", "mm")
        for axis in ("fast", "slow"):
            _transformation(module, axis + "_pixel_direction", chain["pixel"], "translation",
                            chain[axis], path + "/module_offset", "mm", offset=(0, 0, 0))


def _write_master(h5, images, frames, sources, dtype, start_time, end_time, spectrum,
                  rendered):
    from .._version import __version__
    h5py = _h5py()
    image = images[0]
    rows = max(p.raster_origin[0] + p.spixels for p in image.panel_list())
    cols = max(p.raster_origin[1] + p.fpixels for p in image.panel_list())
    if frames is not None:
        rows, cols = frames.shape[1:]
    shape = (len(images), rows, cols)
    h5.attrs["NX_class"] = "NXroot"
    h5.attrs["creator"] = "nbnumba %s" % __version__
    h5.attrs["default"] = "entry"
    entry = _group(h5, "entry", "NXentry", default="data")
    _text(entry, "definition", "NXmx", version="1.0")
    _text(entry, "start_time", _iso(start_time))
    _text(entry, "end_time", _iso(end_time))
    _text(entry, "end_time_estimated", _iso(end_time))
    instrument = _group(entry, "instrument", "NXinstrument")
    _text(instrument, "name", "nbnumba simulation")
    source = _group(instrument, "source", "NXsource")
    _text(source, "name", "nbnumba simulated source")
    beam = _group(instrument, "beam", "NXbeam")
    wavelength = _number(beam, "incident_wavelength", image.wavelength * 1e10, "angstrom")
    if spectrum is not None:
        wavelength.attrs["variant"] = "incident_wavelength_spectrum"
        _number(beam, "incident_wavelength_spectrum", np.asarray(spectrum[0]) * 1e10,
                "angstrom")
        _number(beam, "incident_wavelength_spectrum_weights", np.asarray(spectrum[1]))
    _number(beam, "total_flux", image.flux, "Hz")
    _write_detector(instrument, image, shape[1:], np.dtype(dtype).kind == "u", rendered)
    rows_frame = lab_frame(image.beam, image.spindle, -1)
    _write_sample(entry, images, {"axis": _mcstas(rows_frame, image.spindle)})
    data = _group(entry, "data", "NXdata", signal="data")
    if sources is None:
        _store_frames(data, frames)
    else:
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        for i, path in enumerate(sources):
            layout[i] = h5py.VirtualSource(path, "/entry/data/data", shape=(1,) + shape[1:])
        data.create_virtual_dataset("data", layout, fillvalue=0)


def master_bytes(images, frames=None, sources=None, dtype=None, start_time=None,
                 end_time=None, spectrum=None, option="-nexus", rendered=None):
    """The content (bytes) of the NXmx master file of frames of several panels;
    arguments as :func:`nbnumba.io.nexus.master_bytes` (frames: (frames, rows,
    columns), the images as rendered); rendered: the set-up's mask (flat, 0: not
    rendered) or None, flagged in ``pixel_mask``."""
    h5py = _h5py()
    nexus._check_geometry(images, option)
    if frames is not None:
        frames = np.asarray(frames)
        dtype = frames.dtype
        if frames.ndim != 3 or frames.shape[0] != len(images):
            raise ConfigError(f"{option}: {len(images)} frames expected, got an array of "
                              f"shape {frames.shape}")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as h5:
        _write_master(h5, images, frames, sources, dtype, start_time, end_time, spectrum,
                      rendered)
    return buffer.getvalue()


def write_nexus(path, results, images, adc=40.0, start_time=None, end_time=None):
    """:func:`nbnumba.io.nexus.write_nexus` (``nbnumba.write_nexus``), frames of a detector
    of several panels included: those with one module per panel. Arguments, errors and
    the file as there."""
    single = results if isinstance(results, (list, tuple)) else [results]
    if not single or not hasattr(single[0], "setup") or single[0].setup.panels is None \
            or len(single[0].setup.panels) < 2:
        return nexus.write_nexus(path, results, images, adc, start_time, end_time)
    nexus.require_h5py("write_nexus")
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
    images = list(images)
    if len(images) != len(single):
        raise ConfigError(f"write_nexus: {len(single)} results and {len(images)} images: "
                          "give one image per result")
    if len({np.asarray(im).dtype for im in images}) != 1:
        raise ConfigError("write_nexus: the images must share one dtype")
    check_writable(path)
    records = nexus.frame_records([r.setup for r in single], adc, "write_nexus")
    data = master_bytes(records, frames=np.stack([np.asarray(im) for im in images]),
                        start_time=start_time, end_time=end_time,
                        spectrum=nexus.spectrum(single[0].setup), option="write_nexus",
                        rendered=rendered_pixels(single[0].setup))
    write_atomic(path, data)

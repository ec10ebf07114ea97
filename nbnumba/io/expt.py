"""DIALS experiment lists (``.expt``): the JSON that ``dials.import`` writes.

The layout follows dxtbx's serialisation (``ExperimentList.to_dict`` and the models'
``to_dict``): lists of beams, detectors, goniometers, scans, crystals and imagesets,
and one ``Experiment`` per sweep (or per still image) pointing into them by index. Units
are dxtbx's: millimetres, Angstrom, degrees. Vectors are in DIALS' laboratory frame
(:func:`nbnumba.experiment.lab_frame` with the beam along -z and the rotation axis along
+x); image paths are relative to the directory of the ``.expt`` file, which is how dxtbx
resolves them.

The scan states the oscillation as given; with the C's phi sampling the crystal the
images show is rotated from it by :func:`nbnumba.experiment.orientation_offset`
(-osc/(2 phisteps) about the spindle), with ``-phi_midpoints`` not at all.

:func:`experiment_list` builds the dictionary from :class:`~nbnumba.experiment.SimulatedImage`
records; :func:`expt_bytes` is the file's content.

Beside dxtbx's models the file holds an ``"nbnumba"`` block, which dxtbx ignores: for
each experiment, the configuration its images were rendered from
(:func:`nbnumba.experiment.configuration_record`). The models are conversions of it
(millimetres, Angstrom and degrees, DIALS' frame, real-space crystal vectors), which do
not always convert back to the same doubles; with the block, ``nbnumba --experiment``
renders a file nbnumba wrote bit for bit as the command that wrote it
(:mod:`nbnumba.experiment_input`).
"""
import json
import os
import uuid

from ..experiment import degrees, lab_frame, sweeps, to_frame

#: the Hall symbol of P1, as cctbx writes it
P1_HALL = " P 1"

#: version of the "nbnumba" block (the configuration the images were rendered from)
EXACT_VERSION = 1

EXACT_ABOUT = ("the nbnumba configuration these images were rendered from; nbnumba "
               "--experiment uses it when the models above are exactly what it describes")


def _frame(image):
    return lab_frame(image.beam, image.spindle, -1)


def _components(rows, v, factor=1.0):
    """v in the DIALS frame, times factor, as a list (no negative zeros)."""
    return [factor * x + 0.0 for x in to_frame(rows, v)]


def _beam(image, rows):
    normal, fraction = image.polarization()
    return {
        "__id__": "monochromatic",
        "direction": _components(rows, image.beam, -1.0),  # sample to source
        "wavelength": image.wavelength * 1e10,
        "divergence": 0.0,
        "sigma_divergence": 0.0,
        "polarization_normal": _components(rows, normal),
        "polarization_fraction": fraction,
        "flux": image.flux,
        "transmission": 1.0,
        "probe": "x-ray",
        "sample_to_source_distance": 0.0,
    }


def _panel_common(name, fast, slow, origin):
    return {"name": name, "type": "SENSOR_PAD", "fast_axis": fast, "slow_axis": slow,
            "origin": origin}


def _panel(image, rows, record):
    px = record.pixel_size * 1000.0
    parallax = image.thickness > 0.0 and image.mu > 0.0
    panel = _panel_common(record.name, _components(rows, record.fast),
                          _components(rows, record.slow),
                          _components(rows, record.origin, 1000.0))
    panel.update({
        "raw_image_offset": [0, 0],
        "image_size": [record.fpixels, record.spixels],
        "pixel_size": [px, px],
        "trusted_range": [float(x) for x in image.trusted_range],
        "thickness": image.thickness * 1000.0,
        "material": image.material,
        "mu": image.mu / 1000.0,
        "identifier": "",
        "mask": [],
        "gain": 1.0,
        "pedestal": image.adc,
        "px_mm_strategy": {"type": "ParallaxCorrectedPxMmStrategy" if parallax
                           else "SimplePxMmStrategy"},
    })
    return panel


def _detector(image, rows):
    panels = [_panel(image, rows, record) for record in image.panel_list()]
    root = _panel_common("", [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0])
    root.update({"type": "", "raw_image_offset": [0, 0], "image_size": [0, 0],
                 "pixel_size": [0.0, 0.0], "trusted_range": [0.0, 0.0], "thickness": 0.0,
                 "material": "", "mu": 0.0, "identifier": "", "mask": [], "gain": 1.0,
                 "pedestal": 0.0, "px_mm_strategy": {"type": "SimplePxMmStrategy"},
                 "children": [{"panel": i} for i in range(len(panels))]})
    return {"panels": panels, "hierarchy": root}


def _goniometer(image, rows):
    axis = image.spindle
    identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    return {"rotation_axis": _components(rows, axis), "fixed_rotation": identity,
            "setting_rotation": identity}


def _scan(sweep):
    first, last = sweep.image_range
    n = last - first + 1
    start, width = degrees(sweep.first.phi0), degrees(sweep.first.osc)
    properties = {
        "epochs": [0.0] * n,
        "exposure_time": [float(sweep.first.exposure)] * n,
        "oscillation": [start + i * width for i in range(n)],
    }
    if n == 1:
        properties["oscillation_width"] = [width]
    # dxtbx's import of a template sets the batch offset to the first image number - 1
    # (dxtbx.imageset.ImageSetFactory: array_range[0]); the same here, so that the scan
    # equals the one dxtbx reads from the images (-1 for frames numbered from 0)
    return {"image_range": [first, last], "batch_offset": first - 1,
            "properties": properties, "valid_image_ranges": {}}


def _crystal(image, rows):
    if image.is_rotation:
        vectors = (image.a, image.b, image.c)     # at phi = 0, the goniometer's datum
    else:
        vectors = image.crystal_at(image.phi0)    # a still: as it was in the beam
    a, b, c = (_components(rows, v, 1e10) for v in vectors)
    return {"__id__": "crystal", "real_space_a": a, "real_space_b": b, "real_space_c": c,
            "space_group_hall_symbol": P1_HALL}


def _relative(path, directory):
    return os.path.relpath(os.path.abspath(path), directory)


def _imageset(sweep, directory, container=None):
    extra = {"mask": None, "gain": None, "pedestal": None, "dx": None, "dy": None,
             "params": {}}
    image = sweep.first
    if container is not None:   # the images are frames 1, 2 ... of one (NXmx) file
        path = _relative(container, directory)
        indices = [im.name.number - 1 for im in sweep.images]
        if image.is_rotation:
            return {"__id__": "ImageSequence", "template": path,
                    "single_file_indices": indices, **extra}
        return {"__id__": "ImageSet", "images": [path] * len(indices),
                "single_file_indices": indices, **extra}
    if image.is_rotation:
        template = _relative(image.name.template("#"), directory)
        return {"__id__": "ImageSequence", "template": template, **extra}
    path = image.name.prefix + image.name.digits + image.name.ext
    return {"__id__": "ImageSet", "images": [_relative(path, directory)], **extra}


def _index(table, item):
    """Index of ``item`` in ``table`` (a list of dicts), appending it when new."""
    for i, existing in enumerate(table):
        if existing == item:
            return i
    table.append(item)
    return len(table) - 1


def experiment_list(images, expt_path, container=None):
    """The experiment list (a dict) of the images written, for a file at ``expt_path``.

    images: :class:`~nbnumba.experiment.SimulatedImage` records in frame order. Frames
    that form one rotation sweep become one experiment with an ``ImageSequence``; other
    frames (stills, or frames with different crystals) one experiment each.
    container: None (each image is the file its name gives) or the path of the one file
    that holds them all, an NXmx file, where an image numbered n is frame n - 1.
    Identifiers are UUIDs derived from the image paths (the same run gives the same
    file).
    """
    directory = os.path.dirname(os.path.abspath(expt_path))
    tables = {k: [] for k in ("beam", "detector", "goniometer", "scan", "crystal",
                              "imageset")}
    experiments = []
    for sweep in sweeps(images):
        image = sweep.first
        rows = _frame(image)
        entry = {"__id__": "Experiment"}
        path = os.path.abspath(image.name.prefix + image.name.digits + image.name.ext)
        if container is not None:
            path = "%s#%s" % (os.path.abspath(container), image.name.digits)
        entry["identifier"] = str(uuid.uuid5(uuid.NAMESPACE_URL, "nbnumba:" + path))
        entry["beam"] = _index(tables["beam"], _beam(image, rows))
        entry["detector"] = _index(tables["detector"], _detector(image, rows))
        if image.is_rotation:
            entry["goniometer"] = _index(tables["goniometer"], _goniometer(image, rows))
            entry["scan"] = _index(tables["scan"], _scan(sweep))
        entry["crystal"] = _index(tables["crystal"], _crystal(image, rows))
        entry["imageset"] = _index(tables["imageset"], _imageset(sweep, directory, container))
        experiments.append(entry)
    result = {"__id__": "ExperimentList", "experiment": experiments}
    result.update(tables)
    exact = [sweep.first.exact for sweep in sweeps(images)]
    if all(block is not None for block in exact):
        result["nbnumba"] = {"version": EXACT_VERSION, "about": EXACT_ABOUT,
                             "experiments": exact}
    return result


def expt_bytes(images, expt_path, container=None):
    """The ``.expt`` file's content (UTF-8 JSON); see :func:`experiment_list`."""
    return (json.dumps(experiment_list(images, expt_path, container), indent=2)
            + "\n").encode("utf-8")

"""PANalytical XRDML (schemas 1.x and 2.x): one Pattern per <scan>.

2θ from ``<positions axis="2Theta">`` (start/end positions or a list);
intensity from ``<intensities>`` (1.x) or ``<counts>`` (2.x, multiplied by
``<beamAttenuationFactors>`` where present). The wavelength is
``<usedWavelength>``; when it is intended as "K-Alpha 1" (a primary
monochromator removed Kα2) the pattern is monochromatic Kα1.

Not fairmat-readers-xrd: it merges all scans of a file into one array and
needs a path on disk, while we return one Pattern per scan and read
decompressed bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from model.errors import InputError
from model.pattern import Pattern
from model.readers.scan import build_pattern, wavelength_of


def sniff(head: bytes) -> bool:
    return b"<xrdMeasurements" in head


def read(source: str, data: bytes) -> list[Pattern]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise InputError(source, f"not well-formed XML ({error})") from None
    for element in root.iter():  # schema versions differ only in namespace: drop it
        element.tag = element.tag.rsplit("}", 1)[-1]
    sample = root.find("sample/name")
    sample_id = root.find("sample/id")
    patterns = []
    for measurement in root.findall("xrdMeasurement"):
        used = measurement.find("usedWavelength")
        anode = _text(measurement.find("incidentBeamPath/xRayTube/anodeMaterial"))
        wavelength = None
        if used is not None:
            values = [_text(used.find(k)) for k in ("kAlpha1", "kAlpha2", "ratioKAlpha2KAlpha1")]
            wavelength = wavelength_of(source, *values, label=anode or "")
            if wavelength is not None and used.get("intended") == "K-Alpha 1":
                wavelength = wavelength.monochromatic()
        scans = measurement.findall("scan")
        for scan in scans:
            label = f"scan {len(patterns) + 1}" if len(scans) > 1 else ""
            metadata = {"sample": _text(sample) or _text(sample_id), "scan_axis": scan.get("scanAxis"),
                        "scan_mode": scan.get("mode"), "status": scan.get("status"),
                        "measurement_type": measurement.get("measurementType"), "anode": anode,
                        "intended_wavelength": used.get("intended") if used is not None else None,
                        "counting_time_s": _text(scan.find("dataPoints/commonCountingTime"))}
            patterns.append(_scan(source, scan, wavelength, metadata, label))
    return patterns


def _scan(source, scan, wavelength, metadata, label) -> Pattern:
    where = f"{label}: " if label else ""
    points = scan.find("dataPoints")
    if points is None:
        raise InputError(source, f"{where}scan has no <dataPoints>")
    counts = points.find("counts")
    node = points.find("intensities")
    node = node if node is not None else counts
    if node is None or not (node.text or "").strip():
        raise InputError(source, f"{where}scan has no <intensities> or <counts>")
    intensity = np.array(node.text.split(), dtype=float)
    metadata = {**metadata, "intensity_unit": node.get("unit") or "counts"}
    attenuation = points.find("beamAttenuationFactors")
    if node is counts and attenuation is not None and (attenuation.text or "").strip():
        factors = np.array(attenuation.text.split(), dtype=float)
        if factors.size == intensity.size:
            intensity = intensity * factors
    positions = next((p for p in points if p.tag == "positions" and p.get("axis") == "2Theta"),
                     None)
    if positions is None:
        raise InputError(source, f"{where}a {metadata['scan_axis']} scan has no 2θ axis")
    listed = positions.find("listPositions")
    if listed is not None:
        two_theta = np.array(listed.text.split(), dtype=float)
    else:
        start, end = _text(positions.find("startPosition")), _text(positions.find("endPosition"))
        common = _text(positions.find("commonPosition"))
        if start is None or end is None:
            raise InputError(source, f"{where}2θ is fixed at {common}°: not a 2θ scan")
        two_theta = np.linspace(float(start), float(end), intensity.size)
    return build_pattern(source, "xrdml", two_theta, intensity, None, wavelength, metadata, label)


def _text(node) -> str | None:
    return node.text.strip() if node is not None and node.text else None

"""Figures of the window's views (PNG / SVG / PDF) and screenshots of the whole window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph.exporters
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QMarginsF,
    QPoint,
    QRectF,
    QSize,
    QSizeF,
)
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QWidget

from model.errors import InputError
from model.files import atomic_write

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def rgba_image(array: np.ndarray) -> QImage:
    """An (H, W, 4) uint8 RGBA array as a QImage (copied, so the array may go)."""
    array = np.ascontiguousarray(array[..., :4], dtype=np.uint8)
    height, width = array.shape[:2]
    return QImage(array.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


def window_image(window: QWidget, gl_views: list[tuple[QWidget, np.ndarray]]) -> QImage:
    """The whole window as an image, with each OpenGL view painted from its own off-screen render
    (a plain widget grab cannot read GL surfaces on every platform)."""
    image = window.grab().toImage()
    painter = QPainter(image)
    for widget, rgba in gl_views:
        if widget.isVisible():
            origin = widget.mapTo(window, QPoint(0, 0))
            painter.drawImage(QRectF(origin.x(), origin.y(), widget.width(), widget.height()), rgba_image(rgba))
    painter.end()
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data)


def _paint_to(path: Path, size: QSize, paint) -> None:
    """Run ``paint(painter, rect)`` onto an SVG or PDF of ``size`` pixels at ``path``, atomically."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if path.suffix.lower() == ".svg":
        device = QSvgGenerator()
        device.setOutputDevice(buffer)
        device.setSize(size)
        device.setViewBox(QRectF(0, 0, size.width(), size.height()))
        device.setTitle(path.stem)
        rect = QRectF(0, 0, size.width(), size.height())
    else:
        device = QPdfWriter(buffer)
        device.setResolution(72)  # one pixel of the figure = one PDF point
        page = QPageSize(QSizeF(size), QPageSize.Unit.Point, path.stem, QPageSize.SizeMatchPolicy.ExactMatch)
        device.setPageLayout(QPageLayout(page, QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
        rect = QRectF(0, 0, size.width(), size.height())
    painter = QPainter(device)
    paint(painter, rect)
    painter.end()
    buffer.close()
    with atomic_write(path, "wb") as out:
        out.write(bytes(data))


def save_image(image: QImage, path: str | Path) -> Path:
    """An image as PNG, or embedded in SVG / PDF, chosen by the suffix."""
    path = _checked(path)
    if path.suffix.lower() == ".png":
        with atomic_write(path, "wb") as out:
            out.write(png_bytes(image))
    else:
        _paint_to(path, image.size(), lambda painter, rect: painter.drawImage(rect, image))
    return path


def save_pattern_figure(plot_widget, path: str | Path, width_px: int = 1600) -> Path:
    """The pattern plot (a PatternWidget): vector SVG/PDF drawn from the scene with the curves
    decimated to the plot's pixel columns (PatternWidget.decimated), PNG at ``width_px``."""
    path = _checked(path)
    scene = plot_widget.scene()
    if path.suffix.lower() == ".png":
        exporter = pyqtgraph.exporters.ImageExporter(plot_widget.ci)
        exporter.parameters()["width"] = width_px
        image = exporter.export(toBytes=True)
        return save_image(image, path)
    # the plots' layout as laid out on screen (the scene's own rect only ever grows)
    source = plot_widget.ci.sceneBoundingRect()
    size = QSize(int(source.width()), int(source.height()))
    with plot_widget.decimated():
        _paint_to(path, size, lambda painter, rect: scene.render(painter, rect, source))
    return path


def _checked(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError(path, f"figures are written as {', '.join(FIGURE_SUFFIXES)}, not {path.suffix or 'no suffix'}")
    return path

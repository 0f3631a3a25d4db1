"""Areas of feed entries (circles and polygons on the globe) and whether a home is inside.

A home on the boundary counts as inside: an agency that draws its line along a street
means the houses on it. Polygons may cross the antimeridian; they may not encircle a
pole, which the feed format refuses (see docs/feeds.md).
"""

from __future__ import annotations

from dataclasses import dataclass
import math

EARTH_RADIUS_M = 6_371_008.8
# Circle boundaries are fuzzy by the width of a house: a home's stored location is
# never more exact than that, and float rounding must not push a home on the line out.
CIRCLE_TOLERANCE_M = 1.0
# About a millimetre at the equator, for float rounding on polygon edges.
_EDGE_EPSILON_DEG = 1e-8


@dataclass(frozen=True, slots=True)
class Point:
    """A place in WGS 84 degrees: latitude -90..90, longitude -180..180."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Circle:
    center: Point
    radius_m: float


@dataclass(frozen=True, slots=True)
class Polygon:
    """Vertices in order, not repeating the first; edges are straight in lat/lon."""

    vertices: tuple[Point, ...]


type Area = Circle | Polygon


def distance_m(a: Point, b: Point) -> float:
    """Great-circle distance (haversine), good to well under a metre at city scale."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlam = math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def unwrapped_longitudes(vertices: tuple[Point, ...]) -> list[float]:
    """Longitudes made continuous, so an edge never jumps 360° at the antimeridian.

    Each edge takes the short way round (at most 180° of longitude), as an agency
    drawing on a map means it.
    """
    lons = [vertices[0].lon]
    for vertex in vertices[1:]:
        lon = vertex.lon
        while lon - lons[-1] > 180:
            lon -= 360
        while lon - lons[-1] < -180:
            lon += 360
        lons.append(lon)
    return lons


def encircles_pole(vertices: tuple[Point, ...]) -> bool:
    """True when the ring's short-way edges wind once around the globe (around a pole)."""
    lons = unwrapped_longitudes(vertices)
    closing = vertices[0].lon - lons[-1]
    while closing > 180:
        closing -= 360
    while closing < -180:
        closing += 360
    return abs(lons[-1] + closing - lons[0]) > 180


def _on_segment(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> bool:
    cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    length = math.hypot(bx - ax, by - ay)
    if length == 0:
        return math.hypot(px - ax, py - ay) <= _EDGE_EPSILON_DEG
    if abs(cross) / length > _EDGE_EPSILON_DEG:
        return False
    return (
        min(ax, bx) - _EDGE_EPSILON_DEG <= px <= max(ax, bx) + _EDGE_EPSILON_DEG
        and min(ay, by) - _EDGE_EPSILON_DEG <= py <= max(ay, by) + _EDGE_EPSILON_DEG
    )


def _in_ring(px: float, py: float, ring: list[tuple[float, float]]) -> bool:
    """Even-odd rule with the boundary counted inside; works for concave rings."""
    inside = False
    count = len(ring)
    for i in range(count):
        ax, ay = ring[i]
        bx, by = ring[(i + 1) % count]
        if _on_segment(px, py, ax, ay, bx, by):
            return True
        if (ay > py) != (by > py):
            x_at = ax + (py - ay) * (bx - ax) / (by - ay)
            if px < x_at:
                inside = not inside
    return inside


def polygon_contains(polygon: Polygon, point: Point) -> bool:
    lons = unwrapped_longitudes(polygon.vertices)
    ring = [(lon, v.lat) for lon, v in zip(lons, polygon.vertices, strict=True)]
    # The unwrapped ring may sit anywhere in -540..540; try the home at each of its
    # longitudes so a polygon across the antimeridian finds it on either side.
    return any(_in_ring(point.lon + shift, point.lat, ring) for shift in (0.0, 360.0, -360.0))


def contains(area: Area, point: Point) -> bool:
    """Whether ``point`` (a home) lies in ``area``, its boundary included."""
    if isinstance(area, Circle):
        return distance_m(area.center, point) <= area.radius_m + CIRCLE_TOLERANCE_M
    return polygon_contains(area, point)

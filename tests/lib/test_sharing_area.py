"""Whether a home is inside an area: circles, concave polygons, the antimeridian, edges."""

from __future__ import annotations

from hypothesis import given, strategies as st
import pytest

from custom_components.doorstep.sharing.area import (
    Circle,
    Point,
    Polygon,
    contains,
    distance_m,
    encircles_pole,
)

# A square around Zurich's main station, about 1.1 km wide.
SQUARE = Polygon((Point(47.37, 8.53), Point(47.37, 8.545), Point(47.38, 8.545), Point(47.38, 8.53)))
# A "U" open to the north: the notch (47.375..47.38, 8.535..8.54) is outside.
U_SHAPE = Polygon(
    (
        Point(47.37, 8.53),
        Point(47.37, 8.545),
        Point(47.38, 8.545),
        Point(47.38, 8.54),
        Point(47.375, 8.54),
        Point(47.375, 8.535),
        Point(47.38, 8.535),
        Point(47.38, 8.53),
    )
)
# Fiji straddles 180°: from 179.5 E to 179.5 W.
ACROSS_180 = Polygon((Point(-17, 179.5), Point(-17, -179.5), Point(-18, -179.5), Point(-18, 179.5)))


def test_distance_of_a_known_pair() -> None:
    # Zurich HB to Bern station: about 95.5 km as the crow flies.
    assert 95_000 < distance_m(Point(47.3779, 8.5403), Point(46.9490, 7.4393)) < 96_000


def test_circle_inside_outside_and_on_the_edge() -> None:
    centre = Point(47.3779, 8.5403)
    # One degree of latitude is about 111.2 km, so 0.001° is about 111.2 m.
    ring = Circle(centre, distance_m(centre, Point(47.3789, 8.5403)))
    assert contains(ring, centre)
    assert contains(ring, Point(47.3789, 8.5403))  # exactly on the boundary
    assert not contains(ring, Point(47.3790, 8.5403))  # 11 m beyond it


def test_circle_across_the_antimeridian() -> None:
    ring = Circle(Point(-17.5, 179.99), 5_000)
    assert contains(ring, Point(-17.5, -179.99))  # 2.1 km away, on the other side of 180°
    assert not contains(ring, Point(-17.5, 179.9))  # 9.6 km away


def test_square_inside_outside() -> None:
    assert contains(SQUARE, Point(47.375, 8.54))
    assert not contains(SQUARE, Point(47.385, 8.54))
    assert not contains(SQUARE, Point(47.375, 8.55))


@pytest.mark.parametrize(
    "home",
    [Point(47.37, 8.54), Point(47.38, 8.53), Point(47.375, 8.545), Point(47.38, 8.545)],
    ids=["south-edge", "corner", "east-edge", "north-east-corner"],
)
def test_home_on_an_edge_or_corner_is_inside(home: Point) -> None:
    assert contains(SQUARE, home)


def test_concave_polygon_notch_is_outside() -> None:
    assert not contains(U_SHAPE, Point(47.378, 8.5375))  # in the notch
    assert contains(U_SHAPE, Point(47.378, 8.532))  # left arm
    assert contains(U_SHAPE, Point(47.378, 8.543))  # right arm
    assert contains(U_SHAPE, Point(47.372, 8.5375))  # the bottom of the U
    assert contains(U_SHAPE, Point(47.375, 8.5375))  # the notch's floor is an edge


@pytest.mark.parametrize("lon", [179.7, 180.0, -180.0, -179.7])
def test_polygon_across_the_antimeridian_contains_both_sides(lon: float) -> None:
    assert contains(ACROSS_180, Point(-17.5, lon))


@pytest.mark.parametrize("lon", [179.0, -179.0, 0.0])
def test_polygon_across_the_antimeridian_excludes_the_rest(lon: float) -> None:
    assert not contains(ACROSS_180, Point(-17.5, lon))


def test_ring_around_a_pole_is_detected() -> None:
    around = tuple(Point(80, lon) for lon in (0, 90, 180, -90))
    assert encircles_pole(around)
    assert not encircles_pole(SQUARE.vertices)
    assert not encircles_pole(ACROSS_180.vertices)


@given(
    lat=st.floats(-60, 60),
    lon=st.floats(-180, 180),
    dlat=st.floats(0.0001, 1),
    dlon=st.floats(0.0001, 1),
    fx=st.floats(0, 1),
    fy=st.floats(0, 1),
)
def test_any_point_of_a_box_is_inside_wherever_the_box_is(
    lat: float, lon: float, dlat: float, dlon: float, fx: float, fy: float
) -> None:
    """Boxes anywhere, the antimeridian included: points within (edges too) are in."""

    def wrap(value: float) -> float:
        return (value + 180) % 360 - 180

    box = Polygon(
        (
            Point(lat, wrap(lon)),
            Point(lat, wrap(lon + dlon)),
            Point(lat + dlat, wrap(lon + dlon)),
            Point(lat + dlat, wrap(lon)),
        )
    )
    assert contains(box, Point(lat + fy * dlat, wrap(lon + fx * dlon)))
    assert not contains(box, Point(lat + dlat + 0.01, wrap(lon + fx * dlon)))

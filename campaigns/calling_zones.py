"""Time-zone facts for US addresses: ZIP prefix -> state, state -> IANA zones.

Public facts, kept as compact data. Zone names use the vocabulary of ``phonenumbers.timezone`` (e.g.
Michigan and Indiana numbers are ``America/New_York``, not ``America/Detroit``), so that a person's
address zones and a number's zones can be intersected by name. The IANA zones left out
(``America/Detroit``, ``America/Indiana/*``, ``America/Kentucky/*``, ``America/Nome``...) share their
UTC offsets, and therefore their wall clocks, with the ones listed.
"""
from __future__ import annotations

from bisect import bisect_right

# First 3-digit ZIP prefix of each USPS range, and the state it belongs to, in ascending order: a
# prefix belongs to the last range that starts at or before it. Military (AA/AE/AP) ranges map to
# None: they say nothing about the person's time zone. Unassigned prefixes inside a range take the
# range's state.
_ZIP3_RANGES: tuple[tuple[int, str | None], ...] = (
    (0, None), (5, "NY"), (6, "PR"), (8, "VI"), (9, "PR"), (10, "MA"), (28, "RI"), (30, "NH"),
    (39, "ME"), (50, "VT"), (55, "MA"), (56, "VT"), (60, "CT"), (70, "NJ"), (90, None), (100, "NY"),
    (150, "PA"), (197, "DE"), (200, "DC"), (201, "VA"), (202, "DC"), (206, "MD"), (220, "VA"),
    (247, "WV"), (270, "NC"), (290, "SC"), (300, "GA"), (320, "FL"), (340, None), (341, "FL"),
    (350, "AL"), (370, "TN"), (386, "MS"), (398, "GA"), (400, "KY"), (430, "OH"), (460, "IN"),
    (480, "MI"), (500, "IA"), (530, "WI"), (550, "MN"), (569, "DC"), (570, "SD"), (580, "ND"),
    (590, "MT"), (600, "IL"), (630, "MO"), (660, "KS"), (680, "NE"), (700, "LA"), (716, "AR"),
    (730, "OK"), (733, "TX"), (734, "OK"), (750, "TX"), (800, "CO"), (820, "WY"), (832, "ID"),
    (840, "UT"), (850, "AZ"), (870, "NM"), (885, "TX"), (889, "NV"), (900, "CA"), (962, None),
    (967, "HI"), (969, "GU"), (970, "OR"), (980, "WA"), (995, "AK"),
)
_ZIP3_STARTS = tuple(start for start, _ in _ZIP3_RANGES)

# Split states: the zones of every part of the state. A state not listed here but present in
# STATE_ZONES has one zone.
STATE_ZONES: dict[str, frozenset[str]] = {
    state: frozenset(zones)
    for state, zones in {
        "AK": ("America/Anchorage", "America/Juneau", "America/Adak"),
        "AL": ("America/Chicago",), "AR": ("America/Chicago",),
        # The Navajo Nation observes DST, the rest of Arizona does not.
        "AZ": ("America/Phoenix", "America/Denver"),
        "CA": ("America/Los_Angeles",), "CO": ("America/Denver",), "CT": ("America/New_York",),
        "DC": ("America/New_York",), "DE": ("America/New_York",),
        "FL": ("America/New_York", "America/Chicago"),  # the Panhandle west of the Apalachicola
        "GA": ("America/New_York",), "HI": ("Pacific/Honolulu",), "IA": ("America/Chicago",),
        "ID": ("America/Boise", "America/Los_Angeles"),  # the northern panhandle is Pacific
        "IL": ("America/Chicago",),
        "IN": ("America/New_York", "America/Chicago"),  # NW and SW corners are Central
        "KS": ("America/Chicago", "America/Denver"),  # four western counties are Mountain
        "KY": ("America/New_York", "America/Chicago"),
        "LA": ("America/Chicago",), "MA": ("America/New_York",), "MD": ("America/New_York",),
        "ME": ("America/New_York",),
        "MI": ("America/New_York", "America/Chicago"),  # four Upper Peninsula counties
        "MN": ("America/Chicago",), "MO": ("America/Chicago",), "MS": ("America/Chicago",),
        "MT": ("America/Denver",), "NC": ("America/New_York",),
        "ND": ("America/Chicago", "America/North_Dakota/Center", "America/Denver"),
        "NE": ("America/Chicago", "America/Denver"),
        "NH": ("America/New_York",), "NJ": ("America/New_York",), "NM": ("America/Denver",),
        "NV": ("America/Los_Angeles", "America/Denver"),  # West Wendover keeps Mountain time
        "NY": ("America/New_York",), "OH": ("America/New_York",), "OK": ("America/Chicago",),
        "OR": ("America/Los_Angeles", "America/Boise"),  # Malheur County is Mountain
        "PA": ("America/New_York",), "RI": ("America/New_York",), "SC": ("America/New_York",),
        "SD": ("America/Chicago", "America/Denver"),
        "TN": ("America/New_York", "America/Chicago"),
        "TX": ("America/Chicago", "America/Denver"),  # El Paso and Hudspeth are Mountain
        "UT": ("America/Denver",), "VA": ("America/New_York",), "VT": ("America/New_York",),
        "WA": ("America/Los_Angeles",), "WI": ("America/Chicago",), "WV": ("America/New_York",),
        "WY": ("America/Denver",),
        "PR": ("America/Puerto_Rico",), "VI": ("America/St_Thomas",), "GU": ("Pacific/Guam",),
        "AS": ("Pacific/Pago_Pago",), "MP": ("Pacific/Saipan",),
    }.items()
}

# ZIP prefixes of split states that lie wholly in one zone, where that is known with confidence.
# Others fall back to every zone of their state, which is the conservative answer.
_ZIP3_ZONES: dict[int, frozenset[str]] = {
    325: frozenset({"America/Chicago"}),  # Pensacola, Fort Walton Beach (FL)
    # 798 is left out: it mixes El Paso County with the Central-time Big Bend.
    799: frozenset({"America/Denver"}),  # El Paso (TX)
    885: frozenset({"America/Denver"}),  # El Paso (TX)
}

STATE_NAMES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Washington D.C.": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Puerto Rico": "PR", "Guam": "GU",
}


def state_for_zip(zip_code: str) -> str | None:
    """Return the state of a US ZIP (5 digits or ZIP+4), or None when it is malformed or military."""
    zip3 = _zip3(zip_code)
    if zip3 is None:
        return None
    return _ZIP3_RANGES[bisect_right(_ZIP3_STARTS, zip3) - 1][1]


def zones_for_zip(zip_code: str) -> frozenset[str]:
    """Return the zones a US ZIP may lie in (empty when the ZIP is unknown)."""
    zip3 = _zip3(zip_code)
    if zip3 is not None and zip3 in _ZIP3_ZONES:
        return _ZIP3_ZONES[zip3]
    state = state_for_zip(zip_code)
    return zones_for_state(state) if state else frozenset()


def zones_for_state(state: str) -> frozenset[str]:
    """Return the zones of a US state or territory code (empty when unknown)."""
    return STATE_ZONES.get(state.strip().upper(), frozenset())


def state_from_geocode(description: str) -> str | None:
    """Return the state named by a phonenumbers geocoder description ("Florida", "Miami, FL")."""
    description = description.strip()
    if description in STATE_NAMES:
        return STATE_NAMES[description]
    _, comma, tail = description.rpartition(", ")
    if comma and tail in STATE_ZONES:
        return tail
    return None


def _zip3(zip_code: str) -> int | None:
    digits = zip_code.strip().split("-")[0]
    if len(digits) != 5 or not digits.isdigit():
        return None
    return int(digits[:3])

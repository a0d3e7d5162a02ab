"""A farms table with a few thousand farms: generated names, owners, cities and products,
the same on every run (a fixed random seed)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import psycopg

FARM_COUNT = 3000
SEED = 20250106

_ADJECTIVES = (
    "Green", "Golden", "Sunny", "Misty", "Red Barn", "Willow", "Oak", "Cedar", "Maple",
    "Clover", "Riverbend", "Hilltop", "Meadow", "Stone", "Blue Sky", "Harvest", "Pine",
    "Wildflower", "Honeybee", "Silver Creek", "Fox Hollow", "Orchard", "Prairie", "Sweetwater",
)  # fmt: skip
_NOUNS = (
    "Acres", "Farm", "Fields", "Gardens", "Homestead", "Ranch", "Orchards", "Valley Farm",
    "Family Farm", "Growers", "Creamery", "Produce", "Roots", "Harvest Co.",
)  # fmt: skip
_FIRST = (
    "Maria", "James", "Aisha", "Tom", "Lena", "Carlos", "Grace", "Samuel", "Priya", "Noah",
    "Elena", "Ben", "Hannah", "Luis", "Ruth", "Omar", "Clara", "Jack", "Mei", "Peter",
)  # fmt: skip
_LAST = (
    "Garcia", "Miller", "Johnson", "Nguyen", "Okafor", "Schmidt", "Brown", "Patel", "Larsen",
    "Rossi", "Walker", "Kim", "Hughes", "Silva", "Yoder", "Fischer", "Novak", "Reyes",
)  # fmt: skip
_CITIES = (
    ("Portland", "OR"), ("Eugene", "OR"), ("Salem", "OR"), ("Seattle", "WA"), ("Spokane", "WA"),
    ("Boise", "ID"), ("Sacramento", "CA"), ("Fresno", "CA"), ("Davis", "CA"), ("Santa Cruz", "CA"),
    ("Madison", "WI"), ("Green Bay", "WI"), ("Des Moines", "IA"), ("Ames", "IA"),
    ("Lancaster", "PA"), ("Burlington", "VT"), ("Ithaca", "NY"), ("Asheville", "NC"),
    ("Athens", "GA"), ("Austin", "TX"), ("Fort Collins", "CO"), ("Boulder", "CO"),
    ("Ann Arbor", "MI"), ("Traverse City", "MI"), ("Lexington", "KY"), ("Nashville", "TN"),
    ("Santa Fe", "NM"), ("Bozeman", "MT"), ("Duluth", "MN"), ("Lawrence", "KS"),
)  # fmt: skip
_PRODUCTS = (
    "apples", "pears", "strawberries", "blueberries", "tomatoes", "sweet corn", "kale",
    "lettuce", "carrots", "potatoes", "squash", "pumpkins", "honey", "eggs", "goat cheese",
    "raw milk", "beef", "lamb", "chicken", "sourdough", "maple syrup", "cut flowers", "garlic",
    "peaches", "cherries", "mushrooms", "herbs", "cider", "jam", "walnuts",
)  # fmt: skip


@dataclass(frozen=True)
class Farm:
    id: int
    name: str
    owner: str
    city: str
    state: str
    products: str
    rating: float

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "city": self.city,
            "state": self.state,
            "products": self.products.split(", "),
            "rating": self.rating,
        }


def generate(count: int = FARM_COUNT, seed: int = SEED) -> list[Farm]:
    rng = random.Random(seed)
    farms = []
    for farm_id in range(1, count + 1):
        owner = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        if rng.random() < 0.3:
            name = f"{owner.split()[1]} {rng.choice(_NOUNS)}"
        city, state = rng.choice(_CITIES)
        products = ", ".join(rng.sample(_PRODUCTS, rng.randint(2, 6)))
        rating = round(rng.uniform(3.0, 5.0), 1)
        farms.append(Farm(farm_id, name, owner, city, state, products, rating))
    return farms


SCHEMA = """
CREATE TABLE IF NOT EXISTS farms (
    id integer PRIMARY KEY,
    name text NOT NULL,
    owner text NOT NULL,
    city text NOT NULL,
    state text NOT NULL,
    products text NOT NULL,
    rating real NOT NULL
)
"""


def load_postgres(dsn: str, farms: list[Farm]) -> None:
    """Create and fill the farms table (COPY), then analyze it; statistics start afresh."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(SCHEMA)
        conn.execute("TRUNCATE farms")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY farms (id, name, owner, city, state, products, rating) FROM STDIN"
            ) as copy,
        ):
            for farm in farms:
                copy.write_row(
                    (farm.id, farm.name, farm.owner, farm.city, farm.state, farm.products,
                     farm.rating)
                )  # fmt: skip
        conn.execute("ANALYZE farms")
        conn.execute("SELECT pg_stat_statements_reset()")

"""Catalog generator: a believable electronics and home-appliance shop, drawn from a seeded numpy RNG.

Pure Python (numpy only; no Django). `catalog_generate(n_products=..., seed=...)` returns a frozen
`Catalog` whose arrays are indexed by *product index* 0..n-1 (the seeder inserts products in that
order, so index i is the product with SKU `catalog.skus[i]`). The same (n_products, seed) always gives
the same catalog, whatever the number of customers.

What is in it, and why:

* A three-level category tree: department > group > leaf (Electronics > Cameras > Lenses). Products
  sit in leaves. Each leaf has a typical mid-tier price, a share of the assortment (many cheap
  accessories, few big-ticket items, so typical order values come out near $50), attribute
  templates, a consumable flag (re-bought: coffee beans, brush heads) and complementary leaves
  (camera -> lenses, memory cards, tripods) that drive sequential intent in the shopper model.
* Brands with a price tier (budget / mid / premium) that scales prices, each selling in a few groups.
* Log-normal prices per (leaf, tier); stock levels with some items out of stock; creation dates
  spread over the year before the simulated window, with ~8% launched *inside* the window so that
  freshness matters (a product cannot be seen before it exists).
* Latent ground truth the recommenders never see: `appeal` (Zipf-like long-tail quality, so a few
  items are very popular) and `style` (a small latent vector matched against shopper tastes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIERS: tuple[str, ...] = ("budget", "mid", "premium")
TIER_PRICE_FACTOR = np.array([0.55, 1.0, 1.9])
COLOURS: tuple[str, ...] = ("black", "white", "silver", "grey", "blue", "red")
STYLE_DIM = 6


@dataclass(frozen=True)
class LeafSpec:
    """A leaf category: `price` is the median mid-tier price in USD; `share` its weight in the assortment."""

    name: str
    group: str
    code: str
    noun: str
    price: float
    share: float
    attrs: tuple[str, ...] = ()
    complements: tuple[str, ...] = ()
    consumable: bool = False


DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "Electronics": ("Cameras", "Audio", "Computers", "Phones", "TV & Video", "Gaming"),
    "Home Appliances": ("Kitchen", "Home Comfort", "Cleaning", "Personal Care"),
}

LEAVES: tuple[LeafSpec, ...] = (
    # Cameras
    LeafSpec(
        "Digital Cameras",
        "Cameras",
        "CAM",
        "Mirrorless Camera",
        480,
        1.0,
        ("megapixels", "colour", "connectivity"),
        ("Lenses", "Memory Cards", "Tripods", "Camera Bags"),
    ),
    LeafSpec(
        "Lenses", "Cameras", "LEN", "Lens", 210, 1.2, ("focal_length", "aperture"), ("Camera Bags", "Tripods")
    ),
    LeafSpec("Memory Cards", "Cameras", "MEM", "Memory Card", 16, 2.2, ("capacity",), (), True),
    LeafSpec("Tripods", "Cameras", "TRI", "Tripod", 38, 1.4, ("colour", "max_height")),
    LeafSpec("Camera Bags", "Cameras", "BAG", "Camera Bag", 34, 1.4, ("colour", "capacity_l")),
    # Audio
    LeafSpec(
        "Headphones",
        "Audio",
        "HPH",
        "Over-Ear Headphones",
        85,
        1.6,
        ("colour", "connectivity", "noise_cancelling"),
        ("Audio Cables", "Headphone Stands"),
    ),
    LeafSpec("Earbuds", "Audio", "EAR", "Wireless Earbuds", 45, 1.8, ("colour", "battery_h"), ("Chargers",)),
    LeafSpec(
        "Speakers",
        "Audio",
        "SPK",
        "Bluetooth Speaker",
        60,
        1.5,
        ("colour", "wattage", "connectivity"),
        ("Audio Cables",),
    ),
    LeafSpec("Audio Cables", "Audio", "ACB", "Audio Cable", 9, 1.8, ("length_m",), (), True),
    LeafSpec("Headphone Stands", "Audio", "HST", "Headphone Stand", 22, 0.8, ("colour",)),
    # Computers
    LeafSpec(
        "Laptops",
        "Computers",
        "LAP",
        "Laptop",
        780,
        1.0,
        ("screen_in", "ram_gb", "storage_gb", "colour"),
        ("Mice", "Laptop Bags", "USB Hubs", "External Drives", "Monitors"),
    ),
    LeafSpec(
        "Monitors",
        "Computers",
        "MON",
        "Monitor",
        210,
        1.0,
        ("screen_in", "resolution"),
        ("HDMI Cables", "Keyboards"),
    ),
    LeafSpec("Keyboards", "Computers", "KEY", "Keyboard", 42, 1.4, ("colour", "connectivity"), ("Mice",)),
    LeafSpec("Mice", "Computers", "MOU", "Mouse", 24, 1.8, ("colour", "connectivity"), ("Keyboards",)),
    LeafSpec("USB Hubs", "Computers", "HUB", "USB-C Hub", 27, 1.3, ("ports",)),
    LeafSpec("External Drives", "Computers", "EXT", "External SSD", 75, 1.2, ("capacity",)),
    LeafSpec("Laptop Bags", "Computers", "LBG", "Laptop Sleeve", 30, 1.2, ("colour", "screen_in")),
    # Phones
    LeafSpec(
        "Smartphones",
        "Phones",
        "PHO",
        "Smartphone",
        520,
        1.0,
        ("storage_gb", "colour", "megapixels"),
        ("Phone Cases", "Chargers", "Screen Protectors", "Power Banks", "Earbuds"),
    ),
    LeafSpec("Phone Cases", "Phones", "CAS", "Phone Case", 15, 2.4, ("colour",)),
    LeafSpec("Chargers", "Phones", "CHG", "Fast Charger", 19, 2.0, ("wattage",), (), True),
    LeafSpec("Screen Protectors", "Phones", "SCR", "Screen Protector", 10, 1.8, (), (), True),
    LeafSpec("Power Banks", "Phones", "PWB", "Power Bank", 29, 1.5, ("capacity_mah", "colour")),
    # TV & Video
    LeafSpec(
        "TVs",
        "TV & Video",
        "TVS",
        "Smart TV",
        560,
        0.9,
        ("screen_in", "resolution"),
        ("Soundbars", "HDMI Cables", "Wall Mounts", "Streaming Sticks"),
    ),
    LeafSpec(
        "Soundbars",
        "TV & Video",
        "SND",
        "Soundbar",
        170,
        1.0,
        ("wattage", "connectivity"),
        ("HDMI Cables", "Wall Mounts"),
    ),
    LeafSpec("HDMI Cables", "TV & Video", "HDM", "HDMI Cable", 11, 1.8, ("length_m",), (), True),
    LeafSpec("Streaming Sticks", "TV & Video", "STR", "Streaming Stick", 40, 1.1, ("resolution",)),
    LeafSpec("Wall Mounts", "TV & Video", "MNT", "TV Wall Mount", 33, 1.2, ("max_screen_in",)),
    # Gaming
    LeafSpec(
        "Consoles",
        "Gaming",
        "CON",
        "Game Console",
        420,
        0.7,
        ("storage_gb", "colour"),
        ("Controllers", "Gaming Headsets", "Charging Docks"),
    ),
    LeafSpec(
        "Controllers", "Gaming", "CTL", "Wireless Controller", 55, 1.4, ("colour",), ("Charging Docks",)
    ),
    LeafSpec("Gaming Headsets", "Gaming", "GHS", "Gaming Headset", 62, 1.3, ("colour", "connectivity")),
    LeafSpec("Charging Docks", "Gaming", "DCK", "Charging Dock", 25, 1.1, ("colour",)),
    # Kitchen
    LeafSpec(
        "Coffee Machines",
        "Kitchen",
        "COF",
        "Espresso Machine",
        240,
        1.0,
        ("wattage", "capacity_l", "colour"),
        ("Coffee Grinders", "Coffee Beans", "Descalers"),
    ),
    LeafSpec(
        "Coffee Grinders", "Kitchen", "GRI", "Burr Grinder", 62, 1.0, ("wattage", "colour"), ("Coffee Beans",)
    ),
    LeafSpec("Coffee Beans", "Kitchen", "BEA", "Coffee Beans 1 kg", 15, 2.2, ("roast",), (), True),
    LeafSpec("Descalers", "Kitchen", "DSC", "Descaler", 9, 1.4, (), (), True),
    LeafSpec(
        "Kettles",
        "Kitchen",
        "KET",
        "Electric Kettle",
        36,
        1.4,
        ("wattage", "capacity_l", "colour"),
        ("Descalers",),
    ),
    LeafSpec("Toasters", "Kitchen", "TOA", "Toaster", 34, 1.2, ("wattage", "colour")),
    LeafSpec("Blenders", "Kitchen", "BLE", "Blender", 58, 1.2, ("wattage", "capacity_l")),
    LeafSpec("Air Fryers", "Kitchen", "AIR", "Air Fryer", 88, 1.2, ("wattage", "capacity_l", "colour")),
    # Home comfort
    LeafSpec("Fans", "Home Comfort", "FAN", "Tower Fan", 42, 1.2, ("wattage", "colour")),
    LeafSpec("Heaters", "Home Comfort", "HEA", "Ceramic Heater", 52, 1.1, ("wattage",)),
    LeafSpec(
        "Air Purifiers",
        "Home Comfort",
        "PUR",
        "Air Purifier",
        150,
        0.9,
        ("room_m2", "colour"),
        ("Purifier Filters",),
    ),
    LeafSpec("Purifier Filters", "Home Comfort", "FIL", "HEPA Filter", 24, 1.4, (), (), True),
    # Cleaning
    LeafSpec(
        "Vacuum Cleaners",
        "Cleaning",
        "VAC",
        "Cordless Vacuum",
        190,
        1.0,
        ("wattage", "battery_h", "colour"),
        ("Vacuum Bags & Filters",),
    ),
    LeafSpec(
        "Robot Vacuums",
        "Cleaning",
        "ROB",
        "Robot Vacuum",
        290,
        0.7,
        ("battery_h", "connectivity"),
        ("Vacuum Bags & Filters",),
    ),
    LeafSpec("Vacuum Bags & Filters", "Cleaning", "VBF", "Vacuum Filter Pack", 12, 1.6, (), (), True),
    # Personal care
    LeafSpec(
        "Electric Toothbrushes",
        "Personal Care",
        "BRU",
        "Electric Toothbrush",
        58,
        1.1,
        ("colour", "battery_h"),
        ("Brush Heads",),
    ),
    LeafSpec("Brush Heads", "Personal Care", "BRH", "Brush Heads 4-pack", 16, 1.6, (), (), True),
    LeafSpec("Hair Dryers", "Personal Care", "DRY", "Hair Dryer", 46, 1.1, ("wattage", "colour")),
    LeafSpec("Shavers", "Personal Care", "SHA", "Electric Shaver", 72, 1.0, ("battery_h",)),
)

GROUPS: tuple[str, ...] = tuple(g for groups in DEPARTMENTS.values() for g in groups)

# Made-up brand names (no real trademarks): name, tier, groups sold in.
BRANDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Lumora", "premium", ("Cameras", "Phones", "TV & Video")),
    ("Optiq", "mid", ("Cameras", "Computers")),
    ("Snapwell", "budget", ("Cameras", "Phones", "Audio")),
    ("Fotonix", "mid", ("Cameras", "TV & Video")),
    ("Sonaris", "premium", ("Audio", "TV & Video")),
    ("Beatline", "mid", ("Audio", "Gaming")),
    ("Echoware", "budget", ("Audio", "Computers", "Phones")),
    ("Resona", "mid", ("Audio", "Personal Care")),
    ("Corvex", "premium", ("Computers", "Gaming")),
    ("Bytewise", "mid", ("Computers", "Phones")),
    ("Nimbal", "budget", ("Computers", "Phones", "Gaming")),
    ("Keyloom", "mid", ("Computers", "Gaming")),
    ("Aerofone", "premium", ("Phones", "Audio")),
    ("Volta", "budget", ("Phones", "Home Comfort", "Cleaning")),
    ("Pixelon", "mid", ("TV & Video", "Gaming", "Cameras")),
    ("Vistara", "premium", ("TV & Video", "Computers")),
    ("Playforge", "mid", ("Gaming",)),
    ("Questa", "budget", ("Gaming", "Audio")),
    ("Baristo", "premium", ("Kitchen",)),
    ("Crema & Co", "mid", ("Kitchen",)),
    ("Kitchora", "budget", ("Kitchen", "Home Comfort")),
    ("Nordhaus", "premium", ("Kitchen", "Cleaning", "Home Comfort")),
    ("Brightway", "mid", ("Kitchen", "Home Comfort", "Personal Care")),
    ("Zephyr", "mid", ("Home Comfort", "Cleaning")),
    ("Purelane", "premium", ("Home Comfort", "Personal Care")),
    ("Dustix", "budget", ("Cleaning",)),
    ("Cyclonic", "mid", ("Cleaning",)),
    ("Smileo", "mid", ("Personal Care",)),
    ("Glowa", "budget", ("Personal Care", "Kitchen")),
    ("Kelvo", "budget", ("Kitchen", "TV & Video", "Computers")),
)

ATTRIBUTE_VALUES: dict[str, tuple] = {
    "colour": COLOURS,
    "megapixels": (12, 20, 24, 33, 45, 61),
    "connectivity": ("Bluetooth", "Wi-Fi", "USB-C", "Bluetooth + Wi-Fi"),
    "noise_cancelling": (True, False),
    "focal_length": ("18-55mm", "24-70mm", "50mm", "70-200mm", "85mm", "16-35mm"),
    "aperture": ("f/1.4", "f/1.8", "f/2.8", "f/4", "f/3.5-5.6"),
    "capacity": ("64 GB", "128 GB", "256 GB", "512 GB", "1 TB", "2 TB"),
    "max_height": ("120 cm", "150 cm", "170 cm"),
    "capacity_l": (0.5, 1.0, 1.2, 1.7, 2.0, 4.5, 10, 20),
    "battery_h": (8, 12, 20, 30, 40, 60),
    "wattage": (20, 40, 65, 100, 800, 1200, 1500, 2000),
    "length_m": (1, 1.5, 2, 3, 5),
    "screen_in": (13, 14, 15.6, 24, 27, 32, 43, 55, 65),
    "ram_gb": (8, 16, 32),
    "storage_gb": (128, 256, 512, 1024),
    "resolution": ("1080p", "1440p", "4K", "8K"),
    "ports": (4, 6, 7, 9),
    "capacity_mah": (5000, 10000, 20000),
    "max_screen_in": (55, 65, 75, 85),
    "roast": ("light", "medium", "dark", "espresso"),
    "room_m2": (20, 35, 50, 80),
}
# Per-leaf values where the generic list would be silly (a 65" laptop, a 65 W blender).
LEAF_ATTRIBUTE_VALUES: dict[tuple[str, str], tuple] = {
    ("Laptops", "screen_in"): (13.3, 14, 15.6, 16),
    ("Laptop Bags", "screen_in"): (13, 14, 15.6, 16),
    ("Monitors", "screen_in"): (24, 27, 32, 34),
    ("TVs", "screen_in"): (43, 50, 55, 65, 75),
    ("Monitors", "resolution"): ("1080p", "1440p", "4K"),
    ("Streaming Sticks", "resolution"): ("1080p", "4K"),
    ("Speakers", "wattage"): (10, 20, 40, 60),
    ("Chargers", "wattage"): (20, 30, 65, 100),
    ("Soundbars", "wattage"): (120, 200, 300, 450),
    ("Coffee Machines", "wattage"): (1150, 1350, 1500),
    ("Coffee Grinders", "wattage"): (150, 200, 250),
    ("Kettles", "wattage"): (2000, 2200, 3000),
    ("Toasters", "wattage"): (800, 950, 1100),
    ("Blenders", "wattage"): (600, 1000, 1400),
    ("Air Fryers", "wattage"): (1400, 1700, 2000),
    ("Fans", "wattage"): (35, 45, 60),
    ("Heaters", "wattage"): (1500, 2000, 2500),
    ("Hair Dryers", "wattage"): (1600, 2000, 2300),
    ("Camera Bags", "capacity_l"): (8, 12, 16, 24),
    ("Coffee Machines", "capacity_l"): (1.2, 1.5, 1.8),
    ("Kettles", "capacity_l"): (1.0, 1.5, 1.7),
    ("Blenders", "capacity_l"): (1.2, 1.5, 2.0),
    ("Air Fryers", "capacity_l"): (3.5, 4.5, 5.5, 6.2),
    ("Memory Cards", "capacity"): ("64 GB", "128 GB", "256 GB", "512 GB"),
    ("External Drives", "capacity"): ("500 GB", "1 TB", "2 TB", "4 TB"),
    ("Earbuds", "battery_h"): (5, 6, 8, 10),
    ("Headphones", "battery_h"): (20, 30, 40, 60),
    ("Vacuum Cleaners", "battery_h"): (0.75, 1, 1.5),
    ("Robot Vacuums", "battery_h"): (1.5, 2, 3),
    ("Electric Toothbrushes", "battery_h"): (14, 21, 30),
    ("Shavers", "battery_h"): (1, 1.5, 2),
    ("Smartphones", "megapixels"): (12, 48, 50, 108, 200),
    ("Digital Cameras", "megapixels"): (20, 24, 33, 45, 61),
}
UNITS = {
    "wattage": " W",
    "battery_h": " h",
    "length_m": " m",
    "capacity_l": " l",
    "screen_in": '"',
    "ram_gb": " GB RAM",
    "storage_gb": " GB",
    "megapixels": " MP",
    "capacity_mah": " mAh",
    "room_m2": " m²",
    "max_screen_in": '"',
}
TITLE_ATTR = (
    "megapixels",
    "capacity",
    "screen_in",
    "focal_length",
    "wattage",
    "capacity_mah",
    "roast",
    "resolution",
)
MODEL_PREFIXES = ("X", "Z", "S", "Pro ", "Air ", "One ", "Max ", "Neo ", "Go ", "Lite ")
DESCRIPTIONS = (
    "The {title} is a {tier_word} {noun_l} built for everyday use. {attr_sentence}",
    "Meet the {title}: {brand}'s {tier_word} take on the {noun_l}. {attr_sentence} Backed by a two-year warranty.",
    "{brand} designed the {title} for people who want a dependable {noun_l}. {attr_sentence}",
    "A {tier_word} {noun_l} from {brand}. {attr_sentence} Free returns within 30 days.",
)
TIER_WORDS = {"budget": "great-value", "mid": "well-rounded", "premium": "premium"}


@dataclass(frozen=True)
class CategoryNode:
    """One category; `parent` is an index into `Catalog.categories` (-1 for a department)."""

    name: str
    slug: str
    parent: int
    level: int
    description: str


@dataclass(frozen=True)
class BrandSpec:
    name: str
    slug: str
    tier: str


@dataclass(frozen=True, eq=False)
class Catalog:
    """The generated shop. Arrays are indexed by product index (length n) unless stated otherwise.

    categories: all tree nodes, parents before children; `leaf_category[l]` maps leaf l to its node.
    leaf:       (n,) leaf index of each product (into LEAVES / `leaf_specs`).
    brand:      (n,) brand index; `tier`: (n,) 0 budget, 1 mid, 2 premium.
    price:      (n,) float USD, rounded to cents, ending in .99/.49 like a real shop.
    stock:      (n,) int units; 0 means out of stock.
    created_day:(n,) float days relative to the start of the simulated window (negative: before it).
    appeal:     (n,) latent long-tail quality (Zipf-like; standardised log-popularity), hidden truth.
    style:      (n, STYLE_DIM) latent style vector, hidden truth.
    colour:     (n,) colour index into COLOURS, -1 when the product has no colour.
    complements:(n_leaves, n_leaves) row-normalised weights: after leaf a, how likely leaf b is next.
    """

    seed: int
    categories: tuple[CategoryNode, ...]
    leaf_specs: tuple[LeafSpec, ...]
    leaf_category: np.ndarray
    leaf_group: np.ndarray
    brands: tuple[BrandSpec, ...]
    skus: tuple[str, ...]
    titles: tuple[str, ...]
    descriptions: tuple[str, ...]
    attributes: tuple[dict, ...]
    leaf: np.ndarray
    brand: np.ndarray
    tier: np.ndarray
    price: np.ndarray
    stock: np.ndarray
    created_day: np.ndarray
    appeal: np.ndarray
    style: np.ndarray
    colour: np.ndarray
    complements: np.ndarray
    consumable: np.ndarray

    @property
    def n_products(self) -> int:
        return len(self.skus)

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_specs)

    @property
    def n_brands(self) -> int:
        return len(self.brands)

    def items_in_leaf(self, leaf: int) -> np.ndarray:
        """Product indices in leaf `leaf` (sorted)."""
        return self._leaf_items[leaf]

    def __post_init__(self) -> None:
        order = np.argsort(self.leaf, kind="stable")
        bounds = np.searchsorted(self.leaf[order], np.arange(self.n_leaves + 1))
        object.__setattr__(
            self, "_leaf_items", tuple(order[bounds[i] : bounds[i + 1]] for i in range(self.n_leaves))
        )
        # price relative to the leaf's mid-tier median: what "expensive for a lens" means
        leaf_price = np.array([s.price for s in self.leaf_specs])
        object.__setattr__(self, "rel_log_price", np.log(self.price / leaf_price[self.leaf]))


def _slugify(text: str) -> str:
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")


def _format_attr(key: str, value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value}{UNITS.get(key, '')}"


def _allocate(n: int, weights: np.ndarray) -> np.ndarray:
    """Split n items over len(weights) bins proportionally (largest remainder), at least one each when n allows."""
    k = len(weights)
    base = np.ones(k, dtype=int) if n >= k else np.zeros(k, dtype=int)
    rest = n - base.sum()
    exact = weights / weights.sum() * rest
    counts = np.floor(exact).astype(int)
    remainder = rest - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return base + counts


def _category_tree() -> tuple[tuple[CategoryNode, ...], np.ndarray, np.ndarray]:
    nodes: list[CategoryNode] = []
    group_node: dict[str, int] = {}
    for dept, groups in DEPARTMENTS.items():
        dept_idx = len(nodes)
        nodes.append(
            CategoryNode(
                dept,
                _slugify(dept),
                -1,
                0,
                f"{dept}: everything from {groups[0].lower()} to {groups[-1].lower()}.",
            )
        )
        for group in groups:
            group_node[group] = len(nodes)
            nodes.append(CategoryNode(group, _slugify(group), dept_idx, 1, f"{group} and accessories."))
    leaf_category = np.empty(len(LEAVES), dtype=int)
    leaf_group = np.empty(len(LEAVES), dtype=int)
    for i, spec in enumerate(LEAVES):
        leaf_category[i] = len(nodes)
        leaf_group[i] = GROUPS.index(spec.group)
        nodes.append(
            CategoryNode(
                spec.name,
                _slugify(f"{spec.group} {spec.name}"),
                group_node[spec.group],
                2,
                f"{spec.name} in {spec.group}.",
            )
        )
    return tuple(nodes), leaf_category, leaf_group


def _complement_matrix(leaf_group: np.ndarray) -> np.ndarray:
    """Row-normalised leaf -> leaf weights: explicit complements (weight 1) plus a weak same-group pull."""
    names = [s.name for s in LEAVES]
    n = len(LEAVES)
    m = np.zeros((n, n))
    for i, spec in enumerate(LEAVES):
        for comp in spec.complements:
            m[i, names.index(comp)] = 1.0
        same = (leaf_group == leaf_group[i]) & (np.arange(n) != i)
        m[i, same] += 0.15
    return m / m.sum(axis=1, keepdims=True)


def catalog_generate(*, n_products: int, seed: int, window_days: float = 60.0) -> Catalog:
    """Generate a shop of `n_products` products, deterministically for `seed`.

    `window_days` is the length of the simulated period: creation dates are spread over the year
    before it, and about 8% of products are launched inside it.
    """
    if n_products < 1:
        raise ValueError("n_products must be at least 1")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    categories, leaf_category, leaf_group = _category_tree()
    brands = tuple(BrandSpec(name, _slugify(name), tier) for name, tier, _ in BRANDS)
    brand_tier = np.array([TIERS.index(t) for _, t, _ in BRANDS])
    brands_by_group = [
        np.array([b for b, (_, _, groups) in enumerate(BRANDS) if g in groups]) for g in GROUPS
    ]

    counts = _allocate(n_products, np.array([s.share for s in LEAVES]))
    leaf = np.repeat(np.arange(len(LEAVES)), counts)
    # shuffle so product index order is not grouped by category (SKUs are still per leaf)
    leaf = leaf[rng.permutation(n_products)]

    brand = np.empty(n_products, dtype=int)
    for g in range(len(GROUPS)):
        idx = np.flatnonzero(leaf_group[leaf] == g)
        pool = brands_by_group[g]
        # a few brands dominate each group (Zipf over a per-group random order)
        w = 1.0 / np.arange(1, len(pool) + 1) ** 0.7
        brand[idx] = rng.permutation(pool)[rng.choice(len(pool), size=len(idx), p=w / w.sum())]
    tier = brand_tier[brand]

    leaf_price = np.array([s.price for s in LEAVES])
    raw = leaf_price[leaf] * TIER_PRICE_FACTOR[tier] * rng.lognormal(0.0, 0.28, n_products)
    # shop prices: x.99 under $100, x9.99 above, minimum $2.99
    price = np.where(raw < 100, np.floor(raw) + 0.99, np.floor(raw / 10) * 10 + 9.99)
    price = np.maximum(np.round(price, 2), 2.99)

    stock = rng.negative_binomial(2, 2 / (2 + np.where(leaf_price[leaf] < 60, 60, 15)), n_products)
    stock[rng.random(n_products) < 0.06] = 0

    # Zipf-like long tail: appeal is the standardised log of 1/rank^1.1 over a random ranking
    ranks = rng.permutation(n_products) + 1
    log_pop = -1.1 * np.log(ranks)
    appeal = (log_pop - log_pop.mean()) / (log_pop.std() + 1e-9)
    # soft cap: the very top ranks sit 4-5 sd out, which would make one superstar item decide the
    # whole shop's figures (and its AOV) depending on the seed
    appeal = 3.0 * np.tanh(appeal / 3.0)
    appeal = appeal + 0.25 * (tier - 1)  # premium products are a little better on average

    created_day = -rng.uniform(0, 365, n_products)
    launched = rng.random(n_products) < 0.08
    created_day[launched] = rng.uniform(0, window_days * 0.9, launched.sum())

    style = rng.normal(0, 1, (n_products, STYLE_DIM)) / np.sqrt(STYLE_DIM)
    colour = np.full(n_products, -1)

    skus, titles, descriptions, attributes = [], [], [], []
    per_leaf_counter = np.zeros(len(LEAVES), dtype=int)
    for i in range(n_products):
        spec = LEAVES[leaf[i]]
        per_leaf_counter[leaf[i]] += 1
        skus.append(f"{spec.code}-{i + 1:06d}")
        attrs: dict = {}
        for key in spec.attrs:
            values = LEAF_ATTRIBUTE_VALUES.get((spec.name, key), ATTRIBUTE_VALUES[key])
            v = values[rng.integers(len(values))]
            attrs[key] = v.item() if hasattr(v, "item") else v
        if "colour" in attrs:
            colour[i] = COLOURS.index(attrs["colour"])
        attrs["tier"] = TIERS[tier[i]]
        brand_name = brands[brand[i]].name
        model = f"{MODEL_PREFIXES[rng.integers(len(MODEL_PREFIXES))]}{rng.integers(1, 99) * 10}"
        title_attr = next((k for k in TITLE_ATTR if k in attrs), None)
        title = f"{brand_name} {model} {spec.noun}"
        if title_attr is not None:
            title += f" {_format_attr(title_attr, attrs[title_attr])}"
        if "colour" in attrs:
            title += f", {attrs['colour']}"
        shown = [(k, v) for k, v in attrs.items() if k != "tier"]
        attr_sentence = (
            "Key specs: " + "; ".join(f"{k.replace('_', ' ')}: {_format_attr(k, v)}" for k, v in shown) + "."
            if shown
            else "Simple, reliable and easy to use."
        )
        template = DESCRIPTIONS[rng.integers(len(DESCRIPTIONS))]
        descriptions.append(
            template.format(
                brand=brand_name,
                title=title,
                tier_word=TIER_WORDS[TIERS[tier[i]]],
                noun_l=spec.noun.lower(),
                attr_sentence=attr_sentence,
            )
        )
        titles.append(title)
        attributes.append(attrs)

    return Catalog(
        seed=seed,
        categories=categories,
        leaf_specs=LEAVES,
        leaf_category=leaf_category,
        leaf_group=leaf_group,
        brands=brands,
        skus=tuple(skus),
        titles=tuple(titles),
        descriptions=tuple(descriptions),
        attributes=tuple(attributes),
        leaf=leaf,
        brand=brand,
        tier=tier,
        price=price,
        stock=stock.astype(int),
        created_day=created_day,
        appeal=appeal,
        style=style,
        colour=colour,
        complements=_complement_matrix(leaf_group),
        consumable=np.array([LEAVES[x].consumable for x in leaf]),
    )

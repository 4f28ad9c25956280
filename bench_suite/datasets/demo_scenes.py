"""``demo-scenes``: generated road-scene video frames with CamVid's 32 classes, in the CamSeq01 layout.

A multi-class task to tune and test on without the CamSeq01 download: a camera drives down a street, so
consecutive frames are near-duplicates (as in CamSeq01, which is why its default split holds out the
tail of the sequence). Classes are as unbalanced as in CamVid: road, sky and buildings cover most
pixels, poles, signs, pedestrians, cones and lights a fraction of a percent, and some classes appear
in a few frames only. A class is told by its colour and texture, which overlap between classes (cars
and trucks, trees and vegetation), and by where it is (sky above the horizon, lane marks on the road).
The frames and labels are written once as PNGs with ``label_colors.txt`` and read back by the
``camseq01`` reader, so the demo goes through the same validation and colour-to-class mapping.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from bench_suite.core.errors import BenchSuiteError, unknown_name_message
from bench_suite.core.tasks import DatasetBundle, stable_seed
from bench_suite.datasets.camseq import COLORS_FILE, LABEL_SUFFIX, MULTI_CLASS_QUICK, CamSeq01, CamSeqParams

#: CamVid's 32 classes with their label colours, in the order of CamSeq01's label_colors.txt
CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("Animal", (64, 128, 64)), ("Archway", (192, 0, 128)), ("Bicyclist", (0, 128, 192)),
    ("Bridge", (0, 128, 64)), ("Building", (128, 0, 0)), ("Car", (64, 0, 128)),
    ("CartLuggagePram", (64, 0, 192)), ("Child", (192, 128, 64)), ("Column_Pole", (192, 192, 128)),
    ("Fence", (64, 64, 128)), ("LaneMkgsDriv", (128, 0, 192)), ("LaneMkgsNonDriv", (192, 0, 64)),
    ("Misc_Text", (128, 128, 64)), ("MotorcycleScooter", (192, 0, 192)), ("OtherMoving", (128, 64, 64)),
    ("ParkingBlock", (64, 192, 128)), ("Pedestrian", (64, 64, 0)), ("Road", (128, 64, 128)),
    ("RoadShoulder", (128, 128, 192)), ("Sidewalk", (0, 0, 192)), ("SignSymbol", (192, 128, 128)),
    ("Sky", (128, 128, 128)), ("SUVPickupTruck", (64, 128, 192)), ("TrafficCone", (0, 0, 64)),
    ("TrafficLight", (0, 64, 64)), ("Train", (192, 64, 128)), ("Tree", (128, 128, 0)),
    ("Truck_Bus", (192, 128, 192)), ("Tunnel", (64, 0, 64)), ("VegetationMisc", (192, 192, 0)),
    ("Void", (0, 0, 0)), ("Wall", (64, 192, 0)),
)  # fmt: skip
ID = {name: index for index, (name, _) in enumerate(CLASSES)}

#: appearance per class: mean RGB in [0, 1] and texture strength (std of a smooth noise field); close
#: pairs (Car/SUV, Tree/VegetationMisc, Sidewalk/RoadShoulder) are on purpose
APPEARANCE: dict[str, tuple[tuple[float, float, float], float]] = {
    "Animal": ((0.45, 0.32, 0.2), 0.08), "Archway": ((0.55, 0.5, 0.45), 0.05), "Bicyclist": ((0.2, 0.35, 0.6), 0.1),
    "Bridge": ((0.42, 0.42, 0.4), 0.04), "Building": ((0.6, 0.45, 0.38), 0.09), "Car": ((0.7, 0.12, 0.12), 0.05),
    "CartLuggagePram": ((0.3, 0.2, 0.45), 0.06), "Child": ((0.85, 0.6, 0.3), 0.08),
    "Column_Pole": ((0.5, 0.5, 0.52), 0.02), "Fence": ((0.35, 0.3, 0.22), 0.12),
    "LaneMkgsDriv": ((0.92, 0.92, 0.88), 0.02), "LaneMkgsNonDriv": ((0.9, 0.8, 0.3), 0.02),
    "Misc_Text": ((0.95, 0.95, 0.95), 0.15), "MotorcycleScooter": ((0.15, 0.15, 0.18), 0.05),
    "OtherMoving": ((0.3, 0.55, 0.3), 0.06), "ParkingBlock": ((0.65, 0.65, 0.6), 0.04),
    "Pedestrian": ((0.25, 0.2, 0.3), 0.1), "Road": ((0.33, 0.33, 0.35), 0.03),
    "RoadShoulder": ((0.5, 0.48, 0.44), 0.04), "Sidewalk": ((0.55, 0.52, 0.48), 0.05),
    "SignSymbol": ((0.1, 0.3, 0.75), 0.03), "Sky": ((0.65, 0.78, 0.92), 0.02),
    "SUVPickupTruck": ((0.62, 0.15, 0.18), 0.05), "TrafficCone": ((0.95, 0.45, 0.05), 0.03),
    "TrafficLight": ((0.12, 0.12, 0.1), 0.03), "Train": ((0.75, 0.7, 0.2), 0.05),
    "Tree": ((0.18, 0.4, 0.15), 0.14), "Truck_Bus": ((0.85, 0.85, 0.8), 0.04), "Tunnel": ((0.12, 0.1, 0.1), 0.03),
    "VegetationMisc": ((0.25, 0.45, 0.18), 0.12), "Void": ((0.05, 0.05, 0.05), 0.02),
    "Wall": ((0.7, 0.68, 0.6), 0.06),
}  # fmt: skip

#: profile → (frames, (height, width)); the sizes are the camseq01 reader's, so it resizes nothing
SCENE_PROFILES: dict[str, tuple[int, tuple[int, int]]] = {
    "smoke": (8, (96, 128)),
    "quick": (101, (240, 320)),
    "paper": (101, (480, 640)),
}


@dataclasses.dataclass(frozen=True)
class SceneParams:
    data_seed: int = 0
    n_frames: int = 0  # 0: the profile's (CamSeq01 has 101)
    height: int = 0  # 0: the profile's; with width, multiples of 16
    width: int = 0
    patch_size: int = 64
    test_fraction: float = 0.2  # the tail of the sequence, as camseq01's default split

    def __post_init__(self) -> None:
        if self.data_seed < 0 or self.n_frames < 0:
            raise ValueError("data_seed and n_frames must be ≥ 0 (n_frames 0: the profile's)")
        if self.n_frames == 1:
            raise ValueError("n_frames must be at least 2 (one for training, one for the test)")
        CamSeqParams(height=self.height, width=self.width, patch_size=self.patch_size,
                     test_fraction=self.test_fraction)  # the reader's own checks


@dataclasses.dataclass
class _Thing:
    name: str
    x: float  # world position along the street (pixels at depth 1)
    bottom: float  # fraction of the height where it stands
    width: float  # fraction of the frame width at depth 1
    height: float  # fraction of the frame height at depth 1
    depth: float  # parallax: screen shift per frame = speed / depth
    shape: str = "box"  # box | ellipse | pole


#: the camera's drive per frame, in frame widths at depth 1 (near things move faster: parallax)
SPEED = 6.0 / 320


def _street(rng: np.random.Generator, frames: int) -> list[_Thing]:
    """What stands along the street (far things first), placed where the drive passes them: a thing at
    depth d is seen from world x = 0 to 1 + frames · SPEED / d (in frame widths)."""
    things: list[_Thing] = []

    def scatter(name, per_width, bottom, width, height, depth, shape="box", jitter=0.0):
        reach = 1.2 + frames * SPEED / depth
        count = rng.poisson(per_width * reach) if per_width < 1 else int(round(per_width * reach))
        for _ in range(count):
            things.append(_Thing(name, rng.uniform(-0.1, reach), bottom + rng.normal(0, jitter),
                                 width * rng.uniform(0.7, 1.3), height * rng.uniform(0.7, 1.3), depth, shape))

    scatter("Building", 6, 0.46, 0.25, 0.32, 4.0, jitter=0.005)
    scatter("Wall", 1, 0.47, 0.3, 0.08, 3.5)
    scatter("Tree", 3, 0.47, 0.14, 0.25, 3.0, "ellipse", 0.01)
    scatter("VegetationMisc", 3, 0.5, 0.16, 0.06, 2.6, "ellipse")
    scatter("Fence", 1.5, 0.52, 0.25, 0.05, 2.4)
    # classes of a few frames only, as in CamVid
    scatter("Bridge", 0.3, 0.3, 0.9, 0.06, 3.2)
    scatter("Archway", 0.3, 0.47, 0.12, 0.18, 3.2)
    scatter("Tunnel", 0.3, 0.47, 0.15, 0.15, 3.2)
    scatter("Train", 0.3, 0.47, 0.5, 0.1, 3.2)
    scatter("ParkingBlock", 2, 0.62, 0.06, 0.02, 1.6)
    scatter("Column_Pole", 5, 0.64, 0.008, 0.36, 1.5, "pole")
    scatter("SignSymbol", 3, 0.36, 0.03, 0.04, 1.5)
    scatter("TrafficLight", 2, 0.3, 0.012, 0.035, 1.5)
    scatter("Misc_Text", 2, 0.38, 0.05, 0.02, 3.8)
    scatter("Car", 3, 0.68, 0.18, 0.1, 1.3, jitter=0.02)
    scatter("SUVPickupTruck", 1.5, 0.68, 0.2, 0.13, 1.3, jitter=0.02)
    scatter("Truck_Bus", 0.6, 0.66, 0.3, 0.22, 1.5, jitter=0.01)
    scatter("Pedestrian", 4, 0.7, 0.018, 0.12, 1.2, "ellipse", 0.01)
    for name, per_width, width, height in (("Bicyclist", 0.8, 0.03, 0.1), ("Child", 0.6, 0.014, 0.07),
                                           ("CartLuggagePram", 0.5, 0.025, 0.04), ("Animal", 0.5, 0.03, 0.03),
                                           ("MotorcycleScooter", 0.6, 0.04, 0.07),
                                           ("OtherMoving", 0.5, 0.06, 0.06)):
        scatter(name, per_width, 0.72, width, height, 1.2, "ellipse", 0.01)
    scatter("TrafficCone", 2, 0.8, 0.012, 0.025, 1.0)
    things.sort(key=lambda t: -t.depth)  # painter's order: far first
    return things


def _texture(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), scale, mode="wrap")
    return field / (field.std() + 1e-12)


def render_frame(things: list[_Thing], textures: dict[str, np.ndarray], t: int, height: int, width: int,
                 rng: np.random.Generator, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t`` of the drive: RGB uint8 ``[H, W, 3]`` and class ids ``[H, W]``."""
    yy, xx = np.mgrid[0:height, 0:width]
    label = np.full((height, width), ID["Sky"], dtype=np.uint8)
    h = int(horizon * height)
    label[h:] = ID["Sidewalk"]
    # the road: a trapezoid to the vanishing point, its shoulders, and dashed lane marks moving with t
    centre = width / 2
    rows = np.arange(height) - h
    half = np.where(rows > 0, rows * 1.1, 0)
    inside = (np.abs(xx - centre) < half[:, None]) & (yy >= h)
    shoulder = (np.abs(xx - centre) < half[:, None] * 1.12) & (yy >= h) & ~inside
    label[shoulder] = ID["RoadShoulder"]
    label[inside] = ID["Road"]
    # dashes: world distance along the road ~ 1 / row; they repeat every 0.5 and move with t
    distance = (np.where(rows > 0, height / np.maximum(rows, 1), 0.0) + t * SPEED * 6.0)[:, None]
    dashes = inside & (np.abs(xx - centre) < np.maximum(1.0, half[:, None] * 0.025)) & ((distance % 1.0) < 0.5)
    label[dashes] = ID["LaneMkgsDriv"]
    edge_marks = inside & (np.abs(np.abs(xx - centre) - half[:, None] * 0.9) < np.maximum(0.6, half[:, None] * 0.02))
    label[edge_marks] = ID["LaneMkgsNonDriv"]
    # things along the street, shifted by the drive (parallax: near things move faster)
    for thing in things:
        screen_x = (thing.x - t * SPEED / thing.depth) * width
        w = max(1.0, thing.width * width)
        hh = max(1.0, thing.height * height)
        bottom = thing.bottom * height
        left, top = screen_x - w / 2, bottom - hh
        box = (slice(max(0, int(top)), max(0, min(height, int(np.ceil(bottom))))),
               slice(max(0, int(left)), max(0, min(width, int(np.ceil(left + w))))))
        ys, xs = yy[box], xx[box]
        if ys.size == 0:
            continue
        if thing.shape == "ellipse":
            region = ((xs - screen_x) / (w / 2)) ** 2 + ((ys - (bottom - hh / 2)) / (hh / 2)) ** 2 <= 1.0
        else:
            region = (xs >= left) & (xs < left + w) & (ys >= top) & (ys < bottom)
        if thing.name in ("Archway", "Tunnel"):  # the opening shows what is behind
            region &= ~((xs >= left + 0.25 * w) & (xs < left + 0.75 * w) & (ys >= top + 0.4 * hh))
        label[box][region] = ID[thing.name]
    label[-max(1, height // 48):, :] = ID["Void"]  # the bonnet's edge, as in CamSeq01's bottom rows
    # appearance: class colour × (1 + texture), a light gradient, sensor noise and a slight blur
    colors = np.array([APPEARANCE[name][0] for name, _ in CLASSES])
    strength = np.array([APPEARANCE[name][1] for name, _ in CLASSES])
    rgb = colors[label]
    for name, _ in CLASSES:
        where = label == ID[name]
        if where.any():
            rgb[where] *= (1.0 + strength[ID[name]] * textures[name][where])[:, None]
    light = 1.0 + 0.15 * (xx / width - 0.5) * rng.uniform(-1, 1) - 0.1 * (yy / height)
    rgb = rgb * light[..., None]
    rgb = ndimage.gaussian_filter(rgb, sigma=(0.7, 0.7, 0.0)) + rng.normal(0.0, 0.02, rgb.shape)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8), label


class DemoScenes:
    """Generated road-scene frames with CamVid's 32 classes (very unbalanced), stored in the CamSeq01 layout.

    A drive down a generated street: ``n_frames`` consecutive frames (101, as CamSeq01; 8 at smoke) at
    the camseq01 reader's size for the profile (smoke 96×128, quick 240×320, paper 480×640), the last
    ``test_fraction`` of the sequence as test frames. Written once under ``<data_root>/demo-scenes/`` and
    read back with the camseq01 reader.
    """

    Params = SceneParams
    profile_settings = MULTI_CLASS_QUICK

    def __init__(self, params: SceneParams | None = None) -> None:
        self.params = params or SceneParams()

    def resolve(self, profile: str) -> tuple[int, int, int]:
        if profile not in SCENE_PROFILES:
            raise BenchSuiteError(unknown_name_message("profile", profile, tuple(SCENE_PROFILES)))
        frames, (height, width) = SCENE_PROFILES[profile]
        p = self.params
        return p.n_frames or frames, p.height or height, p.width or width

    def folder(self, data_root: Path, profile: str) -> Path:
        frames, height, width = self.resolve(profile)
        return Path(data_root) / "demo-scenes" / f"seed{self.params.data_seed}-{frames}-{height}x{width}"

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        frames, height, width = self.resolve(profile)
        folder = self.folder(data_root, profile)
        if not (folder / "CamSeq01").is_dir():
            self._write(folder, frames, height, width)
        p = self.params
        reader = CamSeq01(CamSeqParams(height=height, width=width, patch_size=p.patch_size,
                                       test_fraction=p.test_fraction))
        # every frame, whatever the profile: the frame count is already the profile's
        bundle = reader.load(folder, "paper")
        bundle.split["profile"] = profile
        return dataclasses.replace(bundle, name="demo-scenes", source=str(folder / "CamSeq01"))

    def frames(self, count: int, height: int, width: int):
        """(stem, RGB frame, class ids) of each frame, a function of (data_seed, count, size)."""
        rng = np.random.default_rng(stable_seed("demo-scenes", self.params.data_seed))
        things = _street(rng, count)
        textures = {name: _texture(rng, (height, width), rng.uniform(0.8, 3.0)) for name, _ in CLASSES}
        horizon = rng.uniform(0.42, 0.48)
        for t in range(count):
            frame_rng = np.random.default_rng(stable_seed("demo-scenes-frame", self.params.data_seed, t))
            rgb, label = render_frame(things, textures, t, height, width, frame_rng, horizon)
            yield f"0016E5_{7959 + 30 * t:05d}", rgb, label

    def _write(self, folder: Path, count: int, height: int, width: int) -> None:
        # written beside the target and renamed into place, as demo-vessels: never a half-written folder
        staging = folder.with_name(f".{folder.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
        palette = np.array([color for _, color in CLASSES], dtype=np.uint8)
        try:
            target = staging / "CamSeq01"
            target.mkdir(parents=True)
            (target / COLORS_FILE).write_text(
                "".join(f"{r} {g} {b}\t{name}\n" for name, (r, g, b) in CLASSES), encoding="utf-8")
            for stem, rgb, label in self.frames(count, height, width):
                Image.fromarray(rgb).save(target / f"{stem}.png")
                Image.fromarray(palette[label]).save(target / f"{stem}{LABEL_SUFFIX}.png")
            try:
                staging.rename(folder)
            except OSError:
                if not (folder / "CamSeq01").is_dir():
                    raise
        except OSError as error:
            raise BenchSuiteError(
                f"cannot write the demo-scenes data to {folder} ({error.strerror or error}); "
                "choose a writable data folder"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

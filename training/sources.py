"""Build a training manifest from public GitHub repositories fetched as git snapshots.

    python -m training.sources liveness|deepfake [--mirror DIR] [--out DIR]

Each repository below was fetched with the `fetch` tool (a bare git snapshot under
--mirror, default FACECHECK_MIRROR or ../.mirror). Its images at the recorded commit are
labelled by the rule of its layout, exact copies are dropped (the same bytes in two folders
or two repositories), near-identical consecutive video frames are thinned, and what is left
is written under --out (default ../sources/<task>, outside the project, like
../shared/data) with a manifest.csv that records repository, commit, path, label and
licence for every image. The data never enters the project.

The deepfake task labels by `Repository.classes` (a folder prefix names label, kind and
family: one family per way of making fakes, `real` for real faces) and adds a `family`
column; its rows have no fold."""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.data import MIRROR_ROOT, SOURCES_ROOT

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi")
NO_LICENCE = "none stated (all rights reserved by default): internal research use only"
THUMB_SIZE = (32, 24)  # frames are compared as grey thumbnails of this size
NEAR_DUPLICATE_GREY = 4.0  # mean absolute grey-level difference below which two frames are one
RECENT_FRAMES = 8  # a frame is compared with this many frames kept before it (same source, label)
# Repository.faces_only: an image is kept only where YuNet finds a face at least this wide (px),
# at a confidence above the service's (0.6 finds faces in spices, dogs and sketches)
MIN_FACE_PIXELS = 64
FACES_ONLY_CONFIDENCE = 0.75
# Repository.unpack = "tiles": a figure's pictures stand on a dark ground; a row or column of
# pixels belongs to a picture where more than TILE_INK of it is brighter than TILE_DARK, and a
# picture is kept where it is at least MIN_TILE_PIXELS and within TILE_WIDTH_SPREAD of the
# figure's median width (a picture cut in two by one of its own black columns is left out)
TILE_DARK = 12
TILE_INK = 0.5
MIN_TILE_PIXELS = 200
TILE_WIDTH_SPREAD = 0.1
# Repository.unpack = "side_by_side": frames read evenly from each video, away from its ends; a
# video is one where the two halves show the same frame: the median over those frames of the
# halves' mean absolute grey difference (as thumbnails) is at most SIDE_BY_SIDE_MAX_GREY
FRAMES_PER_VIDEO = 12
SIDE_BY_SIDE_MAX_GREY = 12.0
# Repository.unpack = "grid": a figure of equal cells, `grid` rows by columns, where a row or
# column of pixels that is GRID_LINE_BRIGHT or brighter all along the figure separates cells
GRID_LINE_BRIGHT = 235
NEW_CAMERAS_FOLD = 7  # training.data: the liveness sources that only test (Repository.split)
MANIFEST_COLUMNS = (
    "path",
    "label",
    "kind",
    "group",
    "source",
    "split",
    "fold",
    "repo",
    "commit",
    "repo_path",
    "licence",
)
DEEPFAKE_COLUMNS = (*MANIFEST_COLUMNS, "family")


@dataclass(frozen=True)
class Repository:
    """One fetched repository and how its images are labelled.

    Images come from `folders` (prefixes of their paths). The label is the name of the
    folder (`Real` or `Fake`); where a repository has no such folders (`yolo_labels`), the
    first number of the YOLO `.txt` of the image (0 attack, 1 live). Collectors often kept
    the class of the previous recording, so the YOLO class is trusted only where it was
    checked by eye."""

    name: str  # owner/name on GitHub
    source: str  # short name in the manifest
    fold: int | None  # leave-one-source-out fold: whole repositories, never part of one (None: none)
    # "test": no model trains on it, whatever fold it holds out (liveness: NEW_CAMERAS_FOLD;
    # deepfake: not drawn by --fetched_share, its families judged as never seen)
    split: str = "train"
    attack_kind: str = "replay"  # what its attack frames show (checked by eye)
    commit: str = "HEAD"  # the snapshot's commit read (a later one may have deleted the data)
    folders: tuple[str, ...] = ("Dataset/",)
    # DataCollect is the collector's unsorted output, labelled with whatever class it was set to
    exclude: tuple[str, ...] = ("Dataset/DataCollect/", "datasets/DataCollect/")
    licence: str = NO_LICENCE
    max_per_kind: int = 400  # after thinning, at most this many frames per kind (even spread)
    yolo_labels: bool = False
    # runs of attack frames that show printed photos, not screens: (first, last) file stems in
    # capture order (capture_time); checked frame by frame at the boundaries
    print_runs: tuple[tuple[str, str], ...] = ()
    # (folder prefix, label, kind, family): where set, only these folders are read and each
    # image takes the class of the first prefix its path starts with (the deepfake task, and
    # the live-only cameras: live_camera)
    classes: tuple[tuple[str, str, str, str], ...] = ()
    # the manifest's group: "source" (the whole repository), "image" (each file), or a regex
    # whose first group, found in the path, names the identity or video the image belongs to
    group_by: str = "source"
    # keep only images in which the detector finds a face of MIN_FACE_PIXELS or more (galleries
    # of mixed scenes, where most images hold no face the crop path could use)
    faces_only: bool = False
    # how one file holds several images (unpack): "" one image; "tiles" a figure of pictures in
    # a grid (figure_tiles), each of the file's class; "side_by_side" a video whose frames show
    # a real frame on the left and the same frame made fake on the right (side_by_side_frames):
    # the left half is a real face, the right one takes the file's class; "grid" a results
    # figure of `grid` (rows, columns) cells (grid_cells): a cell of a row or column named in
    # `grid_real` ("r0", "c0") is a real face (a swap's source or target), the others take the
    # file's class
    unpack: str = ""
    grid: tuple[int, int] = (0, 0)
    grid_real: tuple[str, ...] = ()

    def class_of(self, path: str) -> tuple[str, str, str] | None:
        for prefix, label, kind, family in self.classes:
            if path.startswith(prefix):
                return label, kind, family
        return None

    def group_of(self, path: str) -> str:
        if self.group_by == "source":
            return self.source
        if self.group_by != "image" and (found := re.search(self.group_by, path)):
            return f"{self.source}:{found.group(1)}"
        return f"{self.source}:{Path(path).with_suffix('')}"  # each file its own group

    def attack_kind_of(self, path: str) -> str:
        time = capture_time(path)
        inside = any(capture_time(first) <= time <= capture_time(last) for first, last in self.print_runs)
        return "print" if inside else self.attack_kind


def live_camera(
    name: str,
    source: str,
    commit: str,
    folders: tuple[str, ...],
    licence: str = NO_LICENCE,
    exclude: tuple[str, ...] = (),
) -> Repository:
    """A new camera that shows live people only (every image under `folders`), test split."""
    return Repository(
        name,
        source,
        NEW_CAMERAS_FOLD,
        split="test",
        commit=commit,
        classes=tuple((folder, "live", "", "") for folder in folders),
        exclude=exclude,
        licence=licence,
    )


# Whole webcam frames (640x480 mostly) of live people and of phone or monitor replays (and one
# run of prints), made with one YOLO liveness tutorial's collector; each is one to a few people
# in one or two rooms. Each was looked at in contact sheets of both labels. Folds hold about
# 1 100-2 100 frames each, NUAA (fold 1, training.data.SHARED_LIVENESS_FOLDS) included.
# Looked at and left out: SonHai-code/FaceRecognition (live and attack swapped in half its
# frames), ZubairCracksCode/anit-spoofing (two short videos, no frames),
# iamitsrivastav/Face_AntiSpoofing_system (detector boxes drawn into the pixels).
LIVENESS_REPOSITORIES = (
    Repository("DangThanhLiem/LVTN_Detected", "lvtn", 2),
    Repository("Ramkumarkh/yolo_model_faceliveness", "ramkumar", 1, yolo_labels=True),
    Repository("Pagolu-Raghavendra/FaceAttendanceSystemProject", "pagolu", 3),
    Repository("code-with-prabhu/livenessDetection", "prabhu", 3),
    Repository("Dracarys261/SpoofingDetection", "dracarys", 4),
    Repository("sumanadhikari0625/Liveliness-Detection", "suman", 4, yolo_labels=True),
    Repository("Eyashita/VisageTrack", "visagetrack", 5, licence="MIT"),
    Repository("kalyanipatil0515/AntiSpoofing", "kalyani", 5),
    Repository("yashpatil1805/AntiSpoofing_FaceRecognition", "yashpatil", 1),
    Repository("Spp77/Anti-Spoofing", "spp77", 5),
    Repository(
        "Sankalita-Giri/Anti-spoofing-and-Liveliness-Face-Detector", "sankalita", 2, folders=("datasets/",)
    ),
    Repository("Akritisingh02/Face-Liveness-Detection", "akriti", 2),
    Repository("Rounakdeepsingh/Face_Anti_Spoofing_System", "rounak", 1),
    # its HEAD deleted Dataset/; 143 frames of newspaper and magazine pages among its replays
    Repository(
        "piiyushJoshi/Liveliness-Detector-for-Face-Recognition-System",
        "piiyush",
        6,
        commit="b62323aa1368ce114ffe167015ccb4d5a389d314",
        folders=("Dataset/All/", "Dataset/SplitData/"),
        yolo_labels=True,
        print_runs=(("1715275559793015", "1715275647986099"),),
    ),
    # live frames in one room, replays (phones, a monitor) in another
    Repository("srimuthukumar786/Intruders-Detection-Alarm-System", "srimuthu", 6),
    Repository("elouafi222/quizApp_api", "elouafi", 6, yolo_labels=True),
    Repository("Vicky2003rit/Antispoofing", "vicky", 3, yolo_labels=True),
    Repository("Hao-nguyen1/xla_face-recognition", "hao", 4),
    Repository(
        "Ahmedooode/real-vs-fake-face-detection",
        "ahmed",
        2,
        yolo_labels=True,
        # a live person labelled 0; a live person holding a phone; a grid of photos
        exclude=(
            "Dataset/SplitData/val/images/17284191483906.",
            "Dataset/SplitData/train/images/17284191342414117.",
            "Dataset/SplitData/train/images/1728419142720844.",
        ),
    ),
    # live frames only, all in its collector's folder (class 1 throughout)
    Repository("Afzal91004/FaceGuard", "faceguard", 2, yolo_labels=True, exclude=()),
    # New cameras that no model trains on (split "test", fold NEW_CAMERAS_FOLD): the shipped
    # recipe, trained on every other fold, is scored on them as on a customer's camera. All
    # found after the recipe was chosen. The first three hold live frames and replays (phones
    # held to the camera), no prints; the 26 after them (live_camera) live people only.
    # One man, a dark blue-tinted 640x480 webcam and a bright 1080p room; phone replays of him
    Repository(
        "Informally/FYP-Secure_Payment_System_with_Machine_Learning-Based_Facial_Recognition",
        "informally",
        NEW_CAMERAS_FOLD,
        split="test",
        commit="2905d458c73d971905aefef8b2c061a17e454766",
        folders=("face_recognition/dataset/",),
    ),
    # its later commits deleted the frames; phones showing photos of other people, in a dark room
    Repository(
        "arnavco9573/Antispoofing",
        "arnav",
        NEW_CAMERAS_FOLD,
        split="test",
        commit="f69a6adc71ba919237572a734f65af46f76bac9f",
        folders=("Datasets/",),
    ),
    # its later commits deleted the frames; a dim washed-out webcam, phone replays of two people
    Repository(
        "Chamindu77/Anti_Spoofing-Liveliness_Detector",
        "chamindu",
        NEW_CAMERAS_FOLD,
        split="test",
        commit="1fb9a330ef60d08814d7b870d3bffacc7b43f7a5",
    ),
    *(
        live_camera(*entry)
        for entry in (
            # Drowsiness, attention and gesture projects of one YOLO tutorial's kind: about 40
            # frames of each person, awake and drowsy, at 640x480 mostly (a pink wall, a red
            # curtain, cyan and green-lit rooms among them)
            (
                "AgufSamudra/Drowsiness-Detection",
                "agufs",
                "359b900f70b291be7a3cbb65f25b0d0bc73fa3a5",
                ("data/images/",),
                "Unlicense",
            ),
            (
                "knockcat/Driver-sleepiness-detection-application",
                "knockcat",
                "97b65a2537b0d82796c1c4a33f3ec6e556d58fdc",
                ("data/images/",),
                "MIT",
            ),
            (
                "Rishavrajprasad/CodeClauseInternship_DriverDrowsinessDetection",
                "rishavraj",
                "2fe90a4888e67ca6c3bfe7338fc9b6be7c0a3413",
                ("data/images/",),
            ),
            (
                "KarthikGowdaRamakrishna/Drowsiness-Detection",
                "karthik",
                "e1bf4f7b4bef7e196f2eb5a50b527a9433bd0333",
                ("data/images/",),
            ),
            (
                "jagadeeshkumar007/Drowsiness-Detection-yolov5",
                "jagadeesh",
                "8bfdafcb687a8e4df668ce6027df1d9e43ba481a",
                ("images/",),
            ),
            (
                "josse07/yolov5-drowsiness-detection",
                "josse",
                "5a88c97fbedc668f275efacee64caf43b3f5ee88",
                ("awake", "drowsy"),
            ),
            (
                "asish032/Real-Time-Drowsiness-Detection",
                "asish",
                "35b203b9e98cb4194b89e426249ac2444f8dc3c2",
                ("data/images/",),
            ),
            (
                "hadragon26/Attention-detection-model",
                "hadragon",
                "3714b404c62574324a01d29e3f9c3fc858e98e66",
                ("Trial Data/Images",),
            ),
            # its "phone" class is a driver using a phone, a live person
            (
                "Punnooze/Driver-Monitoring-System",
                "punnooze",
                "d7c877bafbf5a1ff4807ba02f3b21bbbf7f83618",
                ("data/images/",),
            ),
            (
                "Kohakkun/LearnLens",
                "learnlens",
                "12ea91ce67020b2eeadf426d4e60b8a83a2977f3",
                ("data/images/",),
            ),
            (
                "Britto414/Drowsiness_Project",
                "britto",
                "f52bb6abba5570364472f16c081b6f6bad00a2d6",
                ("data/images/",),
            ),
            (
                "Kaushik1216/Automatic_Alarm_for_Driver_Drowsiness_Detection",
                "kaushik",
                "8a32ab9c406c75f7c9e52d1f040c7ce8bff3d78a",
                ("proj/data/images/",),
            ),
            (
                "Madhavmoudhgal/DrowsinessDetectionSystem",
                "madhav",
                "252589cf68ac84d78fac294a9ea9d595ed55c881",
                ("data/images/",),
            ),
            # Face-recognition door, attendance and doorbell projects: the webcam or phone frames
            # they enrol each person with. Those that say MIT carry a Raspberry Pi face-recognition
            # template's licence, which may not cover the photos; its own sample (dataset/Z/) is
            # left out, as are the 640x360 frames of dataset/Hung/ (a screen: a recorded video call)
            (
                "hung202/raspberry_automatic_door",
                "hung202",
                "3e7c7f08e5314e978fc916b386cc4429983423db",
                ("dataset/Duong/", "dataset/T.Vinh/", "dataset/Thang/", "dataset/Thinh/", "dataset/Vinh/"),
            ),
            (
                "draashishjani/face-recognition-with-liveliness",
                "draashish",
                "b83335cd4134e9f1969f9e008215eab57833aba9",
                ("dataset/ashish_sir/", "dataset/mahek/"),
            ),
            (
                "Jessicacat0305/AI-Facial-Recognition",
                "jessicacat",
                "218c20f8f7b884ac9e3eeb6eb59c193cefa996b5",
                tuple(f"dataset/{n}/" for n in ("Abudiiiiiii", "Diego", "Jessica", "Lucas", "halle")),
                "MIT (a template's)",
            ),
            (
                "L00145826/MedicationMonitoring",
                "l00145826",
                "4de57563c913a2fa667bbca336e8eb5cbf77b9b7",
                tuple(
                    f"dataset/{n}/"
                    for n in (
                        "Amy",
                        "Andrew",
                        "David",
                        "Dominick",
                        "Harry",
                        "James",
                        "Jessica",
                        "Kathleen",
                        "Kevin",
                        "Mandy",
                        "Mario",
                        "Noreen",
                        "Teresa",
                    )
                ),
                "MIT (a template's)",
            ),
            (
                "debabratabhagat/facial-recognition",
                "debabrata",
                "f53cf771e304c7d94e8ee383e6209500579da33b",
                ("dataset/",),
                NO_LICENCE,
                ("dataset/Z/",),
            ),
            (
                "shekiat/csi4160_project",
                "shekiat",
                "a838f53d4becf4721aada6c23eb2195040b0472d",
                ("dataset/Sam/", "dataset/Peyton/"),
                "MIT (a template's)",
            ),
            (
                "buglossJisoo/face_recognition_raspberry",
                "jisoo",
                "87974a9494daea7bece74de43a054b5764aef532",
                ("datasets/",),
            ),
            (
                "Prashant1709/TheDoorbellProject",
                "prashant",
                "6eb18d1a0a714501624ddc4a75ece70a93028939",
                ("dataset/",),
                "MIT (a template's)",
                ("dataset/Z/",),
            ),
            (
                "helenailic/MachineLearningDoorbell",
                "helenailic",
                "25f6e1194b285628e8d43a633c9ed3972c062c65",
                ("dataset/Henry/", "dataset/Helena/"),
                "MIT (a template's)",
            ),
            (
                "ambarwariagus/face-recognition",
                "ambarwari",
                "88f74550ed5755357c497d67709532789798fb30",
                ("dataset/",),
            ),
            (
                "Joashc702/SmartStorageSystem",
                "joashc",
                "9c8edb69e6f2c3827411e151536a73debf99ee1b",
                ("dataset/",),
                "MIT (a template's)",
                ("dataset/Z/",),
            ),
            (
                "SuryaKarthikeshPolamraju/AttendanceSystem",
                "surya",
                "536830ad5b2ef720cd4c49d2ce6540690bbd4d24",
                ("dataset/wick/",),
                "MIT (a template's)",
            ),
            # its dataset/Random/ holds a face set of unclear origin
            (
                "dishu5312/Face_Recognition",
                "dishu",
                "d039f49505aeea2fbffdae68f43d001bb0828bca",
                ("Dataset/Divyanshu/",),
            ),
        )
    ),
)

# Fake faces of families the deepfake model never saw (its developer set holds DFDC swaps and
# StyleGAN faces from the 140k set), and the real faces beside them. Each repository's
# images of every class were looked at in contact sheets before its classes were written.
# Caps are per family and repository, after exact copies and near-identical frames are gone.
# Looked at and left out: suryawanshiheramb11/auraverse2 (no faces: its "fake" folder holds
# blurred copies of its landscape "real" images), jastworld/face-swap-project (18 landmark-warp
# swaps whose Poisson blends left cyan blotches: a colour, not a swap, would be learnt),
# SeegmaEpsilon/experiment-real-or-ai-face (20 more faces of realorfake's kind). Not fetched:
# KAdenrele/face_swapping, loki-143/hermes and akumoli-debug/dream-perturbation carry the code
# of a face-swap repository on the reserved list (../shared/docs/reserved-sources.md), so their
# swaps may be copies of its data.
DEEPFAKE_REPOSITORIES = (
    # 1024x1024 portraits; the README says the fakes come from thispersondoesnotexist.com
    # (StyleGAN2) and the reals from FFHQ (a copy: the reals add no new real source)
    Repository(
        "dinablachman/realorfake",
        "realorfake",
        None,
        commit="e4a5b79372cf913e4280527d6ea4d3e21a769037",
        licence="MIT (stated in its README)",
        max_per_kind=500,
        classes=(("data/fake/", "fake", "gan", "tpdne_stylegan2"), ("data/real/", "real", "real", "real")),
        group_by="image",
    ),
    # a "Real or AI?" game: modern photoreal text-to-image portraits (cinematic light, shallow
    # focus; the generator is not stated) beside Unsplash-style portraits; lqip/ holds 40 px
    # placeholders of the same pictures
    Repository(
        "Laboratoriet/real-or-ai-game",
        "alkemist",
        None,
        commit="269851655dae14acd2867195733d712c669dfa39",
        classes=(
            ("public/images/people/ai/", "fake", "diffusion", "t2i_unstated"),
            ("public/images/people/real/", "real", "real", "real"),
        ),
        exclude=("public/images/people/ai/lqip/", "public/images/people/real/lqip/"),
        group_by="image",
    ),
    # a "Real or AI" game: Google Gemini 3 Pro Image ("gemini-3-pro-image-preview" in
    # scripts/generate-ai-images.ts) against Unsplash photos; most are scenes without a face
    Repository(
        "TeenBiscuits/RealOrAI",
        "realorai_gemini",
        None,
        commit="7e84faec19eff5804d0031ecd7e272aa6f6cf0de",
        licence="Apache-2.0 (LICENSE.md); real photos from Unsplash (public/images/real/ATTRIBUTION.md)",
        classes=(
            ("public/images/ai/", "fake", "diffusion", "gemini3_image"),
            ("public/images/real/", "real", "real", "real"),
        ),
        group_by="image",
        faces_only=True,
    ),
    # Stable Diffusion 1.5 fine-tuned with DreamBooth on one man's phone selfies (its README):
    # the selfies (real) and portraits of him the model drew, mostly painterly; one identity, one
    # group. The owner's dog (caosdelola) is left out.
    Repository(
        "AlbertSuarez/dreambooth-stable-diffusion",
        "dreambooth_suarez",
        None,
        commit="effd01d360d669b485f59d8dda9b09461a0962d9",
        licence="MIT",
        classes=(
            ("data/output/suaresito/", "fake", "diffusion", "dreambooth_sd15"),
            ("data/input/suaresito/", "real", "real", "real"),
        ),
        group_by=r"/(suaresito)/",
        faces_only=True,
    ),
    # DeepFaceLive's demo videos (doc/celebs): each frame shows a streamer's or a film's real
    # frame on the left and the same frame with the face swapped by one of its public face
    # models (DeepFaceLab-trained) on the right; two videos are over the fetch size limit and
    # two hold one picture, not two (left out by side_by_side_frames). Some frames carry stream
    # overlays. One group per video.
    Repository(
        "iperov/DeepFaceLive",
        "deepfacelive",
        None,
        commit="fc7b787bda2b8c186e142c52857458eea3a935ed",
        licence="GPL-3.0 (LICENSE); the repository's own demo videos",
        max_per_kind=600,
        classes=(("doc/celebs/", "fake", "faceswap", "deepfacelive"),),
        group_by=r"([^/]+)\.mp4$",
        unpack="side_by_side",
    ),
    # SFHQ-T2I's README figures: photoreal portraits of FLUX.1 (pro, dev, schnell), SDXL and a
    # few DALL-E 3 (each picture's caption names its file, e.g. SDXL_image_0013504.jpg), cut out
    # of JPEG figures at 255-880 px, so resized and compressed once more than a generator's
    # output; the same picture stands in several figures (kept once). No real faces.
    Repository(
        "SelfishGene/SFHQ-T2I-dataset",
        "sfhq_t2i",
        None,
        commit="a8064474a09cbcec27a498f5bf51ad08298ba47c",
        licence="MIT (LICENSE.txt)",
        max_per_kind=600,
        classes=(("figures/", "fake", "diffusion", "flux_sdxl_dalle3"),),
        exclude=("figures/model_distribution.jpg", "figures/prompt_lengths_distribution.jpg"),
        unpack="tiles",
    ),
    # SimSwap's results figure: the top row holds 10 source faces, the left column 7 target
    # faces (film stills), each other cell the target's face swapped to the source's identity
    # (115 px cells, tight around the face; the top left cell is a caption)
    Repository(
        "neuralchen/SimSwap",
        "simswap",
        None,
        split="test",
        commit="bd7b7686a17f41dd11cfcd5d82f7e4c5eb94b780",
        licence="CC BY-NC 4.0 (LICENSE)",
        classes=(("docs/img/total.PNG", "fake", "faceswap", "simswap"),),
        unpack="grid",
        grid=(8, 11),
        grid_real=("r0", "c0"),
        faces_only=True,
    ),
    # an unofficial HiFiFace's results figures (two checkpoints): 256 px cells, the source faces
    # in the first row, the targets in the second, the swaps in the third
    Repository(
        "xuehy/HiFiFace-pytorch",
        "hififace",
        None,
        split="test",
        commit="0e50b25909b5910e9327d3cb44eeb054f1c047d9",
        licence="MIT (LICENSE)",
        classes=(
            ("results/exp_", "fake", "faceswap", "hififace"),
            ("results/origan-", "fake", "faceswap", "hififace"),
        ),
        unpack="grid",
        grid=(3, 12),
        grid_real=("r0", "r1"),
        faces_only=True,
    ),
    # ReSwapper's examples: InsightFace inswapper_128's output and ReSwapper's (a reimplementation
    # of it) for a few source and target pairs. Only the swaps: some targets look generated
    # themselves, so none of its inputs is taken as a real face.
    Repository(
        "somanchiu/ReSwapper",
        "reswapper",
        None,
        split="test",
        commit="44474cb8d85d15274ae274e5e0f5f44f0814af51",
        licence="AGPL-3.0 (LICENSE)",
        classes=tuple(
            (f"example/{path}", "fake", "faceswap", "inswapper_reswapper")
            for path in (
                "1/inswapperOutput",
                "1/reswapperOutput",
                "2/inswapperOutput",
                "2/reswapperOutput",
                "3/inswapperOutput",
                "3/reswapperOutput",
                "DataAugmentation/inswapper_output",
                "DataAugmentation/reswapper_",
                "GeneralizationAbility/",
                "SourceEmbeddingModification/",
            )
        ),
        group_by=r"example/([^/]+)/",
    ),
)
REPOSITORIES = {"liveness": LIVENESS_REPOSITORIES, "deepfake": DEEPFAKE_REPOSITORIES}
COLUMNS = {"liveness": MANIFEST_COLUMNS, "deepfake": DEEPFAKE_COLUMNS}


@dataclass(frozen=True)
class Entry:
    repo: Repository
    commit: str
    path: str
    blob: str
    label: str
    kind: str = ""  # from Repository.classes; else decided in build (live, or the attack's kind)
    family: str = ""


def git_dir(mirror: Path, name: str) -> Path:
    root = mirror / name.replace("/", "+") / "repo"
    return root / ".git" if (root / ".git").is_dir() else root


def git(gd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(gd), *args], check=True, capture_output=True, text=True
    ).stdout


class BlobReader:
    """Blob contents by id, through one `git cat-file --batch` process."""

    def __init__(self, gd: Path):
        self.proc = subprocess.Popen(
            ["git", "--git-dir", str(gd), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def read(self, blob: str) -> bytes:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(blob.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) < 3 or header[1] != b"blob":
            raise KeyError(blob)
        data = self.proc.stdout.read(int(header[2]))
        self.proc.stdout.read(1)  # the newline after each object
        return data

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


@dataclass(frozen=True)
class Piece:
    """One image of an entry: the entry's file itself, or a part of it (Repository.unpack)."""

    entry: Entry
    where: str  # "" for the whole file, else which part: "r2c5" (tile), "t00120-real" (frame)
    label: str
    kind: str
    family: str
    data: bytes  # encoded: the file's own bytes, or a part of it as a lossless PNG

    @property
    def name(self) -> str:
        return f"{self.entry.path}#{self.where}" if self.where else self.entry.path

    @property
    def file_name(self) -> str:
        blob = self.entry.blob[:16]
        return f"{blob}-{self.where}.png" if self.where else f"{blob}{Path(self.entry.path).suffix.lower()}"


def spans(fraction: np.ndarray, above: float, min_length: int) -> list[tuple[int, int]]:
    """[start, end) runs of at least min_length where `fraction` is above `above`."""
    on = np.concatenate([[False], fraction > above, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(on))
    return [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_length]


def figure_tiles(figure: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The pictures of a figure that sets them in rows on a dark ground, captions between
    them: ("r<row>c<column>", picture), row by row."""
    ink = figure.max(axis=2) > TILE_DARK
    found = []
    for row, (top, bottom) in enumerate(spans(ink.mean(axis=1), TILE_INK, MIN_TILE_PIXELS)):
        columns = spans(ink[top:bottom].mean(axis=0), TILE_INK, MIN_TILE_PIXELS)
        found += [(row, column, top, bottom, left, right) for column, (left, right) in enumerate(columns)]
    if not found:
        return []
    width = float(np.median([right - left for *_, left, right in found]))
    return [
        (f"r{row}c{column}", figure[top:bottom, left:right])
        for row, column, top, bottom, left, right in found
        if abs(right - left - width) <= TILE_WIDTH_SPREAD * width
    ]


def side_by_side_frames(data: bytes, suffix: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """FRAMES_PER_VIDEO frames of a video as ("t<frame>", left half, right half); none where
    its halves do not show the same frame."""
    with tempfile.NamedTemporaryFile(suffix=suffix) as file:
        file.write(data)
        file.flush()
        video = cv2.VideoCapture(file.name)
        count = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for index in np.linspace(0.05 * count, 0.95 * count, FRAMES_PER_VIDEO).astype(int):
            video.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = video.read()
            if ok:
                half = frame.shape[1] // 2
                frames.append((f"t{index:06d}", frame[:, :half], frame[:, half : 2 * half]))
        video.release()
    gaps = [np.abs(grey_thumbnail(left) - grey_thumbnail(right)).mean() for _, left, right in frames]
    return frames if gaps and np.median(gaps) <= SIDE_BY_SIDE_MAX_GREY else []


def grid_spans(bright: np.ndarray, count: int) -> list[tuple[int, int]]:
    """`count` [start, end) cells along one axis: the runs between separator lines (where
    `bright` is true), each split evenly into as many cells as its length holds."""
    runs = spans((~bright).astype(np.float32), 0.5, 1)
    cell = len(bright) / count
    cuts = []
    for start, end in runs:
        n = max(1, round((end - start) / cell))
        edges = np.linspace(start, end, n + 1).round().astype(int)
        cuts += list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    if len(cuts) != count:  # the lines do not match the grid: equal cells over the figure
        edges = np.linspace(0, len(bright), count + 1).round().astype(int)
        cuts = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    return cuts


def grid_cells(figure: np.ndarray, rows: int, columns: int) -> list[tuple[int, int, np.ndarray]]:
    """(row, column, cell) of a figure of rows x columns cells, row by row."""
    light = figure.min(axis=2) >= GRID_LINE_BRIGHT
    row_spans = grid_spans(light.all(axis=1), rows)
    column_spans = grid_spans(light.all(axis=0), columns)
    return [
        (r, c, figure[top:bottom, left:right])
        for r, (top, bottom) in enumerate(row_spans)
        for c, (left, right) in enumerate(column_spans)
    ]


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def unpack(repo: Repository, entry: Entry, data: bytes) -> list[Piece]:
    """The images an entry's file holds (Repository.unpack)."""
    if repo.unpack in ("tiles", "grid"):
        figure = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if figure is None:
            return []
        if repo.unpack == "tiles":
            tiles = figure_tiles(figure)
            return [Piece(entry, where, entry.label, entry.kind, entry.family, png(t)) for where, t in tiles]
        pieces = []
        for r, c, cell in grid_cells(figure, *repo.grid):
            real = f"r{r}" in repo.grid_real or f"c{c}" in repo.grid_real
            label, kind, family = ("real",) * 3 if real else (entry.label, entry.kind, entry.family)
            pieces.append(Piece(entry, f"r{r}c{c}", label, kind, family, png(cell)))
        return pieces
    if repo.unpack == "side_by_side":
        pieces = []
        for where, real, fake in side_by_side_frames(data, Path(entry.path).suffix):
            pieces.append(Piece(entry, f"{where}-real", "real", "real", "real", png(real)))
            pieces.append(Piece(entry, f"{where}-fake", entry.label, entry.kind, entry.family, png(fake)))
        return pieces
    return [Piece(entry, "", entry.label, entry.kind, entry.family, data)]


def label_from_yolo(text: bytes) -> str | None:
    first = text.split()
    if not first:
        return None
    return {"0": "attack", "1": "live"}.get(first[0].decode(errors="replace"))


def label_from_folder(path: str) -> str | None:
    folders = {p.lower() for p in path.split("/")[:-1]}
    if "real" in folders:
        return "live"
    if "fake" in folders:
        return "attack"
    return None


def yolo_label_file(path: str) -> str:
    """The YOLO label file of an image: beside it, or in the `labels` folder beside `images`."""
    txt = re.sub(r"\.[^.]+$", ".txt", path)
    return re.sub(r"(^|/)images/", r"\1labels/", txt) if "/images/" in f"/{txt}" else txt


def list_entries(repo: Repository, gd: Path, blobs: BlobReader) -> Iterator[Entry]:
    """The repository's labelled images, one per distinct content; copies whose labels
    disagree are left out."""
    commit = git(gd, "rev-parse", repo.commit).strip()
    files: dict[str, str] = {}
    for line in git(gd, "ls-tree", "-r", commit).splitlines():
        meta, path = line.split("\t", 1)
        files[path] = meta.split()[2]
    folders = tuple(prefix for prefix, *_ in repo.classes) or repo.folders
    labels: dict[str, set[tuple[str, str, str]]] = {}
    first_path: dict[str, str] = {}
    suffixes = VIDEO_SUFFIXES if repo.unpack == "side_by_side" else IMAGE_SUFFIXES
    for path, blob in sorted(files.items()):
        if not path.lower().endswith(suffixes) or not path.startswith(folders):
            continue
        if path.startswith(repo.exclude):
            continue
        first_path.setdefault(blob, path)
        label_file = yolo_label_file(path)
        if repo.classes:
            label = repo.class_of(path)
        elif not repo.yolo_labels:
            label = (found, "", "") if (found := label_from_folder(path)) else None
        elif label_file in files:
            label = (found, "", "") if (found := label_from_yolo(blobs.read(files[label_file]))) else None
        else:
            label = None
        if label:
            labels.setdefault(blob, set()).add(label)
    for blob, path in first_path.items():
        if len(labels.get(blob, ())) == 1:
            label, kind, family = labels[blob].pop()
            yield Entry(repo, commit, path, blob, label, kind, family)


def grey_thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


def thumbnail(data: bytes) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return None if image is None else grey_thumbnail(image)


def has_face(data: bytes) -> bool:
    from facecheck.faces import YuNetDetector  # only the deepfake galleries need it

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return image is not None and any(
        f.size >= MIN_FACE_PIXELS for f in YuNetDetector(confidence=FACES_ONLY_CONFIDENCE).detect(image)
    )


def thin_frames(thumbs: list[np.ndarray], recent_frames: int | None = RECENT_FRAMES) -> list[int]:
    """Indices of the frames kept: each differs from the `recent_frames` kept before it (None:
    from every one kept before it)."""
    kept: list[int] = []
    for i, t in enumerate(thumbs):
        recent = kept[-recent_frames:] if recent_frames else kept
        if all(np.abs(t - thumbs[j]).mean() >= NEAR_DUPLICATE_GREY for j in recent):
            kept.append(i)
    return kept


def even_subset(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def capture_time(path: str) -> int:
    """The collector names a frame by its capture time in digits (seconds, then a fraction of
    varying length): comparable once padded to one length."""
    digits = re.sub(r"\D", "", Path(path).stem)
    return int(digits[:17].ljust(17, "0")) if digits else 0


def frame_order(path: str) -> tuple[int, str]:
    return capture_time(path), path


def build(task: str, mirror: Path, out: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen_blobs: set[str] = set()
    for repo in REPOSITORIES[task]:
        gd = git_dir(mirror, repo.name)
        if not gd.exists():
            raise SystemExit(f"{repo.name} is not fetched under {mirror} (fetch github:{repo.name})")
        blobs = BlobReader(gd)
        by_class: dict[tuple[str, str, str], list[Piece]] = {}
        for entry in list_entries(repo, gd, blobs):
            if entry.blob in seen_blobs:  # the same bytes in another folder or repository
                continue
            seen_blobs.add(entry.blob)
            try:
                data = blobs.read(entry.blob)
            except KeyError:  # a snapshot leaves out files over the fetch size limit
                print(f"{repo.source}: {entry.path} is not in the snapshot, left out", flush=True)
                continue
            for piece in unpack(repo, entry, data):
                kind = piece.kind or ("live" if piece.label == "live" else repo.attack_kind_of(entry.path))
                by_class.setdefault((piece.label, kind, piece.family), []).append(piece)
        # a figure's picture may stand in several figures: compared with every one kept
        recent_frames = None if repo.unpack == "tiles" else RECENT_FRAMES
        for (label, kind, family), pieces in sorted(by_class.items()):
            pieces.sort(key=lambda p: frame_order(p.name))
            readable = [
                (p, thumb)
                for p in pieces
                if (thumb := thumbnail(p.data)) is not None and (not repo.faces_only or has_face(p.data))
            ]
            kept = even_subset(thin_frames([t for _, t in readable], recent_frames), repo.max_per_kind)
            what = f"{kind} ({family})" if family else kind
            print(f"{repo.source}: {what} {len(pieces)} unique images, {len(kept)} kept", flush=True)
            for i in kept:
                p, e = readable[i][0], readable[i][0].entry
                rel = Path("images") / repo.source / label / p.file_name
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / rel).write_bytes(p.data)
                row = {
                    "path": str(rel),
                    "label": label,
                    "kind": kind,
                    "group": repo.group_of(e.path),
                    "source": repo.source,
                    "split": repo.split,
                    "fold": "" if repo.fold is None else str(repo.fold),
                    "repo": repo.name,
                    "commit": e.commit,
                    "repo_path": p.name,
                    "licence": repo.licence,
                }
                rows.append(row | {"family": family} if "family" in COLUMNS[task] else row)
        blobs.close()
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS[task])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=sorted(REPOSITORIES))
    parser.add_argument("--mirror", type=Path, default=MIRROR_ROOT)
    parser.add_argument("--out", type=Path, help="default: training.data.SOURCES_ROOT/<task>")
    args = parser.parse_args()
    out = args.out or SOURCES_ROOT / args.task
    out.mkdir(parents=True, exist_ok=True)
    rows = build(args.task, args.mirror, out)
    print(
        f"{len(rows)} images from {len({r['source'] for r in rows})} repositories -> {out / 'manifest.csv'}"
    )


if __name__ == "__main__":
    main()

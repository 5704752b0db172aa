"""Media helpers shared by the demo and the reports: videos from RGB frames."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def write_video(path_without_suffix: Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Write RGB frames as MP4 (OpenCV); fall back to an animated GIF (Pillow) when MP4 fails."""
    import cv2

    height, width = frames[0].shape[:2]
    mp4 = Path(path_without_suffix).with_suffix(".mp4")
    writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if writer.isOpened():
        for frame in frames:
            writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        writer.release()
        if mp4.is_file() and mp4.stat().st_size > 0:
            return mp4
    from PIL import Image

    gif = Path(path_without_suffix).with_suffix(".gif")
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return gif

"""Download published weights into this directory (or --dir), verified and atomically.

    python weights/fetch_weights.py coco        # mask_rcnn_coco.h5, matterport's COCO model
    python weights/fetch_weights.py imagenet    # ResNet-50 ImageNet "notop" backbone weights

The only command of the project that uses the network; see weights/README.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run from a checkout, as matterport's samples were: the repository root holds mrcnn/.
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from mrcnn import weights  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=("coco", "imagenet"))
    parser.add_argument("--dir", type=Path, default=HERE,
                        help="directory for the file (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.which == "imagenet":
            path = weights.get_imagenet_weights(cache_dir=args.dir)
        else:
            path = args.dir / weights.COCO_WEIGHTS.filename
            if path.is_file():
                print(f"{path} is already there")
            else:
                weights.download_trained_weights(path)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

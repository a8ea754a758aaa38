"""A directory of class sub-folders of images as a labelled data set: the layout of
`keras.utils.image_dataset_from_directory`, read with checks that name what is wrong.

```
flowers/
  daisy/    100080576_f52e8ee070_n.jpg  …
  roses/    …
```

The classes are the sub-folders, in sorted order (their index is the label); each one's files
are found at any depth. Every file is checked from its first bytes and its end
(`utils.image_files.image_file_problem`) before training: a file that is not a PNG, JPEG or BMP
image, or is cut short, is skipped and counted; a class folder with no image, or a directory with
fewer than two classes, is a `DataError`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os

import numpy as np

from keras_alexnet.errors import DataError
from keras_alexnet.utils.image_files import FORMATS, image_file_problem

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """The images of a class-folder directory: their paths, labels and the class names.

    Attributes:
        paths: The image files, class by class, each class's files in sorted order.
        labels: int64 labels, `paths[i]`'s class index.
        class_names: The sub-folder names, sorted; label `i` is `class_names[i]`.
        skipped: How many files were skipped for each reason (`"cut short"`, …).
    """

    paths: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    skipped: dict[str, int]


def read_image_folder(root: str) -> ImageFolder:
    """Lists and checks the images of a directory of class sub-folders.

    Args:
        root: The directory; its sub-folders are the classes.

    Returns:
        An `ImageFolder`; skipped files are counted in it and logged in one warning.

    Raises:
        DataError: `root` is not a directory, has fewer than two class folders, or a class
            folder holds no readable image.

    Example:

    >>> from PIL import Image
    >>> for name in ("cats", "dogs", "dogs/puppies"):
    ...     os.makedirs(os.path.join("pets", name))
    ...     Image.new("RGB", (8, 8)).save(os.path.join("pets", name, "1.png"))
    >>> folder = read_image_folder("pets")
    >>> folder.class_names, folder.labels.tolist()
    (('cats', 'dogs'), [0, 1, 1])
    """
    if not os.path.isdir(root):
        raise DataError(f"image folder {root} does not exist or is not a directory")
    class_names = tuple(sorted(entry.name for entry in os.scandir(root)
                               if entry.is_dir() and not entry.name.startswith(".")))
    if len(class_names) < 2:
        raise DataError(f"{root} holds {len(class_names)} class folder(s); an image "
                        f"classification data set needs at least two sub-folders of images")
    paths, labels, skipped = [], [], collections.Counter()
    for label, name in enumerate(class_names):
        found = _class_images(os.path.join(root, name), skipped)
        if not found:
            raise DataError(f"class folder {os.path.join(root, name)} holds no {FORMATS} image")
        paths += found
        labels += [label] * len(found)
    if skipped:
        logger.warning("skipped %d file(s) of %s: %s", sum(skipped.values()), root,
                       ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items())))
    return ImageFolder(tuple(paths), np.asarray(labels, np.int64), class_names, dict(skipped))


def _class_images(folder: str, skipped: collections.Counter) -> list[str]:
    """The whole images under `folder` (any depth, sorted); counts the others in `skipped`."""
    images = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(directory, name)
            problem = image_file_problem(path)
            if problem is None:
                images.append(path)
            else:
                skipped[problem.split(":")[0]] += 1
    return images

"""A directory of class sub-folders of images as a labelled data set: the layout of
`keras.utils.image_dataset_from_directory`, read with checks that name what is wrong.

```
flowers/
  daisy/    100080576_f52e8ee070_n.jpg  …
  roses/    …
```

The classes are the sub-folders, in sorted order (their index is the label); each one's files
are found at any depth, whatever bytes their names are. Every file is checked from its header
and its end (`utils.image_files.image_file_problem`) before training: one that is not a regular
file (a FIFO, a link to a device), not a PNG, JPEG or BMP image, cut short, or declaring more
pixels than the exported model's default limit (`DEFAULT_MAX_PIXELS`) is skipped and counted in
one warning; a class folder with no image or with a name that is not one line of UTF-8 (it is
written to `class_names.txt` and the export), or a directory with fewer than two classes, is a
`DataError`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os

import numpy as np

from keras_alexnet.errors import DataError
from keras_alexnet.utils.image_files import DEFAULT_MAX_PIXELS, FORMATS, image_file_problem

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
            folder holds no readable image or has a name that is not one line of UTF-8.

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
        _check_class_name(root, name)
        found = _class_images(os.path.join(root, name), skipped)
        if not found:
            raise DataError(f"class folder {os.path.join(root, name)} holds no {FORMATS} image")
        paths += found
        labels += [label] * len(found)
    if skipped:
        logger.warning("skipped %d file(s) of %s: %s", sum(skipped.values()), root,
                       ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items())))
    return ImageFolder(tuple(paths), np.asarray(labels, np.int64), class_names, dict(skipped))


def _check_class_name(root: str, name: str) -> None:
    """`DataError` unless the class folder's name can be one line of `class_names.txt`."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"class folder {os.fsencode(os.path.join(root, name))!r} is not named "
                        f"in UTF-8; rename it (class names are written to class_names.txt "
                        f"and the export)") from None
    if len(name.splitlines()) != 1:
        raise DataError(f"class folder {os.path.join(root, name)!r} has a line break in its "
                        f"name; rename it (class_names.txt holds one class name a line)")


def _class_images(folder: str, skipped: collections.Counter) -> list[str]:
    """The whole images under `folder` (any depth, sorted); counts the others in `skipped`."""
    images = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(directory, name)
            problem = image_file_problem(path, DEFAULT_MAX_PIXELS)
            if problem is None:
                images.append(path)
            else:
                skipped[problem.split(":")[0]] += 1
    return images

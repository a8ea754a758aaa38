"""The figures (matplotlib): the seed blog's of a run (`plots.blog`), the paper's pictures of
what a network learned (`plots.paper`), and `write_report`, which draws all that apply."""

from keras_alexnet.plots.blog import (
    CLASS_NAMES,
    DPI,
    FIGURE_FILES,
    MAX_CONFUSION_CLASSES,
    confusion_matrix_figure,
    crop_flip_figure,
    pca_jitter_figure,
    sample_grid,
    save_figure,
    training_curves,
    write_blog_figures,
    write_figures,
)
from keras_alexnet.plots.paper import (
    LEARNED_FIGURE_FILES,
    grad_cam_figure,
    kernel_grid_figure,
    learned_figures,
    neighbours_figure,
    top5_figure,
    write_learned_figures,
)
from keras_alexnet.plots.report import write_report

__all__ = ["CLASS_NAMES", "DPI", "FIGURE_FILES", "LEARNED_FIGURE_FILES", "MAX_CONFUSION_CLASSES",
           "confusion_matrix_figure", "crop_flip_figure", "grad_cam_figure",
           "kernel_grid_figure", "learned_figures", "neighbours_figure", "pca_jitter_figure",
           "sample_grid", "save_figure", "top5_figure", "training_curves",
           "write_blog_figures", "write_figures", "write_learned_figures", "write_report"]

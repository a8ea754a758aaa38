"""The demo's page (Gradio Blocks): upload images or click CIFAR-10 test images, read the top-5
classes, see Grad-CAM for the top class and a chosen one, the model's card, and the paper's
pictures of what it learned. Every refusal (a file too large, not an image, over the pixel
limits, a server that does not answer) is said in words on the page."""

import dataclasses
import functools
from typing import Any, Callable, Optional, Sequence

import numpy as np

from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.errors import KerasAlexNetError
from keras_alexnet.serving.client import Prediction
from keras_alexnet.utils.image_files import FORMATS
from keras_alexnet.web.classifier import GRAD_CAM_UNAVAILABLE
from keras_alexnet.web.images import overlay, png_bytes, read_upload

TOP_K = 5
GALLERY_IMAGES = 30  # CIFAR-10's first test images, to click
NO_DATA = ("No CIFAR-10 copy was given (`--data-dir`, or `$KERAS_ALEXNET_DATA`): upload your own "
           "images.")


@dataclasses.dataclass(frozen=True)
class Classified:
    """One image the page classified: its name, bytes and the model's answer."""

    name: str
    data: bytes
    prediction: Prediction


def results_text(classified: Sequence[Classified], refused: Sequence[str],
                 class_names: Sequence[str]) -> str:
    """Each image's top-5 as `predict --top-k 5` prints it, then each refusal, in Markdown."""
    lines = [f"- `{item.name}`: " + ", ".join(f"{name} {p:.3f}" for name, p in
                                             item.prediction.top_k(TOP_K, class_names))
             for item in classified]
    lines += [f"- **Not classified**: {reason}" for reason in refused]
    return "\n".join(lines) or "No image classified yet."


def card_text(title: str, card: dict[str, Any]) -> str:
    """The model's card as a two-column Markdown table."""
    rows = "\n".join(f"| {key} | {str(value).replace('|', '/')} |" for key, value in card.items())
    return f"### {title}\n\n| | |\n|---|---|\n{rows}"


def build_page(classifier, gallery: Optional[tuple[np.ndarray, np.ndarray]],
               gallery_note: str, upload_folder: str, data_dir: Optional[str]):
    """The page around `classifier` (`LocalClassifier` or `ServerClassifier`); `gallery`:
    CIFAR-10 test images and labels to click, or `None` with `gallery_note` saying why;
    `data_dir`: the CIFAR-10 copy the nearest neighbours are searched in (`None`: none)."""
    import gradio as gr

    names = classifier.class_names
    local = hasattr(classifier, "grad_cam")

    def classify(loaders: Sequence[Callable[[], tuple[str, bytes]]]):
        """Each image `(name, bytes)` a loader gives, classified, in order; refusals in words."""
        classified, refused = [], []
        for load in loaders:
            try:
                name, data = load()
                classified.append(Classified(name, data, classifier.classify(name, data)))
            except KerasAlexNetError as error:
                refused.append(" ".join(str(error).split()))
        return shown(classified, refused, 0, None)

    def shown(classified, refused, index: int, chosen: Optional[str]):
        choices = [item.name for item in classified]
        top, cam_top, cam_chosen = views(classified, index, chosen)
        return (classified, results_text(classified, refused, names),
                gr.update(choices=[(name, i) for i, name in enumerate(choices)],
                          value=index if classified else None),
                top, cam_top, cam_chosen)

    def views(classified, index: int, chosen: Optional[str]):
        if not classified:
            return None, None, None
        item = classified[index]
        top = dict(item.prediction.top_k(TOP_K, names))
        if not local:
            return top, None, None
        pixels, heat = classifier.grad_cam(item.data, item.prediction.class_id)
        chosen_map = None
        if chosen is not None:
            chosen_map = overlay(pixels, classifier.grad_cam(item.data, names.index(chosen))[1])
        return top, overlay(pixels, heat), chosen_map

    def on_upload(paths):
        return classify([functools.partial(read_upload, path, upload_folder)
                         for path in paths or []])

    def on_gallery(event: gr.SelectData):
        images, labels = gallery
        index = event.index
        name = f"CIFAR-10 test image {index} ({CLASS_NAMES[labels[index]]})"
        return classify([lambda: (name, png_bytes(images[index]))])

    def on_pick(classified, index, chosen):
        if not classified or index is None:
            return None, None, None
        return views(classified, int(index), chosen)

    with gr.Blocks(title="keras-alexnet demo", analytics_enabled=False) as page:
        gr.Markdown(f"# keras-alexnet: CIFAR-10 AlexNet demo\nModel: **{classifier.title}**")
        state = gr.State([])
        with gr.Tab("Classify"):
            with gr.Row():
                with gr.Column():
                    upload = gr.File(label=f"Upload images ({FORMATS}, any size; one or several)",
                                     file_count="multiple", type="filepath", elem_id="upload")
                    if gallery is None:
                        gr.Markdown(gallery_note, elem_id="gallery-note")
                    else:
                        pictures = gr.Gallery(
                            [(image, CLASS_NAMES[label]) for image, label in zip(*gallery)],
                            label="Or click a CIFAR-10 test image", columns=6,
                            allow_preview=False, elem_id="gallery")
                with gr.Column():
                    results = gr.Markdown("No image classified yet.", elem_id="results",
                                          label="Top-5 classes of each image")
                    picked = gr.Dropdown([], label="Image shown below", elem_id="image-picked")
                    top = gr.Label(num_top_classes=TOP_K, label="Top-5 classes",
                                   elem_id="top5")
            with gr.Row():
                if local:
                    cam_top = gr.Image(label="Grad-CAM: the top class", type="numpy",
                                       elem_id="cam-top", interactive=False)
                    with gr.Column():
                        chosen = gr.Dropdown(list(names), value=None, label="Grad-CAM for class",
                                             elem_id="cam-class")
                        cam_chosen = gr.Image(label="Grad-CAM: the chosen class", type="numpy",
                                              elem_id="cam-chosen", interactive=False)
                else:
                    gr.Markdown(GRAD_CAM_UNAVAILABLE, elem_id="cam-unavailable")
                    cam_top, cam_chosen = gr.State(None), gr.State(None)
                    chosen = gr.State(None)
        with gr.Tab("Model card"):
            gr.Markdown(card_text(classifier.title, classifier.card()), elem_id="card")
        with gr.Tab("What it learned (the paper's pictures)"):
            learned_tab(classifier, local, data_dir)

        outputs = [state, results, picked, top, cam_top, cam_chosen]
        upload.upload(lambda paths: on_upload(paths), upload, outputs, api_name="classify")
        if gallery is not None:
            pictures.select(on_gallery, None, outputs, api_name=False)
        picked.input(on_pick, [state, picked, chosen], [top, cam_top, cam_chosen],
                     api_name=False)
        if local:
            chosen.input(on_pick, [state, picked, chosen], [top, cam_top, cam_chosen],
                         api_name=False)
    return page


def learned_tab(classifier, local: bool, data_dir: Optional[str]) -> None:
    """conv1's kernels (the paper's Figure 3) and, on request, test images beside their nearest
    training images in fc7's space (its Figure 4)."""
    import gradio as gr

    if not local:
        gr.Markdown("The paper's pictures need the model's weights, which a TF Serving server "
                    "does not give: start the demo with --model to see them.",
                    elem_id="learned-unavailable")
        return
    from keras_alexnet.evaluation.learned import first_conv_kernels
    from keras_alexnet.plots.paper import kernel_grid_figure, learned_figures

    gr.Markdown("### conv1's kernels (the paper's Figure 3)")
    gr.Plot(kernel_grid_figure(first_conv_kernels(classifier.model)), elem_id="kernels")
    gr.Markdown("### Nearest training images in fc7's space (the paper's Figure 4)")
    button = gr.Button("Find them (searches 10,000 training images: some seconds)")
    neighbours = gr.Plot(elem_id="neighbours")
    note = gr.Markdown()

    def draw():
        from keras_alexnet.data.cifar10 import load_cifar10

        if data_dir is None:
            return None, NO_DATA
        try:
            data = load_cifar10(data_dir)
        except KerasAlexNetError as error:
            return None, f"**No CIFAR-10 copy**: {error}"
        figures = learned_figures(classifier.model, data, classifier.class_names,
                                  label_names=CLASS_NAMES)
        return figures["neighbours"], ""

    button.click(draw, None, [neighbours, note], api_name=False)

"""The names of an exported SavedModel's signatures, inputs and outputs: what the export writes
and the clients ask for, in a module that imports nothing heavy (a client needs no Keras)."""

SERVING_SIGNATURE = "serving_default"
IMAGE_BYTES_SIGNATURE = "classify_image_bytes"
IMAGES_INPUT = "images"
IMAGE_BYTES_INPUT = "image_bytes"
OUTPUTS = ("probabilities", "class_id", "class_name")

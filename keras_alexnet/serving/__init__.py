"""Serving a trained model: the SavedModel export (its signatures and versions), the bounded
decoding of encoded images, and a client for TensorFlow Serving."""

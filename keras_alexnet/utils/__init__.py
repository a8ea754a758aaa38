"""Helpers of no one stage: atomic file writes, host arrays to the device, epoch-keyed random
draws, and silencing TensorFlow's native start-up messages."""

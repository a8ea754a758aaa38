"""What the networks are fed: CIFAR-10 (loading, the seeded split, pixel statistics), the
augmentation layers, the tf.data pipelines, the on-device pipeline, and the paper's ImageNet
pipeline."""

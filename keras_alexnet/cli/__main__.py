"""`python -m keras_alexnet.cli`: the `keras-alexnet` command."""

import sys

from keras_alexnet.cli import main

sys.exit(main())

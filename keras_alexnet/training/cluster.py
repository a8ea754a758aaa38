"""How the processes of a multi-process run find each other and how long they wait: the
variables `keras.distribution.initialize` reads, read also by the command line's watcher (which
starts no backend, so this module imports none)."""

JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
JOIN_SECONDS = 45  # how long a process waits for the others to join (JAX's default: 300)
HEARTBEAT_SECONDS = 30  # a process silent this long (hung, stopped) ends the run (JAX's: 100)

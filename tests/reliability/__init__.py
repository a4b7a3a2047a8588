"""The reliability suite: poison input, fuzzing, and the whole stack under faults."""

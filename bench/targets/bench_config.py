"""Constants shared by the harness and the served pipelines; no imports, so the harness needs no Haystack."""

# What the `fixed` pipeline answers (and the upstream, in scenario 1): short, so serving dominates.
FIXED_ANSWER = "The quick brown fox jumps over the lazy dog."
# The model name the targets send to the scripted upstream.
UPSTREAM_MODEL = "bench-model"

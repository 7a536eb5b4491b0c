"""Adapting the embedder to a collection (improvement loop; torch only in train/export, imported lazily):
data.py (pseudo-queries + hybrid teacher), train.py (listwise distillation / InfoNCE), export.py (ONNX int8 into
the models store), gate.py (held-out and BEIR A/B), swap.py (promotion and rollback of a collection's vectors),
pipeline.py (the resumable run)."""

# The pseudo-query types `embedder data` can make (embedtune/data.py says what each is). Here, not in data.py, so
# that the CLI's flag parsing does not import the data code at every start-up.
QUERY_TYPES = ("claim", "question", "keywords", "title")

# Defaults that the CLI's help and the TUI's form show as well, here for the same reason (data.py and train.py say
# why each is what it is).
MAX_QUERIES = 2500
NEGATIVES = 5
MAX_SEQ_LENGTH = 128
TEACHER_SCALE = 10.0

"""v22's data: a finished run's train/val files with each target cut by `without_asked_lead`, nothing else changed.

    .venv/bin/python docs/results/answer-lead/retarget.py <data>/finetune/v16/data OUT_DIR
"""

import json
import re
import sys
from pathlib import Path

from edgerag.finetune.data import without_asked_lead

source, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for name in ("train.jsonl", "val.jsonl"):
    lines, changed = [], 0
    for line in (source / name).read_text(encoding="utf-8").splitlines():
        example = json.loads(line)
        meta, reply = example["meta"], example["messages"][-1]
        marker = re.search(r"\s*(\[\d+\])\.$", reply["content"])
        if meta.get("oracle_position") is not None and marker:
            claim = reply["content"][: marker.start()]
            answer = without_asked_lead(claim, meta["question"], meta["answer"])
            changed += answer != claim
            reply["content"] = f"{answer} {marker.group(1)}."
        lines.append(json.dumps(example, ensure_ascii=False))
    (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{name}: {len(lines)} examples, {changed} targets cut")

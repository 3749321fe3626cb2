"""Opaque case ids and a shuffled test order, so that nothing a submission receives encodes a label.

Case names often do (JSRT ``JPCLN001`` has a nodule, ``JPCNN001`` has none; NLM TB names end in
the label digit; the committed split lists cases sorted by name). So the child never sees them:
every split's ids are replaced by keyed hashes, and the test images are handed over in a shuffled
order. The key is derived from the installation key (outside the sandbox), the task, the
submission's content and the seed: the same run gets the same ids and order again (so runs stay
reproducible and resumable), while another submission, seed or installation gets others.

Train and validation keep their committed order: it decides the batches, and their labels are
handed over anyway. The parent keeps the mapping and translates predictions back; records and
leaderboards show the real ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from medbench.errors import PredictionError
from medbench.keys import mac

ID_HEX = 16  # 64 bits per id: a collision among a few thousand cases is not a practical worry


@dataclass(frozen=True)
class Blinding:
    key: bytes

    @classmethod
    def for_run(cls, task: str, version: int, content_sha256: str, seed: int) -> Blinding:
        return cls(mac("case-ids", task, str(version), content_sha256, str(seed)))

    def ids(self, split: str, case_ids: Sequence[str]) -> tuple[str, ...]:
        """Opaque ids for ``case_ids`` of ``split``, in the same order."""
        out = tuple(
            "c"
            + hashlib.blake2b(
                c.encode(), key=self.key, digest_size=ID_HEX // 2, person=split.encode()[:16]
            ).hexdigest()
            for c in case_ids
        )
        if len(set(out)) != len(out):  # pragma: no cover - 2**-64 per pair
            raise RuntimeError("opaque case ids collided; run again with another seed")
        return out

    def order(self, split: str, n: int) -> np.ndarray:
        """The permutation in which ``split``'s ``n`` cases are handed to the submission."""
        seed = int.from_bytes(
            hashlib.blake2b(self.key, person=b"order-" + split.encode()[:10]).digest()[:8], "big"
        )
        return np.random.default_rng(seed).permutation(n)


def unblind(
    predictions: Mapping[str, np.ndarray], opaque: Sequence[str], real: Sequence[str], *, split: str
) -> dict[str, np.ndarray]:
    """``{opaque id: prediction}`` from the child -> ``{real id: prediction}``.

    An id the submission was not given is refused here (and never taken for a real case id).
    """
    to_real = dict(zip(opaque, real, strict=True))
    unknown = [k for k in predictions if k not in to_real]
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise PredictionError(
            f"predictions for the {split} split have {len(unknown)} case id(s) that the "
            f"submission was not given: {shown}"
        )
    return {to_real[k]: v for k, v in predictions.items()}

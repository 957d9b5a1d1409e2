"""A run's evidence attached to its Optuna study as artifacts, so optuna-dashboard shows
the range-test curve, the sweeps and the chosen `schedule.json` next to the trials.

The files are copied into a `FileSystemArtifactStore` in the run folder
(`<out_dir>/artifacts/`) and recorded on the study (`optuna.artifacts.upload_artifact`);
`lrsearch dashboard --out DIR` serves that store. A file already attached with the same
content is not attached again; a file that changed (the `schedule.json` of a resumed
study) is attached as a new version beside the old one, which stays listed, as
artifacts are never rewritten.

    attach_evidence(study, "runs/digits")        # after the study; auto and tune do it
    optuna_dashboard.run_server(storage, artifact_store=artifact_store("runs/digits"))
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

__all__ = ["ARTIFACTS_DIR", "EVIDENCE", "artifact_store", "attach_evidence", "attached"]

logger = logging.getLogger(__name__)

ARTIFACTS_DIR = "artifacts"
"""The artifact store's folder inside a run folder."""

EVIDENCE = {
    "range_test.csv": "text/csv",
    "range_test.png": "image/png",
    "sweep_momentum.csv": "text/csv",
    "sweep_momentum.png": "image/png",
    "sweep_weight_decay.csv": "text/csv",
    "sweep_weight_decay.png": "image/png",
    "schedule.json": "application/json",
}
"""The run-folder files attached to the study, with their MIME types."""

_PREFIX = "artifacts:"  # how Optuna (and optuna-dashboard) key a study's artifacts


def artifact_store(out_dir: str | Path, *, create: bool = True) -> FileSystemArtifactStore | None:
    """The run folder's artifact store (`None` when it does not exist and `create` is False)."""
    folder = Path(out_dir) / ARTIFACTS_DIR
    if not folder.is_dir():
        if not create:
            return None
        folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(folder))


def attached(study: optuna.study.Study) -> list[dict[str, Any]]:
    """The study's artifacts (`artifact_id`, `filename`, `mimetype`, `encoding`), in the
    storage's order; ones deleted in the dashboard are left out."""
    metas = []
    for key, value in study._storage.get_study_system_attrs(study._study_id).items():
        if key.startswith(_PREFIX):
            meta = json.loads(value)
            if meta is not None:
                metas.append(meta)
    return metas


def _same(store: FileSystemArtifactStore, artifact_id: str, content: bytes) -> bool:
    try:
        with store.open_reader(artifact_id) as reader:
            return reader.read() == content
    except Exception:  # removed from the store by hand: attach the file again
        return False


def attach_evidence(study: optuna.study.Study, out_dir: str | Path) -> list[str]:
    """Attach the run folder's evidence files (`EVIDENCE`) to `study`.

    Returns:
        The names of the files attached now (new, or changed since they were last).
        A failure is logged, never raised: the study and its files are already safe.
    """
    out = Path(out_dir)
    present = [name for name in EVIDENCE if (out / name).is_file()]
    if not present:
        return []
    try:
        store = artifact_store(out)
        before = attached(study)
        done = []
        for name in present:
            content = (out / name).read_bytes()
            if any(m["filename"] == name and _same(store, m["artifact_id"], content) for m in before):
                continue
            upload_artifact(artifact_store=store, file_path=str(out / name), study_or_trial=study,
                            mimetype=EVIDENCE[name])
            done.append(name)
    except Exception as exc:  # an artifact is a convenience: never lose a finished run to it
        logger.warning("could not attach the run's files to the study as artifacts: %s", exc)
        return []
    if done:
        logger.debug("attached %s to study %s", ", ".join(done), study.study_name)
    return done

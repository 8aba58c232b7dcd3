"""Weights readers: open a checkpoint folder or file and read it tensor by tensor."""

from __future__ import annotations

from pathlib import Path

from checker.errors import WeightsError
from checker.weights.gguf_reader import GGUFCheckpoint
from checker.weights.interface import TensorInfo, WeightFile, WeightsReader, iter_tensors
from checker.weights.safetensors_reader import INDEX_NAME, SafetensorsReader
from checker.weights.torch_bin import TorchBinReader

__all__ = ["TensorInfo", "WeightFile", "WeightsReader", "iter_tensors", "open_checkpoint"]


def open_checkpoint(path: Path | str) -> WeightsReader:
    """Open a checkpoint folder (or a single weights file) with the right reader.

    Safetensors is preferred when a folder holds several formats, because it
    cannot carry code.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(str(path), "no such file or folder")
    if path.is_file():
        if path.name.endswith(".safetensors.index.json"):
            return SafetensorsReader.from_index(path)
        if path.suffix == ".safetensors":
            return SafetensorsReader(path.parent, [path])
        if path.suffix in (".bin", ".pt", ".pth"):
            return TorchBinReader(path.parent, [path])
        if path.suffix == ".gguf":
            return GGUFCheckpoint(path)
        raise WeightsError(str(path), "unsupported weights file (expected .safetensors, .gguf or .bin)")
    reader = _folder_reader(path)
    audited = {(reader.root / f).resolve() for f in {i.file for i in reader.tensors()}}  # no hashing here
    others = sorted(str(p.relative_to(path)) for p in weight_files(path) if p.resolve() not in audited)
    if others:
        # Fail closed: a second weight set in the folder would be hashed into the report
        # without being audited (a copied model could hide beside an original one).
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise WeightsError(str(path), f"also holds weights that would not be audited ({shown}); "
                           "audit each weight set on its own (name its file or folder) or remove the copies")
    return reader


#: File endings of weights in any format, and names that share them without holding weights.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".onnx")
NOT_WEIGHTS = ("training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt")


def weight_files(folder: Path) -> list[Path]:
    """Every weights file below ``folder`` (sub-folders and hidden files included, .git excluded)."""
    out = []
    for p in folder.rglob("*"):
        if ".git" in p.relative_to(folder).parts or not p.is_file():
            continue
        if p.name.endswith(WEIGHT_SUFFIXES) and p.name not in NOT_WEIGHTS and not p.name.startswith("rng_state"):
            out.append(p)
    return sorted(out)


def _folder_reader(path: Path) -> WeightsReader:
    if (path / INDEX_NAME).is_file():
        return SafetensorsReader.from_index(path / INDEX_NAME)
    st = sorted(path.glob("*.safetensors"))
    if st:
        return SafetensorsReader(path, st)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return GGUFCheckpoint(ggufs[0])
    if len(ggufs) > 1:
        raise WeightsError(str(path), f"{len(ggufs)} GGUF files (quantisations of one model?): name the one to audit")
    if (path / "pytorch_model.bin.index.json").is_file():
        return TorchBinReader.from_index(path / "pytorch_model.bin.index.json")
    bins = sorted(path.glob("*.bin"))
    if bins:
        return TorchBinReader(path, bins)
    raise WeightsError(str(path), "no weights found (expected *.safetensors, model.safetensors.index.json, *.gguf or *.bin)")

"""The registry of third-party reference models.

A registry is a folder with one sub-folder per reference: ``entry.json`` (id,
source, pinned revision, license, publisher, sha256 of every weight file) and
the reference's fingerprint, so audits never need the reference weights again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from checker import __version__
from checker.errors import ReferenceFetchError, RegistryError
from checker.references.fingerprint import FINGERPRINT_VERSION, Fingerprint, fingerprint_pass, load_fingerprint, save_fingerprint
from checker.references.store import ARRAY_DIGESTS, SpillFile
from checker.scanners.tokenizer import model_vocabulary
from checker.weights.common import sha256_file
from checker.weights import open_checkpoint
from checker.yamlio import load_json, parse_json, schema

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: Only what a fingerprint, the license, lineage and disclosure scanners and a tokenizer
#: comparison need. Weights are taken as safetensors only (a repo's .bin or .gguf copies
#: would multiply the download); a repo without safetensors is audited from a local folder.
HUB_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "config.json", "tokenizer.json", "tokenizer_config.json",
                "vocab.json", "merges.txt", "vocab.txt", "README.md", "LICENSE*", "NOTICE*", "USE_POLICY*",
                "THIRD_PARTY.yaml", "THIRD_PARTY.yml", "adapter_config.json", "generation_config.json",
                "preprocessor_config.json")


FINGERPRINT_FILES = ("fingerprint.json", "fingerprint.safetensors")


@dataclass(frozen=True)
class RegistryEntry:
    id: str
    source: str
    source_type: str
    revision: str | None
    license: str | None
    publisher: str | None
    parameters: int
    files: tuple[dict, ...]
    folder: Path
    fingerprint_sha256: tuple[tuple[str, str], ...] = ()

    def as_report(self) -> dict:
        """What a report records of the reference: enough to pin exactly what was compared against."""
        return {"id": self.id, "license": self.license, "revision": self.revision, "source": self.source,
                "source_type": self.source_type, "publisher": self.publisher, "parameters": self.parameters,
                "files": [dict(f) for f in self.files], "fingerprint_sha256": dict(self.fingerprint_sha256)}

    def verify(self) -> dict | None:
        """Check the fingerprint against the digests recorded at registration. The JSON is checked
        whole; the arrays file is checked whole only when the JSON records no per-array digests
        (older prints): otherwise each array is checked when an audit first reads it
        (``store.ArrayStore``), so what is never read is never hashed. Returns the JSON, parsed from
        the very bytes that were checked (None when the entry records no digest of it)."""
        meta = None
        for name, digest in sorted(self.fingerprint_sha256, key=lambda nd: nd[0] != "fingerprint.json"):  # the JSON first
            path = self.folder / name
            if not path.is_file():
                raise RegistryError(str(path), "fingerprint file missing; re-add the reference")
            if name == "fingerprint.safetensors" and meta is not None and ARRAY_DIGESTS in meta:
                continue
            data = path.read_bytes() if name == "fingerprint.json" else None
            if (sha256_file(path) if data is None else hashlib.sha256(data).hexdigest()) != digest:
                raise RegistryError(str(path), "does not match the digest recorded at registration "
                                    "(the fingerprint was modified); re-add the reference")
            if data is not None:
                meta = parse_json(data, path, RegistryError)
        return meta


def _safe_id(ref_id: str) -> str:
    return ref_id.replace("/", "__")


def is_hub_id(source: str) -> bool:
    return not Path(source).exists() and bool(_HUB_ID.match(source))


def fetch_from_hub(repo_id: str, revision: str | None) -> tuple[Path, str]:
    """Download (or find in the cache) only the needed files; returns (folder, commit sha).

    ``HF_HUB_OFFLINE=1`` is honoured by huggingface_hub itself: then only the
    local cache is used.
    """
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ReferenceFetchError(repo_id, f"huggingface_hub is not installed ({exc})") from None
    try:
        folder = Path(snapshot_download(repo_id=repo_id, revision=revision, allow_patterns=list(HUB_PATTERNS)))
    except LocalEntryNotFoundError:
        raise ReferenceFetchError(repo_id, "not in the local Hugging Face cache and the Hub cannot be reached (HF_HUB_OFFLINE is set or no network)") from None
    except RepositoryNotFoundError:
        raise ReferenceFetchError(repo_id, "no such repository on the Hugging Face Hub (or it is gated and no token is set)") from None
    except RevisionNotFoundError:
        raise ReferenceFetchError(repo_id, f"no such revision {revision!r}") from None
    except HfHubHTTPError as exc:
        raise ReferenceFetchError(repo_id, f"download failed ({str(exc).splitlines()[0]})") from None
    except Exception as exc:
        raise ReferenceFetchError(repo_id, f"download failed ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    return folder, folder.name  # snapshot folders are named by the commit sha


def card_license(folder: Path) -> tuple[str | None, str | None]:
    """The license a model card declares (front matter), and where it came from."""
    try:
        from checker.scanners.model_card import read_model_card
    except ImportError:
        return None, None
    card = read_model_card(folder)
    if card is None:
        return None, None
    lic = card.license
    if lic == "other" and card.license_name:
        lic = card.license_name
    return lic, ("README.md front matter" if lic else None)


def add_reference(source: str, registry: Path, ref_id: str | None = None, license: str | None = None,
                  revision: str | None = None, publisher: str | None = None, replace: bool = False,
                  device: str = "cpu", progress=None) -> RegistryEntry:
    """Register a local model folder or a Hugging Face repo as a reference."""
    if Path(source).exists():
        folder, source_type, rev = Path(source), "local", revision
        default_id = folder.resolve().name
    elif _HUB_ID.match(source):
        folder, rev = fetch_from_hub(source, revision)
        source_type, default_id = "huggingface", source
        publisher = publisher or source.split("/")[0]
    else:
        raise RegistryError(source, "no such folder, and not a Hugging Face repo id (owner/name)")
    ref_id = ref_id or default_id
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", ref_id):
        raise RegistryError(ref_id, "a reference id may use letters, digits and . _ / - only")
    target = registry / _safe_id(ref_id)
    if target.exists() and not replace:
        raise RegistryError(ref_id, f"already registered in {registry} (use --replace to rebuild it)")
    lic_source = "given with --license" if license else None
    if license is None:
        license, lic_source = card_license(folder)
    reader = open_checkpoint(folder)
    near = next(p for p in (registry, *registry.resolve().parents) if p.is_dir())  # not created on a failure
    with SpillFile(near) as spill:  # the prints wait on disk, beside the registry, not in memory
        return _register(folder, reader, spill, ref_id, target, {
            "id": ref_id, "source": str(Path(source).resolve()) if source_type == "local" else source,
            "source_type": source_type, "revision": rev, "license": license, "license_source": lic_source,
            "publisher": publisher}, device, progress)


def _register(folder: Path, reader, spill: SpillFile, ref_id: str, target: Path, entry: dict, device: str,
              progress) -> RegistryEntry:
    # One read of the weights both fingerprints and hashes them.
    fp, weight_files = fingerprint_pass(reader, model_vocabulary(folder if folder.is_dir() else folder.parent, reader), ref_id,
                                        device=device, progress=progress, spill=spill)
    files = tuple({"path": f.path, "sha256": f.sha256, "bytes": f.bytes} for f in weight_files)
    entry = {
        **entry, "parameters": fp.parameters, "files": list(files),
        "fingerprint": {"version": FINGERPRINT_VERSION, "bytes": fp.nbytes(), "k_rows": fp.meta["k_rows"],
                        "anchor_tokens": fp.meta["anchor_tokens"]},
        "added": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": {"name": "fromscratch", "version": __version__},
    }
    target.mkdir(parents=True, exist_ok=True)
    save_fingerprint(fp, target)
    entry["fingerprint"]["sha256"] = {n: sha256_file(target / n) for n in FINGERPRINT_FILES}
    (target / "entry.json").write_text(json.dumps(entry, indent=2), encoding="utf-8")
    return _entry(entry, target)


def _entry(data: dict, folder: Path) -> RegistryEntry:
    return RegistryEntry(data["id"], data["source"], data["source_type"], data["revision"], data["license"],
                         data["publisher"], data["parameters"], tuple(data["files"]), folder,
                         tuple(sorted(data["fingerprint"]["sha256"].items())))


def list_entries(registry: Path) -> tuple[RegistryEntry, ...]:
    if not registry.is_dir():
        raise RegistryError(str(registry), "no such registry folder")
    out = []
    validator = jsonschema.Draft202012Validator(schema("registry-entry.schema.json"))
    for entry_path in sorted(registry.glob("*/entry.json")):
        data = load_json(entry_path, RegistryError)
        err = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if err is not None:
            raise RegistryError(str(entry_path), f"{err.message} (at $.{'.'.join(map(str, err.absolute_path))})")
        out.append(_entry(data, entry_path.parent))
    return tuple(out)


def load_references(registry: Path, only: tuple[str, ...] | None = None) -> tuple[tuple[RegistryEntry, Fingerprint], ...]:
    """Every (or the named) registered reference with its fingerprint."""
    entries = list_entries(registry)  # an empty registry leaves the weights criteria inconclusive
    if only is not None:
        known = {e.id for e in entries}
        missing = [o for o in only if o not in known]
        if missing:
            raise RegistryError(str(registry), f"reference {missing[0]!r} is not registered")
        entries = tuple(e for e in entries if e.id in only)
    # one reference's parsed JSON at a time: a real tokenizer's vocabulary and merges parse to
    # tens of MB, packed once the fingerprint is loaded
    return tuple((e, load_fingerprint(e.folder, e.verify())) for e in entries)

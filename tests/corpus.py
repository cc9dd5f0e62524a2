"""The files tests run over: the bundled samples (always), the installed OTP and Elixir."""

import glob
import os

from otp import ELIXIR_BEAMS, OTP_BEAMS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "samples")

# samples/otpNN/ holds the same sources built by newer releases (tools/build_samples.sh
# with the roots of tools/otp-roots.sh); the host's OTP 25 cannot judge them (it refuses
# some), so they are kept apart: release_samples(NN).
NEWER_RELEASES = (27, 29)


def _newer(path: str) -> bool:
    rel = os.path.relpath(path, SAMPLES).split(os.sep)[0]
    return rel.startswith("otp") and rel[3:].isdigit()


SAMPLE_BEAMS = sorted(
    p for p in glob.glob(os.path.join(SAMPLES, "**", "*.beam"), recursive=True)
    if not _newer(p)
)


def release_samples(release: int | str) -> list[str]:
    """The sample beams compiled by OTP ``release`` (25: the classic samples/ tree)."""
    if str(release) == "25":
        return SAMPLE_BEAMS
    return sorted(glob.glob(os.path.join(SAMPLES, f"otp{release}", "**", "*.beam"),
                            recursive=True))


def sample(name: str) -> str:
    return os.path.join(SAMPLES, "ebin", name + ".beam")


def all_beams() -> list[str]:
    return SAMPLE_BEAMS + OTP_BEAMS + ELIXIR_BEAMS

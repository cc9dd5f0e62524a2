"""The files tests run over: the bundled samples (always), the installed OTP and Elixir."""

import glob
import os

from otp import ELIXIR_BEAMS, OTP_BEAMS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "samples")

SAMPLE_BEAMS = sorted(
    p for p in glob.glob(os.path.join(SAMPLES, "**", "*.beam"), recursive=True)
)


def sample(name: str) -> str:
    return os.path.join(SAMPLES, "ebin", name + ".beam")


def all_beams() -> list[str]:
    return SAMPLE_BEAMS + OTP_BEAMS + ELIXIR_BEAMS

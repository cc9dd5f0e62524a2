"""``check``: what a given OTP release's loader refuses."""

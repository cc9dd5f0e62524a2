"""Disassembly: the Code chunk decoded into functions and instructions."""

"""The two energy scales a hull can be on: one name per functional, used everywhere.

GGA/GGA+U with the Materials Project 2020 corrections (what CHGNet 0.3.0 and SevenNet's
MPtrj models are trained on) and r2SCAN (the DFT gate, and the r2SCAN transfer-learned
CHGNet). Energies of the two are never mixed in one phase diagram.
"""

from __future__ import annotations

GGA = "GGA_GGA+U"
R2SCAN = "r2SCAN"
FUNCTIONALS = (GGA, R2SCAN)

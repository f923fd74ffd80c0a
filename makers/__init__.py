"""jobflow Makers, one module per CHGGen stage (atomate2 style)."""

"""Package layout; the rest of the build configuration is in pyproject.toml.

The makers live in the repository's top-level ``makers/`` folder (the project layout is
fixed) and install as ``chggen_flows.makers``: ``package_dir`` maps that one package to
its folder, in wheels and in editable installs alike (setuptools' editable finder). The
package list is computed here because pyproject.toml's ``packages.find`` only finds a
package inside its parent's folder, and a written-out list would miss new subpackages.
"""

from setuptools import find_packages, setup

#: Packages whose folder is not inside their parent's (tests/test_layers.py reads it).
PACKAGE_DIR = {"chggen_flows.makers": "makers"}

if __name__ == "__main__":  # as the build backend runs it (not when the tests read it)
    setup(
        packages=[*find_packages(include=["chggen_flows", "chggen_flows.*"]), *PACKAGE_DIR],
        package_dir=PACKAGE_DIR,
    )

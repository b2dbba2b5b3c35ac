import os
import sys

# The package from this checkout (the venv need not have it installed).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

#: The repository's vectors (the same files the conformance runner reads).
VECTORS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "vectors"))

"""The parts of ``bench/healing.py``: namespace, forwarder, load, topology, faults, report."""

"""Lets the tests import ``smartcity_mobility`` from this folder without installing it.

pytest puts the folder of a conftest.py that is not in a package on ``sys.path``.
"""
